//! Send-check over HTTP: who may send as whom (the From and Sender headers),
//! only from a verified domain, giving a count back, and warmup mail
//! counted apart while campaign mail of a warming mailbox follows its slow
//! ramp.

use chrono::{Duration, NaiveDate};
use inboxgrove::clock::Clock;
use inboxgrove::store::Store;
use inboxgrove::vault::Vault;
use inboxgrove::warmup::{marker, settings::Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, world, world_with};
use crate::helpers::{TestApp, manual_clock};
use crate::inboxes::{Control, bulk, with_domain};
use crate::kumo::check;

/// The server's database, for what no route shows.
fn db(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(Store::path_in(app.dir.path())).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// Enrols the mailbox `id` in warmup with the default settings from
/// `started_on`, as the engine does when it starts warming it.
pub fn enrol(app: &TestApp, id: &str, started_on: NaiveDate) {
    let settings = serde_json::to_value(Settings::default()).unwrap();
    db(app)
        .execute(
            "INSERT INTO warmup_mailboxes (mailbox_id, settings, seed, started_on, updated_at)
             VALUES (?1, ?2, 42, ?3, '2026-12-01T00:00:00Z')",
            rusqlite::params![id, settings.to_string(), started_on.to_string()],
        )
        .unwrap();
}

/// The warmup count of mailbox `id` and the day it was last reset.
pub fn warmup_count(app: &TestApp, id: &str) -> (u32, Option<String>) {
    db(app)
        .query_row(
            "SELECT warmup_sent_today, warmup_reset_date FROM mailboxes WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// The engine's marker for `message_id` sent by `sender`, under the
/// server's own key (the vault in its data dir).
pub fn marker_for(app: &TestApp, message_id: &str, sender: &str) -> String {
    let (vault, _) = Vault::load_or_create(app.dir.path()).unwrap();
    marker::make(&vault, message_id, sender)
}

/// A world with one active-sending mailbox on `domain`; its address.
async fn sender(domain: &str, daily_limit: u32) -> (crate::domains::World, String) {
    let w = world().await;
    let id = with_domain(&w, domain).await;
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": id, "quantity": 1, "daily_limit": daily_limit, "enable_warmup": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let email = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    (w, email)
}

async fn send_check(kumo: &Control, body: Value) -> (StatusCode, Value) {
    kumo.call(Method::POST, "/send-check", Some(body)).await
}

#[tokio::test]
async fn the_from_header_must_be_the_mailbox_and_nothing_else() {
    let (w, me) = sender("mine.test", 100).await;
    w.app.set_domain_status("mine.test", "active");
    let kumo = Control::of(&w.app);
    let with = |from: Value, sender: Value| {
        json!({
            "authn_id": me, "envelope_from": me, "from_headers": from,
            "sender_headers": sender, "recipients": ["r@example.net"]
        })
    };
    let refused = [
        (
            json!([format!("<ceo@bank.example> (<{me}>)")]),
            json!({}),
            "must be",
        ),
        (
            json!([format!("{me}, ceo@bank.example")]),
            json!({}),
            "exactly one address",
        ),
        (json!([me.clone(), me.clone()]), json!([]), "2 From headers"),
        (
            json!([format!("\"{me}\" <ceo@bank.example>")]),
            json!({}),
            "must be",
        ),
        (
            json!([format!("\"{me}\" <{me}>")]),
            json!({}),
            "display name",
        ),
        (json!({}), json!({}), "no From header"),
        (json!([]), json!([]), "no From header"),
        (
            json!([me.clone()]),
            json!(["ceo@bank.example"]),
            "Sender header must be",
        ),
    ];
    for (from, sender, says) in refused {
        let (status, d) = send_check(&kumo, with(from.clone(), sender)).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(
            (&d["allow"], &d["code"]),
            (&json!(false), &json!(550)),
            "{from}: {d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("5.7.1 ") && reason.contains(says),
            "{from}: {reason}"
        );
    }
    let (_, ok) = send_check(
        &kumo,
        with(
            json!([format!("=?utf-8?q?J=C3=BCrgen?= <{me}>")]),
            json!([me.clone()]),
        ),
    )
    .await;
    assert_eq!(ok["allow"], true, "{ok}");

    // The old shape, or another type, is a JSON error, not a decision.
    for bad in [
        json!({ "authn_id": me, "envelope_from": me, "header_from": me, "recipients": [] }),
        json!({ "authn_id": me, "envelope_from": me, "from_headers": me, "sender_headers": [], "recipients": [] }),
        json!({ "authn_id": me, "envelope_from": me, "from_headers": { "1": me }, "sender_headers": [], "recipients": [] }),
    ] {
        let (status, e) = send_check(&kumo, bad).await;
        assert!(status.is_client_error(), "{status} {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
}

#[tokio::test]
async fn a_mailbox_sends_only_while_its_domain_is_verified() {
    let (w, me) = sender("waiting.test", 100).await;
    let kumo = Control::of(&w.app);
    let message = check(&me, &me, &["r@example.net"]);
    for state in ["pending", "publishing", "verifying", "awaiting_dns"] {
        w.app.set_domain_status("waiting.test", state);
        let (_, d) = send_check(&kumo, message.clone()).await;
        assert_eq!(
            (&d["allow"], &d["code"]),
            (&json!(false), &json!(451)),
            "{d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("4.7.1 waiting.test is {state}"))
                && reason.contains("try again later"),
            "{reason}"
        );
    }
    // A status change holds from the next message on.
    w.app.set_domain_status("waiting.test", "active");
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    w.app.set_domain_status("waiting.test", "failed");
    let (_, d) = send_check(&kumo, message.clone()).await;
    assert_eq!(d["code"], 550, "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("5.7.1 waiting.test")
    );
    // Refused messages were not counted.
    let (_, seen) = kumo
        .call(Method::GET, &format!("/mailboxes/{me}"), None)
        .await;
    assert_eq!(seen["sent_today"], 1);
}

#[tokio::test]
async fn a_count_given_back_frees_the_send_and_never_goes_below_zero() {
    let (w, me) = sender("release.test", 1).await;
    w.app.set_domain_status("release.test", "active");
    let kumo = Control::of(&w.app);
    let message = check(&me, &me, &["r@example.net"]);
    let release = |authn: &str| {
        kumo.call(
            Method::POST,
            "/send-release",
            Some(json!({ "authn_id": authn })),
        )
    };
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    assert_eq!(send_check(&kumo, message.clone()).await.1["code"], 452);
    let (status, released) = release(&me).await;
    assert_eq!(
        (status, &released["sent_today"]),
        (StatusCode::OK, &json!(0))
    );
    // The limit has room again.
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    release(&me).await;
    let (status, twice) = release(&me.to_uppercase()).await;
    assert_eq!((status, &twice["sent_today"]), (StatusCode::OK, &json!(0)));

    let (status, e) = release("ghost@release.test").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, e) = release("not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "authn_id");
    let (status, e) = kumo
        .call(
            Method::POST,
            "/send-release",
            Some(json!({ "authn_id": me, "count": 2 })),
        )
        .await;
    assert!(status.is_client_error(), "{e}");
}

/// A world on a manual clock with one warming mailbox on an active domain:
/// the world, the clock, the mailbox's address and id.
async fn warming(
    domain: &str,
    daily_limit: u32,
) -> (
    crate::domains::World,
    std::sync::Arc<inboxgrove::clock::ManualClock>,
    String,
    String,
) {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let id = with_domain(&w, domain).await;
    w.app.set_domain_status(domain, "active");
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": id, "quantity": 1, "daily_limit": daily_limit, "enable_warmup": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let inbox = &created["inboxes"][0];
    assert_eq!(inbox["status"], "warming", "{inbox}");
    let email = inbox["email"].as_str().unwrap().to_owned();
    let mailbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    (w, clock, email, mailbox)
}

/// A send-check of `me` with the warmup marker `mark` (none: `None`) for
/// `message_id`.
fn marked(me: &str, message_id: &str, mark: Option<&str>) -> Value {
    let mut body = check(me, me, &["peer@example.net"]);
    body["message_id"] = json!(message_id);
    if let Some(m) = mark {
        body["warmup_marker"] = json!(m);
    }
    body
}

#[tokio::test]
async fn warmup_mail_is_counted_apart_and_a_warming_mailbox_follows_its_slow_ramp() {
    let (w, clock, me, id) = warming("ramp.test", 10).await;
    let today = clock.now().date_naive();
    enrol(&w.app, &id, today);
    let kumo = Control::of(&w.app);

    // Day 1 of the default ramp is a quiet day: no campaign mail.
    let (_, quiet) = send_check(&kumo, marked(&me, "<c1@ramp.test>", None)).await;
    assert_eq!(
        (&quiet["allow"], &quiet["code"]),
        (&json!(false), &json!(452))
    );
    assert_eq!(
        quiet["reason"],
        format!(
            "4.7.1 {me} is warming up: it may send 0 campaign messages today (day 1 of its warmup); try again tomorrow"
        )
    );

    // Warmup mail passes, is counted apart and leaves the campaign count
    // and the owner's plan alone.
    let good = marker_for(&w.app, "<w1@ramp.test>", &me);
    let (status, ok) = send_check(&kumo, marked(&me, "<w1@ramp.test>", Some(&good))).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(
        (
            &ok["allow"],
            &ok["code"],
            &ok["warmup"],
            &ok["remaining_today"]
        ),
        (&json!(true), &json!(250), &json!(true), &json!(0)),
        "{ok}"
    );
    assert!(ok["list_unsubscribe"]["url"].is_string(), "{ok}");
    assert_eq!(warmup_count(&w.app, &id), (1, Some(today.to_string())));
    assert_eq!(sent_today(&kumo, &me).await, 0);
    let plan: i64 = db(&w.app)
        .query_row(
            "SELECT coalesce(sum(sent), 0) FROM user_daily_sends",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plan, 0, "warmup mail is not in the plan's volume");

    // A marker for another message, another sender, or none at all is
    // campaign mail: refused on a quiet day, and not counted.
    let other = marker_for(&w.app, "<w1@ramp.test>", "someone@ramp.test");
    for forged in [
        marked(&me, "<w2@ramp.test>", Some(&good)),
        marked(&me, "<w1@ramp.test>", Some(&other)),
        marked(&me, "<w1@ramp.test>", Some("not hex at all")),
        check(&me, &me, &["peer@example.net"]),
    ] {
        let (_, d) = send_check(&kumo, forged.clone()).await;
        assert_eq!(
            (&d["code"], &d["warmup"]),
            (&json!(452), &json!(false)),
            "{forged}: {d}"
        );
    }
    assert_eq!(warmup_count(&w.app, &id).0, 1);

    // Every other check still holds for warmup mail.
    let mut spoofed = marked(&me, "<w3@ramp.test>", None);
    spoofed["from_headers"] = json!(["ceo@bank.example"]);
    spoofed["warmup_marker"] = json!(marker_for(&w.app, "<w3@ramp.test>", &me));
    assert_eq!(send_check(&kumo, spoofed).await.1["code"], 550);
    w.app.set_domain_status("ramp.test", "verifying");
    let (_, waiting) = send_check(
        &kumo,
        marked(
            &me,
            "<w3@ramp.test>",
            Some(&marker_for(&w.app, "<w3@ramp.test>", &me)),
        ),
    )
    .await;
    assert_eq!(waiting["code"], 451, "{waiting}");
    w.app.set_domain_status("ramp.test", "active");
    assert_eq!(warmup_count(&w.app, &id).0, 1);

    // Day 8: the slow ramp allows 2, whatever the daily limit of 10, and
    // the warmup count starts again.
    clock.advance(Duration::days(7));
    let day8 = clock.now().date_naive();
    let first = send_check(&kumo, check(&me, &me, &["a@example.net"]))
        .await
        .1;
    assert_eq!(
        (&first["allow"], &first["remaining_today"]),
        (&json!(true), &json!(1)),
        "{first}"
    );
    assert_eq!(
        send_check(&kumo, check(&me, &me, &["b@example.net"]))
            .await
            .1["allow"],
        true
    );
    let over = send_check(&kumo, check(&me, &me, &["c@example.net"]))
        .await
        .1;
    assert_eq!(over["code"], 452, "{over}");
    assert!(
        over["reason"]
            .as_str()
            .unwrap()
            .contains("may send 2 campaign messages today (day 8 of its warmup)"),
        "{over}"
    );
    let mark = marker_for(&w.app, "<w4@ramp.test>", &me);
    let (_, warm) = send_check(&kumo, marked(&me, "<w4@ramp.test>", Some(&mark))).await;
    assert_eq!(
        (&warm["warmup"], &warm["remaining_today"]),
        (&json!(true), &json!(0))
    );
    assert_eq!(warmup_count(&w.app, &id), (1, Some(day8.to_string())));

    // Giving back: the marker picks the warmup count, else the campaign one.
    let release = |body: Value| kumo.call(Method::POST, "/send-release", Some(body));
    let (status, back) = release(json!({
        "authn_id": me, "warmup_marker": mark, "message_id": "<w4@ramp.test>"
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back, json!({ "sent_today": 2, "warmup_sent_today": 0 }));
    let (_, back) = release(json!({
        "authn_id": me, "warmup_marker": marker_for(&w.app, "<x@ramp.test>", &me),
        "message_id": "<w4@ramp.test>"
    }))
    .await;
    assert_eq!(
        back,
        json!({ "sent_today": 1, "warmup_sent_today": 0 }),
        "a forged marker releases campaign mail"
    );
}

#[tokio::test]
async fn two_campaign_messages_at_a_warming_limit_cannot_both_pass() {
    let (w, clock, me, id) = warming("race.test", 10).await;
    // Day 8: an allowance of 2.
    enrol(&w.app, &id, clock.now().date_naive() - Duration::days(7));
    let kumo = Control::of(&w.app);
    let checks = (0..6).map(|i| {
        let body = check(&me, &me, &[&format!("r{i}@example.net")]);
        let kumo = &kumo;
        async move { send_check(kumo, body).await.1 }
    });
    let answers = futures_util::future::join_all(checks).await;
    let allowed = answers.iter().filter(|d| d["allow"] == true).count();
    assert_eq!(allowed, 2, "{answers:?}");
    assert_eq!(sent_today(&kumo, &me).await, 2);
}

#[tokio::test]
async fn a_warming_mailbox_without_warmup_sends_up_to_its_daily_limit() {
    // Warming, but never enrolled (or its warmup turned off): only the
    // daily limit applies, as before the engine.
    let (w, clock, me, id) = warming("plain.test", 2).await;
    let kumo = Control::of(&w.app);
    for _ in 0..2 {
        assert_eq!(
            send_check(&kumo, check(&me, &me, &["r@example.net"]))
                .await
                .1["allow"],
            true
        );
    }
    let over = send_check(&kumo, check(&me, &me, &["r@example.net"]))
        .await
        .1;
    assert_eq!(
        over["reason"],
        "4.7.1 daily sending limit reached; try again tomorrow"
    );
    enrol(&w.app, &id, clock.now().date_naive());
    db(&w.app)
        .execute("UPDATE warmup_mailboxes SET enabled = 0", [])
        .unwrap();
    let off = send_check(&kumo, check(&me, &me, &["r@example.net"]))
        .await
        .1;
    assert_eq!(
        off["reason"],
        "4.7.1 daily sending limit reached; try again tomorrow"
    );
}

async fn sent_today(kumo: &Control, email: &str) -> Value {
    kumo.call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await
        .1["sent_today"]
        .clone()
}
