--[[
InboxGrove policy for KumoMTA.

Requires KumoMTA 2025.12.02-67ee9e96 or newer. That release has everything
used below: listener `meta` and `batch_handling`, string `log_oob`/`log_arf`,
maildir path templates and modes, `kumo.memoize{ invalidate_with_epoch }`,
`kumo.digest.hmac_sha256`, and the per-session `get_listener_domain` cache
(#320): anything before 2025.01.23 must never do AUTH-based relaying.

KumoMTA owns SMTP; InboxGrove owns every decision. Each handler asks the
appliance's loopback control endpoint (`/kumo/v1/...`, bearer secret) and
turns its answer into an SMTP reply. When the appliance cannot answer, the
reply is a temporary failure: nothing is accepted, relayed or authenticated
on a guess.

"Fact sheet §n" refers to the KumoMTA facts sheet the project keeps beside
its specification; the doc pages it cites are on docs.kumomta.com.

Settings come from the JSON file named by $INBOXGROVE_POLICY_CONFIG, else
/opt/kumomta/etc/policy/inboxgrove/inboxgrove.json (see inboxgrove.example.json).
]]

local kumo = require 'kumo'
-- Installed with KumoMTA in /opt/kumomta/share/policy-extras (fact sheet §1).
local log_hooks = require 'policy-extras.log_hooks'
local shaping = require 'policy-extras.shaping'

local DEFAULT_CONFIG = '/opt/kumomta/etc/policy/inboxgrove/inboxgrove.json'

-- Queue names: no real domain ends in these, so no recipient domain can
-- collide with them (the log_hooks helper uses the same trick).
local MAILDIR_QUEUE = 'inboxgrove.maildir'
local LOG_HOOK = 'inboxgrove'
-- The pool of domains bound to no address (the appliance's
-- `domains::egress::DEFAULT_POOL`).
local DEFAULT_POOL = 'inboxgrove'

-- Meta keys that log records (local logs and the log hook) carry; the
-- appliance reads `mailbox_id` (or `x_mailbox_id`) to attribute events.
-- `x_auth_attempt` names the login a refused AUTH tried, so the
-- appliance can count refused logins per mailbox from the Rejection record
-- (whose own `response.command` is the SASL payload, which it never reads).
local LOG_META = { 'mailbox_id', 'x_mailbox_id', 'authn_id', 'x_listener', 'x_auth_attempt' }

-- Headers the log hook's records carry: the Reception of a submitted
-- message logs its Message-ID, which an ARF report quotes from the
-- reported message, so the appliance acts on a complaint only about a
-- message it sent (issue 12, point 5). One header: each one listed is
-- looked up for every record.
local LOG_HEADERS = { 'Message-ID' }

-- The warmup engine's marker (`warmup::marker::HEADER` in the appliance):
-- an HMAC of the Message-ID and the mailbox that the appliance checks in
-- send-check. Removed from every submitted message before signing, valid
-- or forged, so it never leaves the host.
local WARMUP_MARKER = 'X-Grove-Ref'

-- Headers the DKIM signature covers (fact sheet §4, RFC 6376 §5.4.1), with
-- both List-Unsubscribe headers as RFC 8058 §4 requires for one-click.
local SIGNED_HEADERS = {
  'From', 'To', 'Cc', 'Reply-To', 'Subject', 'Date', 'Message-ID',
  'In-Reply-To', 'References', 'MIME-Version', 'Content-Type',
  'List-Unsubscribe', 'List-Unsubscribe-Post',
}

-- `relay_hosts` defaults to loopback, and `{}` is refused at start-up
-- (fact sheet, "Verified by running KumoMTA"). The limited broadcast
-- address never opens a TCP connection, so this grants nobody relaying by
-- address; relaying is decided per session in get_listener_domain.
local NOBODY = { '255.255.255.255/32' }

---------------------------------------------------------------- settings

local function load_settings(path)
  -- kumo.serde.json_load: since 2024.09.02 (fact sheet §3).
  local raw = kumo.serde.json_load(path)
  local function text(key, default)
    local value = raw[key]
    if value == nil then
      value = default
    end
    if type(value) ~= 'string' or value == '' then
      error(string.format('%s: %q must be a non-empty string', path, key), 0)
    end
    return value
  end
  local function optional(key)
    local value = raw[key]
    if value ~= nil and (type(value) ~= 'string' or value == '') then
      error(string.format('%s: %q must be a non-empty string', path, key), 0)
    end
    return value
  end

  -- The secret file holds the token as hex; a trailing newline is not part
  -- of it. kumo.secrets.load takes a KeySource (a path here).
  local secret = kumo.secrets.load(
    text('control_secret_file', '/opt/kumomta/etc/policy/inboxgrove/inboxgrove.secret')
  )
  secret = secret:match '^%s*(.-)%s*$'
  if secret == '' then
    error(path .. ': the control secret file is empty', 0)
  end

  return {
    control_url = (
      text('control_url', 'http://127.0.0.1:8081/kumo/v1'):gsub('/+$', '')
    ),
    control_timeout = text('control_timeout', '5s'),
    secret = secret,
    mail_root = (text('mail_root', '/var/lib/inboxgrove-mail'):gsub('/+$', '')),
    hostname = text 'hostname',
    tls_certificate = optional 'tls_certificate',
    tls_private_key = optional 'tls_private_key',
    inbound_listen = text('inbound_listen', '0.0.0.0:25'),
    submission_listen = text('submission_listen', '0.0.0.0:587'),
    http_listen = text('http_listen', '127.0.0.1:8000'),
    spool_dir = text('spool_dir', '/var/spool/kumomta'),
    shaping_file = text('shaping_file', '/opt/kumomta/etc/policy/inboxgrove/shaping.toml'),
    log_dir = text('log_dir', '/var/log/kumomta'),
  }
end

-- Top-level code runs again in every new Lua context (fact sheet §1);
-- reading one small file is cheap, and a broken file stops `kumod
-- --validate` and start-up instead of failing each message.
local S = load_settings(os.getenv 'INBOXGROVE_POLICY_CONFIG' or DEFAULT_CONFIG)

---------------------------------------------------------------- control endpoint

-- One client per Lua context keeps its connection pool (fact sheet §3);
-- upvalues are per context, which is what a client needs.
local http_client
local function client()
  if http_client == nil then
    http_client = kumo.http.build_client { timeout = S.control_timeout }
  end
  return http_client
end

-- Percent-encodes a path segment (RFC 3986 §3.3) so an address from the
-- SMTP dialogue cannot add path segments or a query.
local function segment(s)
  return (
    s:gsub('[^%w%-%._~@+]', function(c)
      return string.format('%%%02X', c:byte())
    end)
  )
end

-- Calls the appliance with an optional JSON body (a string). Returns the
-- status and the raw answer; raises when the request cannot be made
-- (connection refused, timeout).
local function control(method, path, body)
  local url = S.control_url .. path
  local request = method == 'POST' and client():post(url) or client():get(url)
  request:bearer_auth(S.secret)
  if body ~= nil then
    request:header('Content-Type', 'application/json')
    request:body(body)
  end
  local response = request:send()
  -- Read the status first: once the body is read, a Response answers
  -- nothing else (fact sheet §3).
  local status = response:status_code()
  return status, response:text()
end

-- Calls the appliance and decodes its JSON answer. Raises unless the status
-- is one of `expected`, so a broken appliance is never read as "no".
local function control_json(method, path, payload, expected)
  -- kumo.http has no :json(); encode by hand (fact sheet §3).
  local status, body =
    control(method, path, payload ~= nil and kumo.serde.json_encode(payload) or nil)
  for _, want in ipairs(expected or { 200 }) do
    if status == want then
      return status, kumo.serde.json_parse(body)
    end
  end
  error(
    string.format('InboxGrove %s %s answered %d: %s', method, path, status, body:sub(1, 200)),
    0
  )
end

-- Cached lookups. kumo.memoize caches are process-wide; errors are not
-- cached, so an unreachable appliance is asked again next time. The
-- appliance (or an operator) bumps the config epoch after a change, which
-- empties every cache below at once (fact sheet §1, §3).
local function cached(name, ttl, fn)
  return kumo.memoize(fn, {
    name = 'user.inboxgrove.' .. name,
    ttl = ttl,
    capacity = 10000,
    invalidate_with_epoch = true,
  })
end

-- Existence and pausing bump the epoch, but a mailbox filling up does not:
-- `full` is only as fresh as this TTL. So a mailbox at its quota is
-- refused at most 10 seconds after it fills (the appliance counts the
-- messages on disk as well as Dovecot's maildirsize), for one lookup per
-- recipient per 10 seconds.
local mailbox_info = cached('mailbox', '10 seconds', function(address)
  local _, answer = control_json('GET', '/mailboxes/' .. segment(address))
  return answer
end)

-- `{hosted, egress_pool}`; a domain's change bumps the epoch.
local domain_info = cached('domain', '5 minutes', function(domain)
  local _, answer = control_json('GET', '/domains/' .. segment(domain))
  return { hosted = answer.hosted == true, egress_pool = answer.egress_pool }
end)

-- The egress sources and pools (`{sources = {{name, source_address}},
-- pools = {{name, sources}}}`); see `get_egress_source` below.
local egress_plan = cached('egress', '1 minute', function()
  local _, answer = control_json('GET', '/egress')
  return answer
end)

-- The domain's key material, not a signer: kumo.memoize copies a result
-- out of Lua, and it can copy only strings, numbers, booleans, tables of
-- those and userdata with a `__memoize` metamethod
-- (crates/mod-memoize/src/lib.rs, `impl FromLua for CacheValue`). A DKIM
-- signer has none (crates/message/src/dkim.rs), so a memoized signer fails
-- every call ("error converting Lua nil to function", seen in a real
-- kumod). The signer is built per message from this table; KumoMTA keeps
-- its own cache of signers and parsed keys behind the constructor
-- (`SignerConfig.ttl`, 300 s by default).
local dkim_key = cached('dkim', '5 minutes', function(domain)
  local _, key = control_json('GET', '/dkim/' .. segment(domain))
  return {
    domain = key.domain,
    selector = key.selector,
    private_key_pem = key.private_key_pem,
  }
end)

local function dkim_signer(domain)
  local key = dkim_key(domain)
  return kumo.dkim.rsa_sha256_signer {
    domain = key.domain,
    selector = key.selector,
    headers = SIGNED_HEADERS,
    -- Signs each listed header once more than present, so a header added
    -- in transit breaks the signature (over_sign since 2024.06.10).
    over_sign = true,
    key = { key_data = key.private_key_pem },
  }
end

---------------------------------------------------------------- small helpers

local function listener_of(conn_meta)
  return conn_meta:get_meta 'x_listener'
end

local function domain_of(address)
  return address:match '@([^@]+)$'
end

-- `received_from` is the peer's `ip:port` (`[v6]:port` for IPv6).
local function peer_ip(conn_meta)
  local from = conn_meta:get_meta 'received_from' or ''
  return from:match '^%[(.-)%]:%d+$' or from:match '^([^:]+):%d+$'
end

-- The appliance answers `<domain>/<username>`, both validated names; the
-- pattern is a second guard, so no answer can climb out of the mail root.
local function safe_maildir(relative)
  if type(relative) ~= 'string' or relative:find('..', 1, true) then
    return nil
  end
  return relative:match '^%w[%w%.%-]*/%w[%w%.%-_]*$'
end

-- At its quota (the appliance reads maildirsize and the maildir): a temporary
-- failure, RFC 3463 X.2.2 "mailbox full", so the sender retries once the
-- owner makes room instead of bouncing.
local function refuse_if_full(box)
  if box.full == true then
    kumo.reject(452, '4.2.2 Mailbox full, try again later')
  end
end

---------------------------------------------------------------- SMTP AUTH

-- The memoize key is every argument (fact sheet §3), so the clear password
-- must not be one: the cache is keyed on an HMAC of login and password, and
-- the password reaches the lookup through this per-context table.
local pending_logins = {}

local check_login = cached('auth', '60 seconds', function(username, digest)
  local login = pending_logins[digest]
  local status, answer = control_json('POST', '/auth', {
    username = username,
    password = login.password,
    source_ip = login.source_ip,
  }, { 200, 401 })
  if status == 200 and answer.ok == true then
    return { mailbox_id = answer.mailbox_id, email = answer.email }
  end
  -- A refusal says so; a 401 without `ok` is the control endpoint refusing
  -- our secret, which must not look like a wrong password to the client.
  if status == 401 and answer.ok == false then
    return false
  end
  error(string.format('InboxGrove POST /auth answered %d without a verdict', status), 0)
end)

-- A refusal (KumoMTA answers 535) that the Rejection record can tie to
-- the login it tried.
local function refuse_login(conn_meta, username)
  conn_meta:set_meta('x_auth_attempt', username)
  return false
end

kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  local username = authc:lower()
  -- Port 25 offers AUTH after STARTTLS too; only submission logs in
  -- (fact sheet §2, port-587 enforcement).
  if listener_of(conn_meta) ~= 'submission' then
    return refuse_login(conn_meta, username)
  end
  -- RFC 4616 §2: authz names who to act as; only the login itself is
  -- allowed, else one mailbox could claim another (fact sheet §2).
  -- KumoMTA passes authc as authz when the client sent none
  -- (crates/kumod/src/smtp_server.rs, AUTH PLAIN).
  if authz ~= nil and authz ~= '' and authz:lower() ~= username then
    return refuse_login(conn_meta, username)
  end
  local digest =
    kumo.digest.hmac_sha256({ key_data = S.secret }, username .. '\0' .. password).hex
  pending_logins[digest] = { password = password, source_ip = peer_ip(conn_meta) }
  local ok, login = pcall(check_login, username, digest)
  pending_logins[digest] = nil
  if not ok then
    kumo.log_error('inboxgrove: AUTH lookup failed: ' .. tostring(login))
    -- RFC 4954 §6: a temporary failure, never an accept on a guess.
    kumo.reject(454, '4.7.0 Temporary authentication failure, try again later')
  end
  if not login then
    return refuse_login(conn_meta, username)
  end
  -- KumoMTA sets authn_id itself on success; these ride along into message
  -- meta and log records (fact sheet §2).
  conn_meta:set_meta('x_mailbox_id', login.mailbox_id)
  conn_meta:set_meta('x_mailbox_email', login.email)
  return true
end)

---------------------------------------------------------------- relaying

-- AUTH alone grants no relaying: a RCPT passes only if this returns
-- relay_to for the recipient domain (fact sheet §2, the gotcha). Errors
-- here become "421 4.3.0 technical difficulties", a temporary reply, which
-- is the right answer when the appliance cannot say whether it hosts a
-- domain; a deny would bounce real mail for good.
kumo.on('get_listener_domain', function(domain, _listener, conn_meta)
  -- kumod asks for the sender's domain too (smtp_server.rs,
  -- check_relaying), and a DSN's reverse path is null (RFC 5321 §4.5.5,
  -- RFC 3464 §2): no domain, nothing to look up; asking the appliance for
  -- it would fail and answer every bounce report with 421.
  if domain == '' then
    return nil
  end
  local listener = listener_of(conn_meta)
  if listener == 'submission' then
    if conn_meta:get_meta 'authn_id' then
      return kumo.make_listener_domain { relay_to = true }
    end
    return nil
  end
  if listener == 'inbound' and domain_info(domain:lower()).hosted then
    -- DSNs go to the mailbox and are logged as OOB records; ARF reports
    -- are logged as Feedback and kept out of the inbox (fact sheet §5).
    return kumo.make_listener_domain {
      relay_to = true,
      log_oob = 'LogThenRelay',
      log_arf = 'LogThenDrop',
    }
  end
  return nil
