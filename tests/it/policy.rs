//! `kumo-policy/init.lua` executed for real: Lua 5.4 runs the policy
//! against a stand-in `kumo` module (`support::kumo_stub`) whose HTTP
//! client talks to a running InboxGrove, and each test fires the handlers
//! KumoMTA would fire and checks what they return or reject.

use mlua::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::lifecycle::create_by_hand;
use crate::domains::{World, world};
use crate::helpers::TestApp;
use crate::inboxes::{Control, bulk, with_domain};
use crate::support::kumo_stub::{KumoStub, Outcome};

mod breaks;
mod egress;
mod inbound;
mod log_hook;
mod rendered;
mod reports;
mod senders;
mod strict;
mod submission;
mod warmup;

/// The peers of the tests' sessions (RFC 5737 documentation addresses). The
/// MX listens on `0.0.0.0:25`, an IPv4 socket, so its peers are IPv4.
const SUBMITTER: &str = "198.51.100.7:40123";
const PROSPECT_MTA: &str = "203.0.113.25:50000";

fn config(app: &TestApp, control: &str) -> Value {
    json!({
        "control_url": format!("{control}/kumo/v1"),
        "control_secret_file": app.dir.path().join("kumo.secret"),
        "hostname": "mail.grove.test",
        // The appliance's own mail root, where Dovecot reads the maildirs.
        "mail_root": app.dir.path().join("mail"),
        "tls_certificate": "/etc/inboxgrove/tls/fullchain.pem",
        "tls_private_key": "/etc/inboxgrove/tls/privkey.pem",
    })
}

/// The policy, started as kumod starts it, talking to the world's
/// appliance.
fn policy(w: &World) -> KumoStub {
    let stub = KumoStub::load(&config(&w.app, &w.app.control));
    stub.start();
    stub
}

/// The same, pointed at a port where nothing listens.
fn policy_with_appliance_down(w: &World) -> KumoStub {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stub = KumoStub::load(&config(&w.app, &format!("http://127.0.0.1:{port}")));
    stub.start();
    stub
}

struct Mailbox {
    email: String,
    password: String,
    id: String,
}

/// `quantity` active mailboxes on a fresh manual domain whose records are
/// published and verified: only a verified domain sends.
async fn mailboxes(w: &World, domain: &str, quantity: u32, daily_limit: u32) -> Vec<Mailbox> {
    let id = with_domain(w, domain).await;
    for r in w.domain(&id).await["records"].as_array().unwrap() {
        create_by_hand(w, domain, r);
    }
    assert_eq!(w.verify(&id).await["status"], "active");
    mailboxes_on(w, &id, quantity, daily_limit).await
}

