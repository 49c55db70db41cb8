-- A stand-in for KumoMTA's `kumo` module, enough to run
-- kumo-policy/init.lua for real. The parts that must talk to the outside
-- (HTTP, JSON, digests, key parsing) are Rust functions in `native`; this
-- file holds the event registry, memoize, and the message and connection
-- objects. Behaviour follows the KumoMTA fact sheet; where KumoMTA would
-- accept something dubious, the stand-in is stricter and raises.
local native = ...

local stub = {
  handlers = {},
  listeners = {},
  http_listeners = {},
  spools = {},
  local_logs = {},
  log_hooks = {},
  bounce_classifiers = {},
  logs = {},
  caches = {},
  epoch = 0,
  clock = 0,
  env = {},
}

-- Events where every handler runs in registration order until one returns
-- non-nil; all others keep exactly one handler (fact sheet §1).
local MULTIPLE = {
  get_queue_config = true,
  throttle_insert_ready_queue = true,
  should_enqueue_log_record = true,
  requeue_message = true,
  pre_init = true,
  validate_config = true,
}

local kumo = {}
stub.kumo = kumo

function kumo.on(name, fn)
  assert(type(name) == 'string' and type(fn) == 'function', 'kumo.on(name, function)')
  local list = stub.handlers[name] or {}
  if #list > 0 and not MULTIPLE[name] then
    error(string.format('stub: %s takes one handler and already has one', name), 2)
  end
  table.insert(list, fn)
  stub.handlers[name] = list
end

-- Fires an event as KumoMTA would; returns the first non-nil result.
function stub.fire(name, ...)
  local list = stub.handlers[name]
  if list == nil then
    error('stub: no handler for ' .. name, 2)
  end
  for _, fn in ipairs(list) do
    local result = table.pack(fn(...))
    if result[1] ~= nil or not MULTIPLE[name] then
      return table.unpack(result, 1, result.n)
    end
  end
  return nil
end

---------------------------------------------------------------- rejections

local Rejection = {}
Rejection.__index = Rejection
Rejection.__tostring = function(r)
  return string.format('%d %s', r.code, r.message)
end

function kumo.reject(code, message)
  assert(math.type(code) == 'integer' and code >= 400 and code < 600, 'kumo.reject: bad code')
  error(setmetatable({ code = code, message = message }, Rejection), 0)
end

-- pcall for the harness: 'ok', results… | 'rejected', code, message |
-- 'error', text.
function stub.call(name, ...)
  local result = table.pack(pcall(stub.fire, name, ...))
  if result[1] then
    return 'ok', table.unpack(result, 2, result.n)
  end
  local err = result[2]
  if getmetatable(err) == Rejection then
    return 'rejected', err.code, err.message
  end
  return 'error', tostring(err)
end

-- Same, for calling a method of an object the policy returned.
function stub.invoke(object, method, ...)
  local result = table.pack(pcall(object[method], object, ...))
  if result[1] then
    return 'ok', table.unpack(result, 2, result.n)
  end
  local err = result[2]
  if getmetatable(err) == Rejection then
    return 'rejected', err.code, err.message
  end
  return 'error', tostring(err)
end

---------------------------------------------------------------- init-time calls

local function record_into(list)
  return function(params)
    assert(type(params) == 'table', 'expected a table of parameters')
    table.insert(list, params)
  end
end