end)

kumo.on('smtp_server_mail_from', function(sender, conn_meta)
  if listener_of(conn_meta) ~= 'submission' then
    return
  end
  local mailbox = conn_meta:get_meta 'x_mailbox_email'
  if conn_meta:get_meta 'authn_id' == nil or mailbox == nil then
    kumo.reject(530, '5.7.0 Authentication required')
  end
  if (sender.email or ''):lower() ~= mailbox:lower() then
    kumo.reject(550, '5.7.1 The envelope sender must be ' .. mailbox)
  end
end)

-- Inbound: get_listener_domain admitted the domain; only live mailboxes
-- take mail, so no maildir is ever made for a guessed local part (fact
-- sheet §5).
kumo.on('smtp_server_rcpt_to', function(recipient, conn_meta)
  if listener_of(conn_meta) ~= 'inbound' then
    return
  end
  local ok, box = pcall(mailbox_info, recipient.email:lower())
  if not ok then
    kumo.log_error('inboxgrove: mailbox lookup failed: ' .. tostring(box))
    kumo.reject(451, '4.3.0 Mailbox lookup failed, try again later')
  end
  if not box.exists then
    kumo.reject(550, '5.1.1 No such mailbox here')
  end
  if not box.active then
    -- Paused mailboxes come back; let the sender retry (RFC 3463 X.2.1).
    kumo.reject(450, '4.2.1 Mailbox disabled, try again later')
  end
  refuse_if_full(box)
end)

