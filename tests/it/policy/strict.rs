//! The stand-in `kumo` refuses what KumoMTA refuses (the rules and their
//! sources are in `tests/support/kumo_stub/`), shown on a few lines of Lua
//! each instead of the policy, so each rule is seen failing.

use super::*;

/// Loads `source` as the policy; the error it raised, if any.
fn load(source: &str) -> Result<KumoStub, String> {
    KumoStub::try_load_source(&json!({}), source)
}

fn refused(source: &str) -> String {
    match load(source) {
        Ok(_) => panic!("accepted: {source}"),
        Err(e) => e,
    }
}

fn failure(out: Outcome) -> String {
    match out {
        Outcome::Failed(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

const MEMOIZED: &str = r#"
local kumo = require 'kumo'
local function cached(name, fn)
  return kumo.memoize(fn, { name = name, ttl = '1 minute', capacity = 10 })
end
kumo.on('t.client', cached('client', function() return kumo.http.build_client {} end))
kumo.on('t.function', cached('function', function() return function() end end))
kumo.on('t.key', cached('key', function() return { [true] = 'yes' } end))
local tables = cached('table', function() return { 'a', n = 1, deep = { x = true } } end)
kumo.on('t.table', function()
  local t = tables()
  return type(t), t[1], t.n, t.deep.x
end)
kumo.on('t.write', function()
  local t = cached('written', function() return { a = 1 } end)()
  t.a = 2
end)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memoize_keeps_only_what_kumod_can_copy() {
    let stub = load(MEMOIZED).unwrap();
    // A userdata without `__memoize` (an HTTP client, a DKIM signer) fails
    // every call, as in kumod; so does a function or a boolean key.
    for _ in 0..2 {
        let e = failure(stub.fire("t.client", ()));
        assert!(e.contains("error converting Lua nil to function"), "{e}");
    }
    assert!(failure(stub.fire("t.function", ())).contains("unsupported"));
    assert!(failure(stub.fire("t.key", ())).contains("cannot be used as a key"));
    // Strings, numbers, booleans and nested tables come back, read-only.
    let Outcome::Returned(out) = stub.fire("t.table", ()) else {
        panic!("a table of strings, numbers and booleans is memoizable")
    };
    let out: Vec<Value> = out.iter().map(|v| stub.json(v)).collect();
    assert_eq!(out, [json!("userdata"), json!("a"), json!(1), json!(true)]);
    assert!(failure(stub.fire("t.write", ())).contains("read-only"));

    // Its parameters are MemoizeParams: known keys of the right types.
    let e = refused("kumo.memoize(print, { name = 'x', ttl = '1m', capacity = 1, size = 2 })");
    assert!(e.contains("unknown field `size`"), "{e}");
    let e = refused("kumo.memoize(print, { name = 'x', ttl = '1m', capacity = '10' })");
    assert!(e.contains("invalid type: string"), "{e}");
    let e = refused("kumo.memoize(print, { name = 'x', ttl = '1m' })");
    assert!(e.contains("missing field `capacity`"), "{e}");
    // A detached cache must be made at the top level.
    let stub = load(
        "kumo.on('init', function() kumo.memoize(print, \
         { name = 'x', ttl = '1m', capacity = 1, detached = true }) end)",
    )
    .unwrap();
    assert!(failure(stub.fire("init", ())).contains("detached = true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_parse_as_kumod_parses_them() {
    let memoize = |ttl: &str| {
        load(&format!(
            "kumo.memoize(print, {{ name = 'x', capacity = 1, ttl = {ttl} }})"
        ))
        .map(drop)
    };
    for good in [
        "'5s'",
        "'60 seconds'",
        "'1m'",
        "'5 minutes'",
        "'1h 30m'",
        "90",
        "1.5",
    ] {
        assert!(memoize(good).is_ok(), "{good} is a duration");
    }
    for bad in ["'5 secs ago'", "'five seconds'", "'10'", "-1", "{}"] {
        let e = memoize(bad).expect_err(bad);
        assert!(e.contains("duration"), "{bad}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_take_handlers_as_kumod_does() {
    // Single events take one handler; get_queue_config takes many.
    let e = refused(
        "kumo.on('get_egress_path_config', print)\nkumo.on('get_egress_path_config', print)",
    );
    assert!(
        e.contains("get_egress_path_config event already has a handler"),
        "{e}"
    );
    for single in [
        "get_egress_source",
        "get_egress_pool",
        "smtp_server_message_received",
    ] {
        assert!(
            load(&format!(
                "kumo.on('{single}', print)\nkumo.on('{single}', print)"
            ))
            .is_err()
        );
    }
    // A handler returning nothing passes the event on; `return nil` ends it.
    let stub = load(
        "kumo.on('get_queue_config', function(d) if d == 'a' then return end return nil end)\n\
         kumo.on('get_queue_config', function() return 'second' end)\n\
         kumo.on('init', function() kumo.on('get_queue_config', print) end)",
    )
    .unwrap();
    let queue = |d: &str| {
        stub.json(
            &stub
                .fire("get_queue_config", (d, LuaNil, LuaNil, LuaNil))
                .value(),
        )
    };
    assert_eq!(queue("a"), json!("second"));
    assert_eq!(queue("b"), Value::Null);
    // Handlers are registered at load, never from inside one.
    assert!(failure(stub.fire("init", ())).contains("from within the event handler 'init'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constructors_refuse_what_kumod_refuses() {
    let cases = [
        (
            "kumo.start_esmtp_listener { relay_hosts = {} }",
            "invalid type: map, expected a sequence",
        ),
        (
            "kumo.start_esmtp_listener { relay_hosts = { '10.0.0.1/8' } }",
            "host bits",
        ),
        (
            "kumo.start_esmtp_listener { trace_headers = { received = false } }",
            "unknown field `received`",
        ),
        (
            "kumo.start_esmtp_listener { batch_handling = 'Bifurcate' }",
            "unknown variant `Bifurcate`",
        ),
        (
            "kumo.start_esmtp_listener { peer = { ['10.0.0.0/8'] = { banner = 1 } } }",
            "invalid type",
        ),
        (
            "kumo.make_queue_config { protocol = {} }",
            "did not match any variant",
        ),
        (
            "kumo.make_queue_config { protocol = { maildir_path = '/m', file_mode = '0660' } }",
            "did not match any variant",
        ),
        (
            "kumo.make_queue_config { protocol = { custom_lua = { constructor = 'x', batch = 1 } } }",
            "did not match any variant",
        ),
        (
            "kumo.make_queue_config { retry_interval = '1 fortnight' }",
            "expected a duration",
        ),
        (
            "kumo.make_listener_domain { relay = true }",
            "unknown field `relay`",
        ),
        (
            "kumo.define_spool { name = 'data' }",
            "missing field `path`",
        ),
        (
            "kumo.configure_local_logs { log_dir = '/l', per_record = { Bounced = {} } }",
            "unknown variant `Bounced`",
        ),
        (
            "kumo.configure_log_hook { name = 'h', metas = {} }",
            "unknown field `metas`",
        ),
        (
            "kumo.configure_bounce_classifier { files = 'iana.toml' }",
            "invalid type: string",
        ),
        (
            "kumo.start_http_listener { listen = '127.0.0.1:8000', trusted = {} }",
            "unknown field `trusted`",
        ),
        (
            "kumo.make_egress_source { name = 's', source_address = '10.0.0.300' }",
            "invalid",
        ),
        (
            "kumo.make_egress_source { name = 's', ehlo = 'mail' }",
            "unknown field `ehlo`",
        ),
        (
            "kumo.make_egress_pool { name = 'p', entries = 'ip-1' }",
            "invalid type: string",
        ),
        (
            "kumo.make_egress_path { enable_tls = 'Yes' }",
            "unknown variant `Yes`",
        ),
        (
            "kumo.make_egress_path { max_message_rate = 'lots' }",
            "invalid throttle",
        ),
        (
            "kumo.make_egress_path { connect_timeout = '1 aeon' }",
            "expected a duration",
        ),
        (
            "kumo.make_egress_path { connection_limits = 2 }",
            "unknown field `connection_limits`",
        ),
        (
            "kumo.dkim.rsa_sha256_signer { domain = 'd', selector = 's', headers = { 'From' } }",
            "missing field `key`",
        ),
    ];
    for (source, expect) in cases {
        let e = refused(source);
        assert!(e.contains(expect), "{source}: {e}");
    }
    // And what they accept: an egress source per public IP, a pool of
    // them. `{}` is a map only where kumod buffers the table first (the
    // listener's flattened options), so an empty pool list passes.
    load(
        "kumo.make_egress_source { name = 'ip-1', source_address = '192.0.2.1', ehlo_domain = 'mx1.grove.test' }\n\
         kumo.make_egress_pool { name = 'pool', entries = { { name = 'ip-1', weight = 2 } } }\n\
         kumo.make_egress_pool { name = 'empty', entries = {} }\n\
         kumo.make_egress_path { enable_tls = 'Required', connection_limit = 10, \
           max_message_rate = '100/h', prohibited_hosts = { '127.0.0.0/8' }, connect_timeout = '30s' }\n\
         kumo.configure_log_hook { name = 'h' }",
    )
    .unwrap();
    assert!(
        refused("kumo.configure_log_hook { name = 'h' }\nkumo.configure_log_hook { name = 'h' }")
            .contains("already been registered")
    );
}

const SHAPING: &str = r#"
local shaping = require 'policy-extras.shaping'
shaper = shaping:setup_with_automation {
  extra_files = { '/opt/kumomta/etc/policy/shaping.toml' },
  cache_ttl = '5 minutes',
}
kumo.on('get_egress_path_config', shaper.get_egress_path_config)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shaping_helper_loads_its_files_as_kumod_does() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let default = write(
        "default.toml",
        "[default]\nconnection_limit = 10\nenable_tls = \"Opportunistic\"\n\n\
         [\"example.com\"]\nmax_deliveries_per_connection = 50\n",
    );
    let ours = write(
        "ours.toml",
        "[\"example.com\"]\nconnection_limit = 3\n\n\
         [\"example.com\".sources.\"ip-1\"]\nmax_message_rate = \"20/h\"\n",
    );
    let stub = load(SHAPING).unwrap();
    let path_config = |stub: &KumoStub| {
        stub.fire(
            "get_egress_path_config",
            ("example.com", "ip-1", "example.com"),
        )
    };

    // The default file is read unless no_default_files: missing, it fails.
    let e = failure(path_config(&stub));
    assert!(
        e.contains("/opt/kumomta/share/policy-extras/shaping.toml"),
        "{e}"
    );

    stub.map_file("/opt/kumomta/share/policy-extras/shaping.toml", &default);
    stub.map_file("/opt/kumomta/etc/policy/shaping.toml", &ours);
    let out = path_config(&stub);
    assert_eq!(
        stub.json(&out.value()),
        json!({ "kind": "egress_path", "params": {
            "connection_limit": 3, "enable_tls": "Opportunistic",
            "max_deliveries_per_connection": 50, "max_message_rate": "20/h",
            "refresh_strategy": "Epoch",
        }})
    );

    // A key no egress path has fails the load, naming file and entry.
    let typo = write("typo.toml", "[\"example.com\"]\nconection_limit = 3\n");
    let stub = load(SHAPING).unwrap();
    stub.map_file("/opt/kumomta/share/policy-extras/shaping.toml", &default);
    stub.map_file("/opt/kumomta/etc/policy/shaping.toml", &typo);
    let e = failure(path_config(&stub));
    assert!(
        e.contains("[example.com]") && e.contains("unknown field `conection_limit`"),
        "{e}"
    );

    // The older `shaping:setup(files)` reads the same files.
    let stub = load(
        "local shaping = require 'policy-extras.shaping'\n\
         kumo.on('get_egress_path_config', shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' })",
    )
    .unwrap();
    stub.map_file("/opt/kumomta/share/policy-extras/shaping.toml", &default);
    stub.map_file("/opt/kumomta/etc/policy/shaping.toml", &ours);
    assert_eq!(
        stub.json(&path_config(&stub).value())["params"]["connection_limit"],
        3
    );

    // Its options go through kumo.memoize, so a bad cache_ttl is refused.
    let e = refused(&SHAPING.replace("'5 minutes'", "'5 minits'"));
    assert!(e.contains("expected a duration"), "{e}");
}