function kumo.start_esmtp_listener(params)
  assert(type(params.listen) == 'string', 'start_esmtp_listener: listen is required')
  -- "relay_hosts = {} is rejected at start-up: invalid type: map, expected a
  -- sequence" (fact sheet, verified by running KumoMTA).
  if params.relay_hosts ~= nil then
    assert(#params.relay_hosts > 0, 'relay_hosts: invalid type: map, expected a sequence')
  end
  if params.meta ~= nil then
    native.json_encode(params.meta) -- must be JSON-serialisable
  end
  table.insert(stub.listeners, params)
end
kumo.start_http_listener = record_into(stub.http_listeners)
kumo.configure_local_logs = record_into(stub.local_logs)
kumo.configure_bounce_classifier = record_into(stub.bounce_classifiers)
function kumo.configure_log_hook(params)
  assert(type(params.name) == 'string', 'configure_log_hook: name is required')
  table.insert(stub.log_hooks, params)
end
function kumo.define_spool(params)
  assert(params.name == 'data' or params.name == 'meta', 'define_spool: name is data or meta')
  assert(type(params.path) == 'string', 'define_spool: path is required')
  table.insert(stub.spools, params)
end

function kumo.make_listener_domain(params)
  return { kind = 'listener_domain', params = params }
end

function kumo.make_queue_config(params)
  return { kind = 'queue_config', params = params }
end

for _, level in ipairs { 'error', 'warn', 'info', 'debug' } do
  kumo['log_' .. level] = function(...)
    local parts = {}
    for i = 1, select('#', ...) do
      parts[i] = tostring(select(i, ...))
    end
    table.insert(stub.logs, { level = level, text = table.concat(parts, ' ') })
  end
end

---------------------------------------------------------------- memoize

local UNITS = {
  s = 1, sec = 1, secs = 1, second = 1, seconds = 1,
  m = 60, min = 60, mins = 60, minute = 60, minutes = 60,
  h = 3600, hour = 3600, hours = 3600, d = 86400, day = 86400, days = 86400,
}

function stub.seconds(duration)
  local n, unit = tostring(duration):match '^%s*(%d+)%s*(%a+)%s*$'
  assert(n and UNITS[unit], 'bad duration: ' .. tostring(duration))
  return tonumber(n) * UNITS[unit]
end

function kumo.bump_config_epoch()
  stub.epoch = stub.epoch + 1
end

-- Process-wide caches by name; errors are not cached, nil and false are;
-- tables come back read-only and as userdata (fact sheet §3).
function kumo.memoize(fn, params)
  assert(type(params) == 'table', 'memoize: parameters are required')
  assert(type(params.name) == 'string', 'memoize: name is required')
  assert(params.name:sub(1, 5) == 'user.', 'memoize: prefix the name with user.')
  assert(math.type(params.capacity) == 'integer', 'memoize: capacity is required')
  local ttl = stub.seconds(params.ttl)
  local cache = stub.caches[params.name] or { entries = {}, size = 0, hits = 0, misses = 0 }
  stub.caches[params.name] = cache
  return function(...)
    -- The key is the JSON of every argument, as in KumoMTA.
    local parts = {}
    for i = 1, select('#', ...) do
      parts[i] = native.json_encode((select(i, ...)))
    end
    local key = table.concat(parts, ',')
    local entry = cache.entries[key]
    if
      entry
      and entry.expires > stub.clock
      and (not params.invalidate_with_epoch or entry.epoch == stub.epoch)
    then
      cache.hits = cache.hits + 1
      return entry.value
    end
    cache.misses = cache.misses + 1
    local value = fn(...)
    if type(value) == 'table' then
      value = native.freeze(value)
    end
    if entry == nil then
      if cache.size >= params.capacity then
        cache.entries, cache.size = {}, 0
      end
      cache.size = cache.size + 1
    end
    cache.entries[key] = { value = value, expires = stub.clock + ttl, epoch = stub.epoch }
    return value
  end
end

---------------------------------------------------------------- modules

kumo.http = { build_client = native.build_client }
kumo.serde = {
  json_encode = native.json_encode,
  json_parse = native.json_parse,
  json_load = native.json_load,
}
kumo.secrets = { load = native.secrets_load }
kumo.digest = { sha256 = native.sha256, hmac_sha256 = native.hmac_sha256 }
kumo.encode = { base64url_nopad_encode = native.base64url_nopad_encode }
kumo.dkim = { rsa_sha256_signer = native.rsa_sha256_signer }

---------------------------------------------------------------- addresses, meta, messages

local Address = {}
Address.__index = Address
Address.__tostring = function(a)
  return a.email
end

function stub.address(text)
  local user, domain = text:match '^(.*)@([^@]+)$'
  return setmetatable({ email = text, user = user or text, domain = domain }, Address)
end

local ConnMeta = {}
ConnMeta.__index = ConnMeta
function ConnMeta:get_meta(key)
  return self._meta[key]
end
function ConnMeta:set_meta(key, value)
  native.json_encode { value } -- meta values must be JSON-serialisable
  self._meta[key] = value
end

function stub.conn_meta(meta)
  return setmetatable({ _meta = meta or {} }, ConnMeta)
end

local Message = {}
Message.__index = Message
local next_id = 0

-- spec: { sender, recipients = {…}, headers = { {name, value}, … },
-- body, meta = {…} }. Like KumoMTA at DATA, the connection meta is copied
-- into the message meta.
function stub.message(spec, conn_meta)
  next_id = next_id + 1
  local meta = {}
  for k, v in pairs(conn_meta and conn_meta._meta or {}) do
    meta[k] = v
  end
  for k, v in pairs(spec.meta or {}) do
    meta[k] = v
  end
  local headers = {}
  for i, h in ipairs(spec.headers or {}) do
    headers[i] = { h[1], h[2] }
  end
  return setmetatable({
    _id = string.format('stub%08d', next_id),
    _sender = spec.sender,
    _recipients = spec.recipients,
    _headers = headers,
    _body = spec.body or '',
    _data = spec.data,
    _meta = meta,
  }, Message)
end

function Message:id()
  return self._id
end
function Message:sender()
  return stub.address(self._sender)
end
function Message:recipient()
  if #self._recipients == 1 then
    return stub.address(self._recipients[1])
  end
  return self:recipient_list()
end
function Message:recipient_list()
  local list = {}
  for i, r in ipairs(self._recipients) do
    list[i] = stub.address(r)
  end
  return list
end
Message.get_meta = ConnMeta.get_meta
Message.set_meta = ConnMeta.set_meta

function Message:get_all_named_header_values(name)
  local values = {}
  for _, h in ipairs(self._headers) do
    if h[1]:lower() == name:lower() then
      table.insert(values, h[2])
    end
  end
  return values
end
function Message:get_first_named_header_value(name)
  return self:get_all_named_header_values(name)[1]
end
function Message:prepend_header(name, value)
  assert(type(name) == 'string' and type(value) == 'string', 'prepend_header(name, value)')
  table.insert(self._headers, 1, { name, value })
end
function Message:append_header(name, value)
  assert(type(name) == 'string' and type(value) == 'string', 'append_header(name, value)')
  table.insert(self._headers, { name, value })
end
function Message:remove_all_named_headers(name)
  local kept = {}
  for _, h in ipairs(self._headers) do
    if h[1]:lower() ~= name:lower() then
      table.insert(kept, h)
    end
  end
  self._headers = kept
end
function Message:header_names()
  local names = {}
  for i, h in ipairs(self._headers) do
    names[i] = h[1]
  end
  return names
end
function Message:get_data()
  if self._data ~= nil then
    return self._data
  end
  local lines = {}
  for _, h in ipairs(self._headers) do
    table.insert(lines, h[1] .. ': ' .. h[2])
  end
  return table.concat(lines, '\r\n') .. '\r\n\r\n' .. self._body
end

-- Signs the message as it stands and prepends the DKIM-Signature, as
-- KumoMTA's Message:dkim_sign (crates/message/src/dkim.rs; the signature
-- itself is kumo_stub/dkim.rs).
function Message:dkim_sign(signer)
  assert(native.is_signer(signer), 'dkim_sign: not a signer')
  self:prepend_header('DKIM-Signature', native.dkim_sign(signer, self:get_data(), stub.now()))