---------------------------------------------------------------- submission

-- RFC 8058 §3.1 / RFC 2369: the one-click HTTPS link and a mailto
-- fallback, only when the sender set none. The appliance makes the links
-- (its vault seals the token naming mailbox and recipient) and hands them
-- over in the send-check answer.
local function add_list_unsubscribe(msg, links)
  if links == nil or msg:get_first_named_header_value 'List-Unsubscribe' ~= nil then
    return
  end
  msg:prepend_header(
    'List-Unsubscribe',
    string.format('<%s>, <%s>', links.url, links.mailto)
  )
  msg:prepend_header('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click')
end

local function recipients_of(msg)
  local list = {}
  for _, r in ipairs(msg:recipient_list()) do
    table.insert(list, r.email)
  end
  return list
end

-- Called once per recipient copy (BifurcateAlways), so each send-check
-- counts one message against the daily limit (fact sheet §7). Everything
-- that can refuse the message runs before that count, so a counted message
-- is a queued one.
local function submitted(msg)
  local mailbox = msg:get_meta 'x_mailbox_email'
  local mailbox_id = msg:get_meta 'x_mailbox_id'
  if msg:get_meta 'authn_id' == nil or mailbox == nil then
    kumo.reject(530, '5.7.0 Authentication required')
  end

  -- The signer and the egress pool first: a lookup that fails refuses the
  -- message before the appliance counts it.
  local domain = domain_of(mailbox)
  local built, signer = pcall(dkim_signer, domain)
  if not built then
    kumo.log_error('inboxgrove: DKIM key lookup failed: ' .. tostring(signer))
    kumo.reject(451, '4.3.0 Signing key unavailable, try again later')
  end
  local found, info = pcall(domain_info, domain)
  if not found then
    kumo.log_error('inboxgrove: domain lookup failed: ' .. tostring(info))
    kumo.reject(451, '4.3.0 Domain lookup failed, try again later')
  end

  -- The warmup marker is read, then every copy of it removed, before
  -- anything can refuse the message: whatever happens next, no marker
  -- reaches the signer or the wire. The appliance decides whether it is
  -- valid; nil fields are left out of the JSON (no marker, no Message-ID).
  local marker = msg:get_first_named_header_value(WARMUP_MARKER)
  local message_id = msg:get_first_named_header_value 'Message-ID'
  msg:remove_all_named_headers(WARMUP_MARKER)

  -- Every From and Sender header goes to the appliance, which parses them
  -- as RFC 5322 says: a second From, or a second address hidden in one
  -- (a group, a list, a comment), must not slip past a check of the first.
  local ok, failure, decision = pcall(control_json, 'POST', '/send-check', {
    authn_id = mailbox,
    envelope_from = msg:sender().email,
    from_headers = msg:get_all_named_header_values 'From',
    sender_headers = msg:get_all_named_header_values 'Sender',
    recipients = recipients_of(msg),
    warmup_marker = marker,
    message_id = message_id,
  })
  if not ok then
    kumo.log_error('inboxgrove: send-check failed: ' .. tostring(failure))
    kumo.reject(451, '4.3.0 Sending check unavailable, try again later')
  end
  if not decision.allow then
    local code = decision.code
    -- The appliance's own verdicts (550 never, 452 limit, 451 not yet);
    -- anything else is a fault of ours, so the client retries.
    if code == 550 or code == 452 or code == 451 then
      kumo.reject(code, decision.reason)
    end
    kumo.reject(451, '4.3.0 Sending check refused, try again later')
  end

  msg:set_meta('mailbox_id', mailbox_id)
  -- The tenant names the domain's egress pool: the queue is
  -- `<tenant>@<recipient domain>`, and get_queue_config sends it through
  -- that pool.
  msg:set_meta('tenant', info.egress_pool or DEFAULT_POOL)
  add_list_unsubscribe(msg, decision.list_unsubscribe)
  -- Last: nothing may change a signed header after this (fact sheet §4).
  local sealed, sign_error = pcall(msg.dkim_sign, msg, signer)
  if not sealed then
    -- Counted but not sent: give the count back, then let the client
    -- retry. If even that fails the mailbox loses one send for today,
    -- never a message.
    kumo.log_error('inboxgrove: DKIM signing failed: ' .. tostring(sign_error))
    -- The same marker and Message-ID, so the count given back is the
    -- one send-check took (warmup or campaign).
    local released, release_error = pcall(control_json, 'POST', '/send-release', {
      authn_id = mailbox,
      warmup_marker = marker,
      message_id = message_id,
    })
    if not released then
      kumo.log_error('inboxgrove: send-release failed: ' .. tostring(release_error))
    end
    kumo.reject(451, '4.3.0 Signing failed, try again later')
  end
