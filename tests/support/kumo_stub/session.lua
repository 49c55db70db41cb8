-- SMTP sessions, AUTH, DATA and queue resolution as kumod runs them, on
-- top of kumo_stub.lua: a session opens on a listener the policy started in
-- `init`, with the connection meta kumod presets, and every message made
-- from it carries what kumod gives a message at DATA. Each rule cites the
-- KumoMTA source file it follows.
local stub, native = ...

-- The stand-in's wall clock: the memoize clock on a fixed epoch, so no
-- test reads the real time.
function stub.now()
  return native.epoch + stub.clock
end

local function copy_json(value)
  -- Meta is held as JSON by kumod (ConnectionMetaData wraps a
  -- serde_json::Value), so a copy never aliases the listener's table.
  return native.json_parse(native.json_encode { value })[1]
end

local function session_of(conn)
  local s = type(conn) == 'table' and rawget(conn, '_session')
  assert(s, 'stub: not a session; open one with stub.session(listener, peer)')
  assert(not s.closed, 'stub: the session was closed with a 421')
  return s
end

---------------------------------------------------------------- connect

-- crates/kumod/src/smtp_server.rs, SmtpServerSession::run and
-- ConcreteEsmtpListenerParams::apply_generic: reception_protocol,
-- received_via (the socket's local address), received_from (the peer),
-- hostname (gethostname(), then the listener's), and last the listener's
-- `meta`, which may override any of them.
function stub.session(listener, peer)
  assert(#stub.listeners > 0, 'stub: no listener started; fire init first, as kumod does')
  local params
  for _, l in ipairs(stub.listeners) do
    local tag = type(l.meta) == 'table' and l.meta.x_listener or nil
    if l.listen == listener or tag == listener then
      assert(params == nil, 'stub: more than one listener matches ' .. listener)
      params = l
    end
  end
  assert(params, 'stub: no listener on or tagged ' .. tostring(listener))
  -- Per-peer and per-address overrides, and the two per-connection events,
  -- change the meta and parameters; nothing here models them, so a policy
  -- that uses them must not pass for one that does not.
  assert(params.peer == nil and params.via == nil, 'stub: listener peer/via blocks are not modelled')
  for _, event in ipairs { 'smtp_server_get_dynamic_parameters', 'smtp_server_connection_accepted' } do
    assert(stub.handlers[event] == nil, 'stub: ' .. event .. ' is not modelled')
  end

  local addr = native.session_addresses(params.listen, peer)
  local hostname = params.hostname or native.hostname()
  local meta = {
    reception_protocol = 'ESMTP',
    received_via = addr.via,
    received_from = addr.from,
    hostname = hostname,
  }
  for k, v in pairs(params.meta or {}) do
    meta[k] = copy_json(v)
  end
  local conn = stub.conn_meta(meta)
  conn._session = {
    params = params,
    hostname = hostname,
    peer_ip = addr.peer_ip,
    via_ip = addr.via_ip,
    tls = false,
    closed = false,
    -- get_listener_domain answers for this session (false: none).
    domains = {},
  }
  return conn
end

-- Every handler error in a session ends it: kumod answers
-- "421 4.3.0 <hostname> technical difficulties" (SmtpServerSession::run).
local function technical_difficulties(s)
  s.closed = true
  return 421, '4.3.0 ' .. s.hostname .. ' technical difficulties'
end

-- A kumo.reject with 421 disconnects too (RejectDisconnect::If421).
local function rejected(s, code, message)
  if code == 421 then
    s.closed = true
  end
  return code, message
end

function stub.starttls(conn)
  local s = session_of(conn)
  if s.tls then
    return 501, 'Cannot STARTTLS as TLS is already active'
  end
  s.tls = true
  return 220, 'Ready to Start TLS'
end

-- EHLO: the event may refuse; then ehlo_domain is recorded (2024.11.08)
-- and named in the Received header.
function stub.ehlo(conn, domain)
  local s = session_of(conn)
  if stub.handlers.smtp_server_ehlo then
    local status, a, b = stub.call('smtp_server_ehlo', domain, conn, {})
    if status == 'rejected' then
      return rejected(s, a, b)
    elseif status == 'error' then
      return technical_difficulties(s)
    end
  end
  conn:set_meta('ehlo_domain', domain)
  s.ehlo = domain
  return 250, s.hostname .. ' Aloha ' .. domain
end

---------------------------------------------------------------- AUTH

-- smtp_server.rs, the Command::Auth arm (process_auth): once per session,
-- only over TLS; an empty authorization id becomes the authentication id;
-- the handler's result is read as a Lua boolean (nil and false are "no",
-- anything else "yes", as mlua converts); on yes kumod itself records
-- authz_id and authn_id.
function stub.auth_plain(conn, authz, authc, password)
  local s = session_of(conn)
  if s.authn ~= nil then
    return 503, "5.5.1 AUTH me once, can't get authed again!"
  end
  if not s.tls then
    return 524, '5.7.11 AUTH PLAIN requires an encrypted channel'
  end
  if authz == nil or authz == '' then
    authz = authc
  end
  if stub.handlers.smtp_server_auth_plain == nil then
    return 535, '5.7.8 AUTH invalid'
  end
  local status, a, b = stub.call('smtp_server_auth_plain', authz, authc, password, conn)
  if status == 'rejected' then
    return rejected(s, a, b)
  elseif status == 'error' then
    return technical_difficulties(s)
  end
  if not a then
    return 535, '5.7.8 AUTH invalid'
  end
  s.authn = authc
  conn:set_meta('authz_id', authz)
  conn:set_meta('authn_id', authc)
  return 235, '2.7.0 AUTH OK!'
end

---------------------------------------------------------------- MAIL FROM, RCPT TO

-- Fires a session event if the policy handles it: nil when it passed,
-- else the reply kumod sends.
local function event(s, name, ...)
  if stub.handlers[name] == nil then
    return nil
  end
  local status, a, b = stub.call(name, ...)
  if status == 'rejected' then
    return rejected(s, a, b)
  elseif status == 'error' then
    return technical_difficulties(s)
  end
  return nil
end

-- lookup_listener_domain: get_listener_domain(domain, the session's local
-- address, conn), remembered for the rest of the session (2025.12.02;
-- earlier releases cached per listener across sessions). Errors propagate
-- (a 421).
local function listener_domain(s, conn, domain)
  if s.domains[domain] == nil then
    local found = false
    if stub.handlers.get_listener_domain ~= nil then
      local status, value = stub.call('get_listener_domain', domain, conn:get_meta 'received_via', conn)
      if status ~= 'ok' then
        error('get_listener_domain: ' .. tostring(value), 0)
      end
      found = value and value.params or false
    end
    s.domains[domain] = found
  end
  return s.domains[domain] or nil
end

-- LogReportDisposition: booleans are the legacy spelling (true is
-- LogThenRelay).
local function logs(disposition)
  return disposition == true or disposition == 'LogThenRelay' or disposition == 'LogThenDrop'
end

-- check_relaying: the peer in relay_hosts (default loopback), or in the
-- sender domain's relay_from, or the recipient domain's relay_to; a RCPT is
-- also accepted when the domain logs OOB or ARF reports.
local function check_relaying(s, conn, sender, recipient)
  local relay_hosts = s.params.relay_hosts or { '127.0.0.1', '::1' }
  local relay = native.cidr_contains(relay_hosts, s.peer_ip)
  local from = listener_domain(s, conn, stub.address(sender).domain or '')
  if from and from.relay_from then
    relay = relay or native.cidr_contains(from.relay_from, s.peer_ip)
  end
  local to = listener_domain(s, conn, stub.address(recipient).domain or '')
  relay = relay or (to ~= nil and to.relay_to == true)
  local accept = relay or (to ~= nil and (logs(to.log_oob) or logs(to.log_arf)))
  return relay, accept
end

-- Command::MailFrom: one transaction at a time; the event may refuse.
function stub.mail_from(conn, sender)
  local s = session_of(conn)
  if s.txn ~= nil then
    return 503, '5.5.0 MAIL FROM already issued; you must RSET first'
  end
  local code, text = event(s, 'smtp_server_mail_from', stub.address(sender), conn)
  if code ~= nil then
    return code, text
  end
  s.txn = { sender = sender, recipients = {} }
  return 250, 'OK <' .. sender .. '>'
end

-- Command::RcptTo: relaying is checked before smtp_server_rcpt_to runs.
function stub.rcpt_to(conn, recipient)
  local s = session_of(conn)
  if s.txn == nil then
    return 503, '5.5.0 MAIL FROM must be issued first'
  end
  local ok, relay, accept = pcall(check_relaying, s, conn, s.txn.sender, recipient)
  if not ok then
    return technical_difficulties(s)
  end
  if not accept then
    return 550, '5.7.1 relaying not permitted for ' .. conn:get_meta 'received_from'
  end
  local code, text = event(s, 'smtp_server_rcpt_to', stub.address(recipient), conn)
  if code ~= nil then
    return code, text
  end
  table.insert(s.txn.recipients, { email = recipient, relay = relay })
  return 250, 'OK <' .. recipient .. '>'
end

function stub.rset(conn)
  session_of(conn).txn = nil
  return 250, 'Reset state'
end

---------------------------------------------------------------- DATA

-- smtp_server.rs process_data: one message per recipient, its meta a copy
-- of the connection meta at that moment and nothing else, and a Received
-- header first unless the listener's trace_headers turn it off (default
-- on).
local plain_message = stub.message
function stub.message(spec, conn)
  if conn == nil or rawget(conn, '_session') == nil then
    return plain_message(spec, conn)
  end
  local s = session_of(conn)
  assert(spec.meta == nil, 'stub: kumod gives a message only the connection meta')
  assert(
    type(spec.recipients) == 'table' and #spec.recipients == 1,
    'stub: kumod makes one message per recipient at DATA'
  )
  local msg = plain_message(spec, conn)
  -- A snapshot (ConnectionMetaData::clone_inner), sharing no tables.
  msg._meta = copy_json(conn._meta)
  local trace = s.params.trace_headers or {}
  if trace.received_header ~= false then
    msg:prepend_header(
      'Received',
      string.format(
        'from %s (%s)\r\n  by %s (KumoMTA %s) \r\n  with ESMTP id %s for <%s>;\r\n  %s',
        s.ehlo or 'unspecified',
        s.peer_ip,
        s.hostname,
        s.via_ip,
        msg:id(),
        spec.recipients[1],
        native.rfc2822(stub.now())
      )
    )
  end
  return msg
end

-- TraceHeaders::apply_supplemental: after smtp_server_message_received
-- accepted it, the supplemental header (default X-KumoRef, default on) is
-- prepended: base64 of JSON with a marker, the recipient and each
-- include_meta_names key (null when unset, since a missing meta key reads
-- as null).
local function apply_supplemental(s, msg)
  local trace = s.params.trace_headers or {}
  if trace.supplemental_header == false then
    return
  end
  local value = native.kumo_ref(msg:recipient().email, trace.include_meta_names or {}, msg._meta)
  msg:prepend_header(trace.header_name or 'X-KumoRef', value)
end

-- smtp_server_message_received for a message made from `conn`: a
-- kumo.reject answers with its code, any other error ends the session.
function stub.receive(msg, conn)
  local s = session_of(conn)
  local result = table.pack(stub.call('smtp_server_message_received', msg, conn))
  if result[1] == 'ok' then
    apply_supplemental(s, msg)
  elseif result[1] == 'error' then
    s.closed = true
  elseif result[2] == 421 then
    s.closed = true
  end
  return table.unpack(result, 1, result.n)
end

-- process_data for the open transaction: a message per recipient from
-- `spec` ({ headers, body }); every one goes through
-- smtp_server_message_received before any is taken (one refusal refuses the
-- batch), then each gets its supplemental header and is relayed if its
-- recipient may be; none relayed (and none sent to the "null" queue) is a
-- 550. Returns the reply and the messages.
function stub.data(conn, spec)
  local s = session_of(conn)
  if s.txn == nil or #s.txn.recipients == 0 then
    return 503, '5.5.0 RCPT TO must be issued first', {}
  end
  local txn = s.txn
  s.txn = nil
  local messages = {}
  for i, recipient in ipairs(txn.recipients) do
    local msg = stub.message({
      sender = txn.sender,
      recipients = { recipient.email },
      headers = spec.headers,
      body = spec.body,
    }, conn)
    local status, a, b = stub.call('smtp_server_message_received', msg, conn)
    if status == 'rejected' then
      local code, text = rejected(s, a, b)
      return code, text, {}
    elseif status == 'error' then
      local code, text = technical_difficulties(s)
      return code, text, {}
    end
    messages[i] = msg
  end
  local relayed, black_holed, ids = false, false, {}
  for i, msg in ipairs(messages) do
    apply_supplemental(s, msg)
    table.insert(ids, msg:id())
    if stub.queue_name(msg) == 'null' then
      black_holed = true
    else
      relayed = relayed or txn.recipients[i].relay
    end
  end
  if not relayed and not black_holed then
    return 550, '5.7.1 relaying not permitted', messages
  end
  return 250, 'OK ids=' .. table.concat(ids, ' '), messages
end

---------------------------------------------------------------- queues

-- crates/message/src/message.rs get_queue_name: meta `queue`, else
-- `campaign:tenant@domain!routing_domain` from the meta and the recipient's
-- lower-cased domain.
function stub.queue_name(msg)
  local queue = msg:get_meta 'queue'
  if queue ~= nil then
    assert(type(queue) == 'string', "expected 'queue' to be a string value")
    return queue
  end
  local campaign, tenant = msg:get_meta 'campaign', msg:get_meta 'tenant'
  local routing = msg:get_meta 'routing_domain'
  local name = msg:recipient().domain:lower()
  if campaign ~= nil then
    name = campaign .. ':' .. (tenant or '') .. '@' .. name
  elseif tenant ~= nil then
    name = tenant .. '@' .. name
  end
  if routing ~= nil then
    name = name .. '!' .. routing
  end
  return name
end

-- QueueNameComponents::parse (crates/kumo-api-types): campaign:tenant@domain!routing.
local function components(name)
  local prefix, rest = name:match '^(.-)@(.*)$'
  local c = {}
  if prefix == nil then
    rest = name
  else
    local campaign, tenant = prefix:match '^(.-):(.*)$'
    if campaign ~= nil then
      c.campaign, c.tenant = campaign, tenant
    else
      c.tenant = prefix
    end
  end
  c.domain, c.routing_domain = rest:match '^(.-)!(.*)$'
  if c.domain == nil then
    c.domain = rest
  end
  return c
end

-- What the Maildir protocol of the message's queue needs
-- (crates/kumod/src/queue/queue.rs, DeliveryProto::Maildir): the queue's
-- config from get_queue_config(domain, tenant, campaign, routing_domain),
-- and what the template context is made of (maildir.rs builds it).
function stub.maildir_plan(msg)
  local name = stub.queue_name(msg)
  local c = components(name)
  local status, config = stub.call('get_queue_config', c.domain, c.tenant, c.campaign, c.routing_domain)
  assert(status == 'ok', 'get_queue_config failed for ' .. name .. ': ' .. tostring(config))
  local protocol = config and config.params and config.params.protocol
  assert(
    type(protocol) == 'table' and protocol.maildir_path ~= nil,
    'queue ' .. name .. ' does not deliver to a maildir'
  )
  local sender = msg:sender()
  return {
    template = protocol.maildir_path,
    dir_mode = protocol.dir_mode,
    file_mode = protocol.file_mode,
    data = msg:get_data(),
    meta = msg._meta,
    queue = name,
    campaign = c.campaign,
    tenant = c.tenant,
    domain = c.domain,
    routing_domain = c.routing_domain,
    sender = sender,
    recipients = msg:recipient_list(),
  }
end