/// `quantity` active mailboxes on the domain `id`, in whatever state it is.
async fn mailboxes_on(w: &World, id: &str, quantity: u32, daily_limit: u32) -> Vec<Mailbox> {
    let (status, created) = bulk(
        w,
        json!({ "domain_id": id, "quantity": quantity, "daily_limit": daily_limit, "enable_warmup": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| Mailbox {
            email: i["email"].as_str().unwrap().to_owned(),
            password: i["password"].as_str().unwrap().to_owned(),
            id: i["inbox_id"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// A client on port 587 after STARTTLS (KumoMTA offers AUTH only then).
fn submission(stub: &KumoStub) -> LuaTable {
    let conn = stub.session("submission", SUBMITTER);
    assert_eq!(stub.starttls(&conn).0, 220);
    conn
}

/// A sending MTA on port 25, after its EHLO.
fn inbound(stub: &KumoStub) -> LuaTable {
    let conn = stub.session("inbound", PROSPECT_MTA);
    assert_eq!(stub.ehlo(&conn, "mx.example.net").0, 250);
    conn
}

/// AUTH PLAIN without an authorization id; the reply kumod sends.
fn auth(stub: &KumoStub, conn: &LuaTable, user: &str, password: &str) -> (u16, String) {
    stub.auth_plain(conn, "", user, password)
}

fn login(stub: &KumoStub, conn: &LuaTable, m: &Mailbox) {
    let reply = auth(stub, conn, &m.email, &m.password);
    assert_eq!(
        reply,
        (235, "2.7.0 AUTH OK!".to_owned()),
        "{} logs in",
        m.email
    );
}

fn mail(
    stub: &KumoStub,
    conn: &LuaTable,
    from: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> LuaTable {
    let mut headers = vec![
        json!(["From", format!("Sender <{from}>")]),
        json!(["To", to]),
        json!(["Subject", "Quick question"]),
        json!(["Date", "Tue, 1 Dec 2026 10:00:00 +0000"]),
        json!(["Message-ID", "<m1@grove.test>"]),
    ];
    headers.extend(extra.iter().map(|(n, v)| json!([n, v])));
    stub.message(
        json!({ "sender": from, "recipients": [to], "headers": headers, "body": "Hi\r\n" }),
        conn,
    )
}

fn returned_nil(out: &Outcome) -> bool {
    matches!(out, Outcome::Returned(v) if v.iter().all(LuaValue::is_nil))
}

async fn sent_today(kumo: &Control, email: &str) -> Value {
    kumo.call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await
        .1["sent_today"]
        .clone()
}

/// Start-up as kumod runs it: `pre_init` then `init`, every constructor
/// parsing its table as KumoMTA does (`support::kumo_stub::config`), so a
/// misspelt or mistyped option fails here instead of in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_tags_both_listeners_and_lets_nobody_relay_by_address() {
    let w = world().await;
    let stub = KumoStub::load(&config(&w.app, &w.app.control));
    assert!(returned_nil(&stub.fire("pre_init", ())));
    assert!(returned_nil(&stub.fire("init", ())));

    // Each listener says which one it is, since every handler branches on
    // that; the settings file's name and certificate reach both.
    let listeners = stub.state("listeners");
    let mut tags: Vec<&str> = listeners
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["meta"]["x_listener"].as_str().unwrap_or("untagged"))
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["inbound", "submission"]);
    for l in listeners.as_array().unwrap() {
        assert_eq!(l["hostname"], "mail.grove.test");
        assert_eq!(l["tls_certificate"], "/etc/inboxgrove/tls/fullchain.pem");
        assert_eq!(l["tls_private_key"], "/etc/inboxgrove/tls/privkey.pem");
        // Loopback is KumoMTA's default relay list; it must not survive,
        // and no peer address may relay: relaying is decided per session.
        let relay = l["relay_hosts"].as_array().unwrap();
        for peer in ["127.0.0.1", "::1", "198.51.100.7", "10.0.0.1"] {
            assert!(
                !relay
                    .iter()
                    .any(|c| cidr_contains(c.as_str().unwrap(), peer)),
                "{peer} may relay by address: {relay:?}"
            );
        }
    }

    // Both spools KumoMTA needs, the log hook and the local logs carry the
    // mailbox id the appliance attributes events by.
    let mut spools: Vec<String> = stub
        .state("spools")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    spools.sort();
    assert_eq!(spools, ["data", "meta"]);
    for logger in [&stub.state("log_hooks")[0], &stub.state("local_logs")[0]] {
        assert!(
            logger["meta"]
                .as_array()
                .unwrap()
                .contains(&json!("mailbox_id"))
        );
    }

    // Every queue the policy configures parses: the maildir queue, the
    // log hook's and the catch-all.
    for queue in ["inboxgrove.maildir", "inboxgrove.log_hook", "example.net"] {
        let out = stub.fire("get_queue_config", (queue, LuaNil, LuaNil, LuaNil));
        assert_eq!(stub.json(&out.value())["kind"], "queue_config", "{queue}");
    }

    // A session on each listener starts with the meta kumod presets, the
    // listener's tag merged in; the tag is what every handler goes by.
    let conn = stub.session("0.0.0.0:587", SUBMITTER);
    for (key, want) in [
        ("reception_protocol", json!("ESMTP")),
        ("received_via", json!("192.0.2.1:587")),
        ("received_from", json!(SUBMITTER)),
        ("hostname", json!("mail.grove.test")),
        ("x_listener", json!("submission")),
        ("authn_id", Value::Null),
    ] {
        assert_eq!(stub.meta(&conn, key), want, "{key}");
    }
    assert_eq!(stub.meta(&inbound(&stub), "x_listener"), "inbound");

    // A settings file without the required hostname is refused when the
    // policy loads, naming the key.
    let mut bad = config(&w.app, &w.app.control);
    bad.as_object_mut().unwrap().remove("hostname");
    let err = KumoStub::try_load(&bad)
        .err()
        .expect("a missing hostname is refused");
    assert!(err.contains("hostname"), "{err}");
}

/// Whether the IPv4/IPv6 CIDR `cidr` holds `ip`.
fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    let bits = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let (net, max) = bits(net.parse().unwrap());
    let (ip, ip_max) = bits(ip.parse().unwrap());
    let len: u32 = len.parse().unwrap_or(max);
    // Both families sit in the top bits, so a prefix masks from the top.
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    max == ip_max && (net & mask) == (ip & mask)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_asks_inboxgrove_remembers_the_answer_and_fails_closed() {
    let w = world().await;
    let boxes = mailboxes(&w, "auth.test", 2, 50).await;
    let (a, b) = (&boxes[0], &boxes[1]);
    let stub = policy(&w);

    let conn = submission(&stub);
    login(&stub, &conn, a);
    // kumod records who logged in; the policy adds the mailbox.
    assert_eq!(stub.meta(&conn, "authn_id"), json!(a.email));
    assert_eq!(stub.meta(&conn, "authz_id"), json!(a.email));
    assert_eq!(stub.meta(&conn, "x_mailbox_id"), json!(a.id));
    assert_eq!(stub.meta(&conn, "x_mailbox_email"), json!(a.email));
    let calls = stub.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert!(calls[0].url.ends_with("/kumo/v1/auth") && calls[0].status == Some(200));
    // Once per session, and never before TLS.
    assert_eq!(auth(&stub, &conn, &a.email, &a.password).0, 503);
    let clear = stub.session("submission", SUBMITTER);
    assert_eq!(auth(&stub, &clear, &a.email, &a.password).0, 524);

    // A second session with the same login is answered from memory; a
    // config-epoch bump (InboxGrove changed something) forgets it.
    login(&stub, &submission(&stub), a);
    assert_eq!(stub.http_calls().len(), 1);
    stub.bump_epoch();
    login(&stub, &submission(&stub), a);
    assert_eq!(stub.http_calls().len(), 2);

    let refused = (535, "5.7.8 AUTH invalid".to_owned());
    let wrong = submission(&stub);
    assert_eq!(auth(&stub, &wrong, &a.email, &b.password), refused);
    assert_eq!(stub.http_calls()[2].status, Some(401));
    assert_eq!(stub.meta(&wrong, "authn_id"), Value::Null);

    // Acting as another mailbox, or logging in on port 25, never reaches
    // the appliance.
    let as_other = stub.auth_plain(&submission(&stub), &b.email, &a.email, &a.password);
    assert_eq!(as_other, refused);
    let mx = inbound(&stub);
    assert_eq!(stub.starttls(&mx).0, 220);
    assert_eq!(auth(&stub, &mx, &a.email, &a.password), refused);
    assert_eq!(stub.http_calls().len(), 3);

    // No appliance: a temporary failure (RFC 4954 454), never an accept.
    let down = policy_with_appliance_down(&w);
    let conn = submission(&down);
    let out = auth(&down, &conn, &a.email, &a.password);
    assert_eq!(
        out,
        (
            454,
            "4.7.0 Temporary authentication failure, try again later".to_owned()
        )
    );
    assert_eq!(down.meta(&conn, "authn_id"), Value::Null);
    assert_eq!(down.meta(&conn, "x_mailbox_id"), Value::Null);
    assert_eq!(down.http_calls()[0].status, None);
    let logs = down.state("logs").to_string();
    assert!(logs.contains("AUTH lookup failed"), "{logs}");
    // It is asked again next time: failures are not remembered.
    let _ = auth(&down, &conn, &a.email, &a.password);
    assert_eq!(down.http_calls().len(), 2);

    // A control endpoint that refuses our secret is a fault, not a wrong
    // password.
    let secret = w.app.dir.path().join("wrong.secret");
    std::fs::write(&secret, "00".repeat(32)).unwrap();
    let mut cfg = config(&w.app, &w.app.control);
    cfg["control_secret_file"] = json!(secret);
    let misconfigured = KumoStub::load(&cfg);
    misconfigured.start();
    let out = auth(
        &misconfigured,
        &submission(&misconfigured),
        &a.email,
        &a.password,
    );
    assert_eq!(out.0, 454);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_sessions_relay_and_only_as_their_mailbox() {
    let w = world().await;
    let boxes = mailboxes(&w, "relay.test", 1, 50).await;
    let a = &boxes[0];
    let stub = policy(&w);
    // kumod passes the session's local address as the listener
    // (smtp_server.rs lookup_listener_domain).
    let listener_domain = |domain: &str, conn: &LuaTable| {
        let via = stub.meta(conn, "received_via");
        let out = stub.fire(
            "get_listener_domain",
            (domain, via.as_str().unwrap(), conn.clone()),
        );
        stub.json(&out.value())
    };

    let anonymous = submission(&stub);
    assert_eq!(listener_domain("example.net", &anonymous), Value::Null);
    let from = stub.fire(
        "smtp_server_mail_from",
        (stub.address(&a.email), anonymous.clone()),
    );
    assert_eq!(from.rejected(), (530, "5.7.0 Authentication required"));

    let conn = submission(&stub);
    login(&stub, &conn, a);
    assert_eq!(
        listener_domain("example.net", &conn),
        json!({ "kind": "listener_domain", "params": { "relay_to": true } })
    );
    let other = stub.fire(
        "smtp_server_mail_from",
        (stub.address("ceo@relay.test"), conn.clone()),
    );
    let (code, text) = other.rejected();
    assert_eq!(code, 550);
    assert!(
        text.starts_with("5.7.1 ") && text.contains(&a.email),
        "{text}"
    );
    let own = stub.fire(
        "smtp_server_mail_from",
        (stub.address(&a.email.to_uppercase()), conn.clone()),
    );
    assert!(returned_nil(&own));

    // Port 25 relays only into hosted domains, whatever the session claims:
    // the meta is forged here (kumod would not let port 25 log in) to show
    // the policy goes by the listener, not by authn_id.
    let mx = inbound(&stub);
    mx.call_method::<()>("set_meta", ("authn_id", a.email.as_str()))
        .unwrap();
    assert_eq!(listener_domain("example.net", &mx), Value::Null);
    assert_eq!(
        listener_domain("Relay.TEST", &mx)["params"],
        json!({ "relay_to": true, "log_oob": "LogThenRelay", "log_arf": "LogThenDrop" })
    );
    assert!(returned_nil(&stub.fire(
        "smtp_server_mail_from",
        (stub.address("anyone@example.net"), mx.clone())
    )));

    // The same through whole transactions as kumod runs them: relay_hosts
    // lets nobody in by address, so port 25 takes mail only for hosted
    // mailboxes, and the logged-in client relays anywhere.
    let mx = inbound(&stub);
    assert_eq!(stub.mail_from(&mx, "someone@example.org").0, 250);
    assert_eq!(
        stub.rcpt_to(&mx, "victim@example.net"),
        (
            550,
            format!("5.7.1 relaying not permitted for {PROSPECT_MTA}")
        )
    );
    assert_eq!(stub.rcpt_to(&mx, "nobody@relay.test").0, 550);
    assert_eq!(stub.rcpt_to(&mx, &a.email).0, 250);
    let body = json!({ "headers": [["From", "someone@example.org"], ["Subject", "Hello"]], "body": "Hi\r\n" });
    let (code, _, received) = stub.data(&mx, body);
    assert_eq!((code, received.len()), (250, 1));
    assert_eq!(stub.meta(&received[0], "queue"), "inboxgrove.maildir");

    let anonymous = submission(&stub);
    assert_eq!(stub.mail_from(&anonymous, &a.email).0, 530);
    assert_eq!(stub.rcpt_to(&anonymous, "prospect@example.net").0, 503);
    assert_eq!(stub.mail_from(&conn, &a.email).0, 250);
    assert_eq!(stub.rcpt_to(&conn, "prospect@example.net").0, 250);
    let body =
        json!({ "headers": [["From", a.email], ["To", "prospect@example.net"]], "body": "Hi\r\n" });
    let (code, text, sent) = stub.data(&conn, body);
    assert_eq!(code, 250, "{text}");
    assert!(stub.header(&sent[0], "DKIM-Signature").is_some());

    // Unsure whether a domain is hosted: an error (KumoMTA answers 421 and
    // the sender retries), neither relay nor a permanent "no".
    let down = policy_with_appliance_down(&w);
    let out = down.fire(
        "get_listener_domain",
        ("relay.test", "192.0.2.1:25", inbound(&down)),
    );
    assert!(
        matches!(&out, Outcome::Failed(e) if e.contains("/kumo/v1/domains/relay.test")),
        "{out:?}"
    );
}