end

---------------------------------------------------------------- inbound

-- Hands the message to the maildir queue with a path built only from the
-- appliance's answer (fact sheet §5, per-recipient routing option 3).
local function arrived(msg)
  local rcpt = msg:recipient_list()[1].email:lower()
  local ok, box = pcall(mailbox_info, rcpt)
  if not ok then
    kumo.log_error('inboxgrove: mailbox lookup failed: ' .. tostring(box))
    kumo.reject(451, '4.3.0 Mailbox lookup failed, try again later')
  end
  if not (box.exists and box.active) then
    kumo.reject(550, '5.1.1 No such mailbox here')
  end
  -- Again at DATA: the mailbox may have filled since RCPT TO.
  refuse_if_full(box)
  local relative = safe_maildir(box.maildir)
  if relative == nil then
    kumo.log_error('inboxgrove: refusing maildir ' .. tostring(box.maildir))
    kumo.reject(451, '4.3.0 Mailbox not deliverable, try again later')
  end
  msg:set_meta('queue', MAILDIR_QUEUE)
  msg:set_meta('x_maildir', S.mail_root .. '/' .. relative .. '/Maildir')
  -- RFC 5321 §4.4: the delivering MTA records the envelope sender; maildir
  -- delivery does not (fact sheet §5), so do it here.
  msg:remove_all_named_headers 'Return-Path'
  msg:prepend_header('Return-Path', '<' .. (msg:sender().email or '') .. '>')
