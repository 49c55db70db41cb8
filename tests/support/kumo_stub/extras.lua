-- Stand-ins for the policy-extras helpers the policy requires, holding
-- them to the newest helper source (assets/policy-extras/*.lua): the
-- options each accepts, what it passes to kumo.*, and the handlers it
-- registers. Loaded by kumo_stub.lua with (stub, native).
local stub, native = ...
local kumo = stub.kumo

-- policy-extras.typing's Record: every key must be a declared field of
-- the declared kind (assets/policy-extras/typing.lua).
local function record(name, fields)
  return function(value)
    if type(value) ~= 'table' then
      error(string.format('%s: expected a table, got %s', name, type(value)), 3)
    end
    for key, v in pairs(value) do
      local check = fields[key]
      if check == nil then
        error(string.format("%s: unexpected field '%s'", name, tostring(key)), 3)
      end
      local ok, why = check(v)
      if not ok then
        error(string.format('%s.%s: %s', name, key, why), 3)
      end
    end
    for key, check in pairs(fields) do
      if value[key] == nil and not check(nil) then
        error(string.format("%s: missing field '%s'", name, key), 3)
      end
    end
    return value
  end
end

local function kind(lua_type, optional)
  return function(v)
    if v == nil then
      return optional, 'is required'
    end
    return type(v) == lua_type, 'expected ' .. lua_type .. ', got ' .. type(v)
  end
end

local function count(v)
  if v == nil then
    return true
  end
  return math.type(v) == 'integer' and v > 0, 'expected a positive integer'
end

-- Checked by kumod's own parser, so the helper and kumod agree.
local function native_kind(kind_name)
  return function(v)
    if v == nil then
      return true
    end
    return pcall(native.check, kind_name, v)
  end
end

local function duration(v)
  if v == nil then
    return true
  end
  return pcall(native.seconds, v)
end

---------------------------------------------------------------- log_hooks

-- assets/policy-extras/log_hooks.lua, `LogHookOptions`, plus the batching
-- options newer helpers pass to the custom_lua protocol
-- (crates/kumod/src/lua_deliver.rs).
local LogHookOptions = record('LogHookOptions', {
  name = kind 'string',
  constructor = kind 'function',
  log_parameters = kind('table', true),
  queue_config = native_kind 'make_queue_config',
  batch_size = count,
  min_batch_size = count,
  max_batch_latency = duration,
})

local log_hooks = { CONFIGURED = {} }

function log_hooks:new(options)
  options = LogHookOptions(options)
  if self.CONFIGURED[options.name] then
    error(string.format("log_hook with name '%s' has already been configured", options.name))
  end
  self.CONFIGURED[options.name] = options
  -- A "TLD" no real domain has, so the queue cannot collide with mail.
  local queue = options.name .. '.log_hook'
  local constructor = 'make.' .. queue

  kumo.on('pre_init', function()
    local params = { name = options.name }
    for k, v in pairs(options.log_parameters or {}) do
      params[k] = v
    end
    kumo.configure_log_hook(params)
  end)
  kumo.on('should_enqueue_log_record', function(msg, hook_name)
    if hook_name ~= options.name then
      return
    end
    if msg:get_meta('log_record').reception_protocol == 'LogRecord' then
      return false
    end
    msg:set_meta('queue', queue)
    return true
  end)
  kumo.on('get_queue_config', function(domain)
    if domain ~= queue then
      return
    end
    local params = { retry_interval = '1m', max_retry_interval = '20m' }
    for k, v in pairs(options.queue_config or {}) do
      params[k] = v
    end
    params.protocol = {
      custom_lua = {
        constructor = constructor,
        batch_size = options.batch_size,
        min_batch_size = options.min_batch_size,
        max_batch_latency = options.max_batch_latency,
      },
    }
    return kumo.make_queue_config(params)
  end)
  kumo.on(constructor, options.constructor)
end

---------------------------------------------------------------- shaping

-- assets/policy-extras/shaping.lua, `setup_with_automation`. The newest
-- helper does not type its options; these are the ones it reads. Where
-- the helper only logs kumo.shaping.load's errors (and fails them under
-- --validate), the stand-in raises them, so a test sees them.
local shaping = {}

-- Keys of a shaping entry that are not egress path options
-- (crates/kumo-api-types/src/shaping.rs); the Rust loader checks the rest.
local ENTRY_KEYS = {
  mx_rollup = true,
  replace_base = true,
  automation = true,
  sources = true,
  provider_connection_limit = true,
  provider_max_message_rate = true,
}

local function load_shaping_data(file_names)
  local files = {}
  for i, name in ipairs(file_names) do
    files[i] = { name, stub.path(name) }
  end
  return native.shaping_load(files)
end

local function merge_into(params, entry)
  if entry == nil then
    return
  end
  for k, v in pairs(entry) do
    if not ENTRY_KEYS[k] then
      params[k] = v
    end
  end
end

function shaping:setup_with_automation(options)
  if self.CONFIGURED then
    error 'shaping module has already been configured'
  end
  local cached_load = kumo.memoize(load_shaping_data, {
    name = 'shaping_data',
    ttl = options.cache_ttl or '1 minute',
    capacity = 4,
    invalidate_with_epoch = true,
  })

  local file_names = {}
  if not options.no_default_files then
    table.insert(file_names, '/opt/kumomta/share/policy-extras/shaping.toml')
  end
  for _, name in ipairs(options.extra_files or {}) do
    table.insert(file_names, name)
  end
  -- A test maps these URLs to files through stub.files, as any path.
  for _, url in ipairs(options.subscribe or {}) do
    table.insert(file_names, url .. '/get_config_v1/shaping.toml')
  end

  local publish = {}
  for _, destination in ipairs(options.publish or {}) do
    local hook_name = destination .. '.tsa.kumomta'
    publish[hook_name] = destination
    kumo.on('make.' .. hook_name, function()
      error 'stub: publishing to the TSA daemon is not modelled'
    end)
  end

  local function setup_publish()
    for hook_name in pairs(publish) do
      kumo.configure_log_hook {
        name = hook_name,
        per_record = { Reception = { enable = false }, Rejection = { enable = false } },
        back_pressure = options.back_pressure,
      }
    end
  end

  -- The entries for `domain` (or its site when rolled up by MX), then the
  -- egress source's overrides, over the defaults.
  local function get_egress_path_config(domain, egress_source, site_name, skip_make)
    local data = cached_load(file_names)
    local params = {}
    local entries = { data.default, data[site_name], data[domain] }
    for i = 1, 3 do
      merge_into(params, entries[i])
    end
    for i = 1, 3 do
      local sources = entries[i] and entries[i].sources
      merge_into(params, sources and sources[egress_source])
    end
    if not params.refresh_strategy then
      params.refresh_strategy = 'Epoch'
    end
    if skip_make then
      return params
    end
    return kumo.make_egress_path(params)
  end

  kumo.on('get_queue_config', function(domain)
    if publish[domain] == nil then
      return
    end
    local params = { retry_interval = '1m', max_retry_interval = '20m' }
    for k, v in pairs(options.tsa_queue_config or {}) do
      params[k] = v
    end
    params.protocol = { custom_lua = { constructor = 'make.' .. domain } }
    return kumo.make_queue_config(params)
  end)
  kumo.on('should_enqueue_log_record', function(msg, hook_name)
    if publish[hook_name] == nil then
      return
    end
    local record = msg:get_meta 'log_record'
    if record.reception_protocol == 'LogRecord' or publish[record.queue] then
      return false
    end
    msg:set_meta('queue', hook_name)
    return true
  end)

  self.CONFIGURED = {
    _file_names = file_names,
    load_shaping_data = function()
      return cached_load(file_names)
    end,
    get_egress_path_config = get_egress_path_config,
    setup_publish = setup_publish,
  }
  return self.CONFIGURED
end

-- The older entry point: shaping files only, no TSA.
function shaping:setup(extra_files)
  return self:setup_with_automation({
    extra_files = extra_files,
    publish = {},
    subscribe = {},
  }).get_egress_path_config
end

package.preload['policy-extras.log_hooks'] = function()
  return log_hooks
end
package.preload['policy-extras.shaping'] = function()
  -- The helper registers its --validate check when it is required.
  kumo.on('validate_config', function()
    if shaping.CONFIGURED then
      load_shaping_data(shaping.CONFIGURED._file_names)
    end
  end)
  return shaping
end
