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
  files = {},
}

-- Events declared `Multiple` (`declare_event!` / `new_with_multiple`):
-- get_queue_config (the example in crates/config/src/lib.rs),
-- should_enqueue_log_record (crates/kumod/src/logging/hooks.rs),
-- requeue_message (crates/kumod/src/ready_queue.rs); pre_init,
-- validate_config and throttle_insert_ready_queue per the fact sheet §1.
-- Every other event takes exactly one handler, among them
-- get_egress_path_config (`Single`, crates/kumod/src/ready_queue.rs) and
-- get_egress_source / get_egress_pool (`CallbackSignature::new`,
-- crates/kumod/src/egress_source.rs).
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

-- crates/kumod/src/mod_kumo.rs, `kumo.on`.
function kumo.on(name, fn)
  assert(type(name) == 'string' and type(fn) == 'function', 'kumo.on(name, function)')
  if stub.current_event ~= nil then
    error(
      string.format(
        "Attempting to register an event handler via `kumo.on('%s', ...)` from within the event handler '%s'",
        name,
        stub.current_event
      ),
      2
    )
  end
  local list = stub.handlers[name] or {}
  if #list > 0 and not MULTIPLE[name] then
    error(string.format('%s event already has a handler', name), 2)
  end
  table.insert(list, fn)
  stub.handlers[name] = list
end

-- Fires an event as KumoMTA would (`CallbackSignature::call`,
-- crates/config/src/lib.rs): a Multiple event tries the next handler only
-- when one returns no value at all; an explicit `return nil` ends it.
function stub.fire(name, ...)
  local list = stub.handlers[name]
  if list == nil then
    error('stub: no handler for ' .. name, 2)
  end
  local outer = stub.current_event
  stub.current_event = name
  local result = table.pack(pcall(function(...)
    for _, fn in ipairs(list) do
      local out = table.pack(fn(...))
      if out.n > 0 or not MULTIPLE[name] then
        return out
      end
    end
    return { n = 0 }
  end, ...))
  stub.current_event = outer
  if not result[1] then
    error(result[2], 0)
  end
  return table.unpack(result[2], 1, result[2].n)
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

-- Each constructor parses its table as kumod does (tests/support/
-- kumo_stub/config.rs names the KumoMTA struct) and records it.
local function typed(kind, list)
  return function(params)
    native.check(kind, params)
    if list ~= nil then
      table.insert(list, params)
    end
    return params
  end
end

kumo.start_esmtp_listener = typed('start_esmtp_listener', stub.listeners)
kumo.start_http_listener = typed('start_http_listener', stub.http_listeners)
kumo.configure_local_logs = typed('configure_local_logs', stub.local_logs)
kumo.configure_bounce_classifier = typed('configure_bounce_classifier', stub.bounce_classifiers)
kumo.define_spool = typed('define_spool', stub.spools)

-- crates/kumod/src/logging/mod.rs, `Logger::init_hook`: one hook per name.
function kumo.configure_log_hook(params)
  native.check('configure_log_hook', params)
  for _, hook in ipairs(stub.log_hooks) do
    if hook.name == params.name then
      error(string.format('A logging hook with name `%s` has already been registered', params.name))
    end
  end
  table.insert(stub.log_hooks, params)
end

-- Constructors whose result a handler returns: `{kind, params}`.
for _, kind in ipairs {
  'listener_domain',
  'queue_config',
  'egress_source',
  'egress_pool',
  'egress_path',
} do
  local check = typed('make_' .. kind)
  kumo['make_' .. kind] = function(params)
    return { kind = kind, params = check(params) }
  end
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

function kumo.bump_config_epoch()
  stub.epoch = stub.epoch + 1
end

-- Process-wide caches by name; errors are not cached, nil and false are;
-- tables come back read-only and as userdata. The parameters and every
-- result are checked as crates/mod-memoize/src/lib.rs checks them
-- (`MemoizeParams`, `CacheValue::from_lua`): a result holding a function or
-- a userdata without `__memoize` (a DKIM signer, an HTTP client) fails
-- every call and is never cached.
function kumo.memoize(fn, params)
  if type(fn) ~= 'function' then
    error('memoize: error converting Lua ' .. type(fn) .. ' to function', 2)
  end
  native.check('memoize', params)
  if params.detached == true and stub.current_event ~= nil then
    error(
      string.format(
        'kumo.memoize cache `%s` sets `detached = true`, but is being called from within the `%s` event handler',
        params.name,
        stub.current_event
      ),
      2
    )
  end
  local ttl = native.seconds(params.ttl)
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
    native.memoizable(value)
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

-- The header methods as crates/message/src/message.rs registers them for
-- Lua (`impl UserData for Message`): each takes the header's name as a
-- string (`name: String`), matched case-insensitively
-- (crates/mailparsing/src/headermap.rs, `iter_named`);
-- get_first_named_header_value answers nil when there is none, and
-- remove_all_named_headers drops every header of that name (`retain_headers`).
local function header_name(method, name)
  assert(type(name) == 'string', method .. ': the header name must be a string, not ' .. type(name))
  return name:lower()
end

function Message:get_all_named_header_values(name)
  name = header_name('get_all_named_header_values', name)
  local values = {}
  for _, h in ipairs(self._headers) do
    if h[1]:lower() == name then
      table.insert(values, h[2])
    end
  end
  return values
end
function Message:get_first_named_header_value(name)
  header_name('get_first_named_header_value', name)
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
  name = header_name('remove_all_named_headers', name)
  local kept = {}
  for _, h in ipairs(self._headers) do
    if h[1]:lower() ~= name then
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

---------------------------------------------------------------- environment

package.loaded.kumo = kumo
_G.kumo = kumo
native.extras(stub, native)

-- KumoMTA paths a test points at its own files, e.g.
-- stub.files['/opt/kumomta/share/policy-extras/shaping.toml'] = '<temp>'.
function stub.path(name)
  return stub.files[name] or name
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