end

kumo.on('smtp_server_message_received', function(msg, conn_meta)
  local listener = listener_of(conn_meta)
  if listener == 'submission' then
    return submitted(msg)
  end
  if listener == 'inbound' then
    return arrived(msg)
  end
  kumo.reject(451, '4.3.0 Unknown listener')
end)

---------------------------------------------------------------- log hook

-- Maps the appliance's answer to a delivery outcome of the log-hook queue:
-- a string is success; kumo.reject 4xx is retried with backoff; a 5xx
-- would bounce the records for good (fact sheet §6, custom_lua semantics),
-- so it is never used. The appliance takes every record of a batch (one it
-- cannot read is kept aside there), so any other answer is a fault on its
-- side that a retry can outlive.
local function events_outcome(status, body, count)
  if status >= 200 and status < 300 then
    return string.format('%d: %d records: %s', status, count, body)
  end
  kumo.reject(451, string.format('4.3.0 InboxGrove answered %d, will retry', status))
end

-- Records are spooled and delivered by KumoMTA's queue, so a failed POST
-- is retried (1 min, backing off to 20 min) instead of dropped. Each record
-- goes with the spool id of the log-hook message that carries it: records
-- about sessions rather than messages (Rejection) have no spool id of
-- their own (`"id": ""`), and this one stays the same on every retry, so
-- the appliance stores each record once.
log_hooks:new {
  name = LOG_HOOK,
  -- batch_size: since 2024.11.08; the connection gets up to this many
  -- records that are ready, without waiting for more.
  batch_size = 100,
  log_parameters = { meta = LOG_META, headers = LOG_HEADERS },
  queue_config = { retry_interval = '1m', max_retry_interval = '20m' },
  constructor = function(_domain, _tenant, _campaign)
    local connection = {}
    function connection:send_batch(messages)
      -- Each body is the record's JSON as KumoMTA wrote it; wrapping it
      -- as text avoids a decode/encode round trip that could reshape
      -- fields (an empty list would come back as an object).
      local records = {}
      for i, message in ipairs(messages) do
        records[i] = string.format(
          '{"hook_id":%s,"record":%s}',
          kumo.serde.json_encode(message:id()),
          message:get_data()
        )
      end
      local ok, status, body =
        pcall(control, 'POST', '/events', '[' .. table.concat(records, ',') .. ']')
      if not ok then
        kumo.reject(451, '4.3.0 InboxGrove unreachable, will retry: ' .. tostring(status))
      end
      return events_outcome(status, body, #records)
    end
    return connection
  end,
}

---------------------------------------------------------------- egress

-- KumoMTA's community shaping rules (per-provider connection and message
-- rate limits for Gmail, Microsoft, Yahoo…, shipped as
-- /opt/kumomta/share/policy-extras/shaping.toml) and InboxGrove's own
-- additions (kumo-policy/shaping.toml), so a burst of warmup or campaign
-- mail stays inside what each provider accepts. Registered before the
-- catch-all get_queue_config below, like the log hook: the helper adds
-- handlers of its own (assets/policy-extras/shaping.lua).
local shaper = shaping:setup_with_automation {
  extra_files = { S.shaping_file },
  publish = {},
  subscribe = {},
}
kumo.on('get_egress_path_config', shaper.get_egress_path_config)

