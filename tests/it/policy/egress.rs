//! Outbound: KumoMTA's community shaping rules with InboxGrove's additions
//! on every egress path, and each domain's mail through its own pool.

use std::path::PathBuf;

use inboxgrove::config::DomainArgs;

use super::*;
use crate::domains::world_around;
use crate::helpers::Options;

/// The community rules' file, as the shaping helper loads it first.
const COMMUNITY_RULES: &str = "/opt/kumomta/share/policy-extras/shaping.toml";
/// Where the policy's `shaping_file` points by default.
const OUR_RULES: &str = "/opt/kumomta/etc/policy/inboxgrove/shaping.toml";

/// A few rules in the community file's format (it is KumoMTA's to ship,
/// not ours to copy).
fn community_rules(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("community-shaping.toml");
    std::fs::write(
        &path,
        r#"
["default"]
connection_limit = 10
max_deliveries_per_connection = 100

["gmail.com"]
mx_rollup = false
connection_limit = 3
max_message_rate = "100/min"
"#,
    )
    .unwrap();
    path
}

fn path_config(stub: &KumoStub, domain: &str, source: &str) -> Value {
    let out = stub.fire("get_egress_path_config", (domain, source, "site"));
    let config = stub.json(&out.value());
    assert_eq!(config["kind"], "egress_path", "{config}");
    config["params"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_is_shaped_by_the_community_rules_and_ours() {
    let w = world().await;
    let stub = policy(&w);
    stub.map_file(COMMUNITY_RULES, &community_rules(w.app.dir.path()));
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kumo-policy/shaping.toml");
    stub.map_file(OUR_RULES, &ours);

    let gmail = path_config(&stub, "gmail.com", "inboxgrove-default");
    assert_eq!(gmail["connection_limit"], 3, "{gmail}");
    assert_eq!(gmail["max_message_rate"], "100/min", "{gmail}");
    assert_eq!(
        gmail["max_deliveries_per_connection"], 100,
        "the default underneath"
    );
    let elsewhere = path_config(&stub, "example.net", "inboxgrove-default");
    assert_eq!(elsewhere["connection_limit"], 10, "{elsewhere}");
    // InboxGrove's own queues take their entries from kumo-policy/shaping.toml,
    // which therefore parses as KumoMTA's shaping loader parses it.
    let hook = path_config(&stub, "inboxgrove.log_hook", "inboxgrove-default");
    assert_eq!(hook["connection_limit"], 4, "{hook}");

    // Without the community file the helper cannot shape, and says so
    // rather than sending unshaped.
    let bare = policy(&w);
    bare.map_file(OUR_RULES, &ours);
    let out = bare.fire(
        "get_egress_path_config",
        ("gmail.com", "inboxgrove-default", "site"),
    );
    assert!(
        matches!(&out, Outcome::Failed(e) if e.contains("shaping.toml")),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_bound_to_an_address_sends_through_its_own_pool() {
    // 127.0.0.1 plays the public address this machine has.
    let w = world_around(Options {
        domains: DomainArgs {
            public_ipv4: Some("127.0.0.1".parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let boxes = mailboxes(&w, "bound.test", 1, 50).await;
    let (_, list) = w.app.get("/api/v1/domains", &w.admin).await;
    let id = list["items"][0]["domain_id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{id}"),
            Some(json!({ "egress_ip": "127.0.0.1" })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stub = policy(&w);
    let made = |event: &str, name: &str| stub.json(&stub.fire(event, name).value());

    let source = made("get_egress_source", "ip-127-0-0-1");
    assert_eq!(
        source,
        json!({ "kind": "egress_source", "params": {
            "name": "ip-127-0-0-1", "source_address": "127.0.0.1", "ehlo_domain": "mail.grove.test" } })
    );
    let default = made("get_egress_source", "inboxgrove-default");
    assert_eq!(default["params"].get("source_address"), None, "{default}");
    let pool = made("get_egress_pool", "ip-127-0-0-1");
    assert_eq!(
        pool["params"]["entries"],
        json!([{ "name": "ip-127-0-0-1" }])
    );
    // A name the appliance does not list defers the mail; it is never
    // sent from some other address.
    let out = stub.fire("get_egress_pool", "ip-192-0-2-1");
    assert!(
        matches!(&out, Outcome::Failed(e) if e.contains("no egress")),
        "{out:?}"
    );

    // The queue of a submitted message is `<tenant>@<domain>`: the tenant
    // names the pool.
    let queue = |tenant: Option<&str>| {
        let out = stub.fire("get_queue_config", ("example.net", tenant, LuaNil, LuaNil));
        stub.json(&out.value())["params"]["egress_pool"].clone()
    };
    assert_eq!(queue(Some("ip-127-0-0-1")), "ip-127-0-0-1");
    assert_eq!(queue(None), "inboxgrove");

    let a = &boxes[0];
    let conn = submission(&stub);
    login(&stub, &conn, a);
    let msg = mail(&stub, &conn, &a.email, "prospect@example.net", &[]);
    let out = stub.receive(&msg, &conn);
    assert!(returned_nil(&out), "{out:?}");
    assert_eq!(stub.meta(&msg, "tenant"), "ip-127-0-0-1");
}