end

-- A log-hook message: body = the record's JSON, meta log_record = the
-- record (fact sheet §6, mechanism).
function stub.log_message(json)
  local record = native.json_parse(json)
  local msg = stub.message {
    sender = record.sender or '',
    recipients = { record.recipient or '' },
    data = json,
    meta = { reception_protocol = 'LogRecord' },
  }
  msg._meta.log_record = record
  return msg
end

---------------------------------------------------------------- policy-extras.log_hooks

-- The helper's documented behaviour (fact sheet §6): pre_init configures
-- the hook; records go to queue `<name>.log_hook` unless they are about a
-- log record; that queue delivers through the constructor event.
local log_hooks = { CONFIGURED = {} }
function log_hooks:new(options)
  assert(type(options.name) == 'string', 'log_hooks:new: name is required')
  assert(type(options.constructor) == 'function', 'log_hooks:new: constructor is required')
  assert(not self.CONFIGURED[options.name], 'log hook configured twice: ' .. options.name)
  self.CONFIGURED[options.name] = options
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
      return nil
    end
    if msg:get_meta('log_record').reception_protocol == 'LogRecord' then
      return false
    end
    msg:set_meta('queue', queue)
    return true
  end)
  kumo.on('get_queue_config', function(domain)
    if domain ~= queue then
      return nil
    end
    local params = { retry_interval = '1m', max_retry_interval = '20m' }
    for k, v in pairs(options.queue_config or {}) do
      params[k] = v
    end
    params.protocol = {
      custom_lua = { constructor = constructor, batch_size = options.batch_size },
    }
    return kumo.make_queue_config(params)
  end)
  kumo.on(constructor, options.constructor)
end

---------------------------------------------------------------- environment

package.loaded.kumo = kumo
_G.kumo = kumo
package.preload['policy-extras.log_hooks'] = function()
  return log_hooks
end

-- The service's environment (systemd EnvironmentFile), without touching
-- the test process's own.
local getenv = os.getenv
function os.getenv(name)
  local value = stub.env[name]
  if value ~= nil then
    return value
  end
  return getenv(name)
end

return stub