-- One source per public address (and the default, which binds none),
-- named and listed by the appliance; an unknown name raises, which defers
-- the mail instead of sending it from another address.
local function planned(list, name)
  for i = 1, #list do
    if list[i].name == name then
      return list[i]
    end
  end
  error('inboxgrove: the appliance lists no egress ' .. tostring(name), 0)
end

kumo.on('get_egress_source', function(name)
  local source = planned(egress_plan().sources, name)
  return kumo.make_egress_source {
    name = name,
    source_address = source.source_address,
    -- The EHLO name must be the address's PTR name, which is the server's
    -- hostname, for every address it sends from.
    ehlo_domain = S.hostname,
  }
end)

kumo.on('get_egress_pool', function(name)
  local pool = planned(egress_plan().pools, name)
  local entries = {}
  for i = 1, #pool.sources do
    entries[i] = { name = pool.sources[i] }
  end
  return kumo.make_egress_pool { name = name, entries = entries }
end)

---------------------------------------------------------------- queues

-- Registered after log_hooks:new and the shaper: get_queue_config handlers
-- run in registration order until one answers (fact sheet §6).
kumo.on('get_queue_config', function(domain, tenant, _campaign, _routing_domain)
  if domain == MAILDIR_QUEUE then
    return kumo.make_queue_config {
      protocol = {
        -- Rendered per recipient from the meta `arrived` set (since
        -- 2025.01.23, fact sheet §5).
        maildir_path = '{{ meta.x_maildir }}',
        -- Group-shared with Dovecot: setgid dirs, group-writable files.
        -- mail_root is 2770 in group inboxgrove-mail; kumod holds that
        -- group as a supplementary group from the package's drop-in for
        -- kumomta.service (`SupplementaryGroups=`: `--user` never reads
        -- /etc/group, crates/kumod/src/main.rs), and Dovecot's mail
        -- processes run as user inboxgrove-mail (see `inboxgrove
        -- dovecot-config`), so each side can read, flag and expunge what
        -- the other made (tests/it/privdrop.rs).
        dir_mode = tonumber('2770', 8),
        file_mode = tonumber('660', 8),
      },
    }
  end
  -- Submitted mail: the tenant is its domain's pool (see `submitted`).
  return kumo.make_queue_config { egress_pool = tenant or DEFAULT_POOL }
end)

---------------------------------------------------------------- init

local function with_tls(params)
  params.tls_certificate = S.tls_certificate
  params.tls_private_key = S.tls_private_key
  return params
end

kumo.on('init', function()
  kumo.define_spool { name = 'data', path = S.spool_dir .. '/data' }
  kumo.define_spool { name = 'meta', path = S.spool_dir .. '/meta' }
  kumo.configure_local_logs {
    log_dir = S.log_dir,
    max_segment_duration = '1 minute',
    meta = LOG_META,
  }
  -- Without it every Bounce is "Uncategorized" and the appliance can only
  -- go by the reply code (fact sheet §6).
  kumo.configure_bounce_classifier {
    files = { '/opt/kumomta/share/bounce_classifier/iana.toml' },
  }
  -- Admin API (bump-config-epoch, metrics): loopback only.
  kumo.start_http_listener { listen = S.http_listen }
  if S.tls_certificate == nil then
    kumo.log_warn 'inboxgrove: no tls_certificate; STARTTLS uses a self-signed certificate'
  end

  -- Port 25: mail for hosted mailboxes. Received stays, X-KumoRef goes.
  kumo.start_esmtp_listener(with_tls {
    listen = S.inbound_listen,
    hostname = S.hostname,
    relay_hosts = NOBODY,
    meta = { x_listener = 'inbound' },
    batch_handling = 'BifurcateAlways',
    trace_headers = { received_header = true, supplemental_header = false },
  })
  -- Port 587: STARTTLS then AUTH PLAIN (KumoMTA offers AUTH only after
  -- TLS). One message per recipient, so each counts once and gets its own
  -- unsubscribe token. No Received header: it would expose the client's IP;
  -- X-KumoRef carries the mailbox id back in ARF reports.
  kumo.start_esmtp_listener(with_tls {
    listen = S.submission_listen,
    hostname = S.hostname,
    relay_hosts = NOBODY,
    meta = { x_listener = 'submission' },
    batch_handling = 'BifurcateAlways',
    trace_headers = {
      received_header = false,
      supplemental_header = true,
      include_meta_names = { 'x_mailbox_id' },
    },
  })
end)
