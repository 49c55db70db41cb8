//! KumoMTA's log records posted to `/kumo/v1/events`: each stored once
//! however often the hook retries, unreadable ones kept aside without
//! losing the good ones beside them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::world;
use crate::inboxes::{Control, bulk, with_domain};
use crate::kumo::check;
use crate::reports::{feedback, quoted};

/// A KumoMTA log record as the log hook posts it; `extra` replaces fields.
pub fn record(kind: &str, id: &str, sender: &str, recipient: &str, extra: Value) -> Value {
    let mut r = json!({
        "type": kind, "id": id, "sender": sender, "recipient": recipient,
        "queue": "example.net", "site": "", "size": 1200, "timestamp": 1_900_000_000,
        "created": 1_900_000_000, "num_attempts": 1,
        "response": { "code": 250, "enhanced_code": null, "content": "ok", "command": null },
        "peer_address": null, "egress_pool": null, "egress_source": null,
        "feedback_report": null, "meta": {}, "headers": {}, "delivery_protocol": "ESMTP",
        "reception_protocol": null, "nodeid": "00000000-0000-0000-0000-000000000000"
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

/// The Reception KumoMTA logs for a message `mailbox_id` submitted on port
/// 587: the outbound record a later report must match to act.
pub fn sent(id: &str, mailbox_id: &str, sender: &str, recipient: &str, message_id: &str) -> Value {
    record(
        "Reception",
        id,
        sender,
        recipient,
        json!({ "reception_protocol": "ESMTP", "delivery_protocol": null,
                "meta": { "mailbox_id": mailbox_id, "x_listener": "submission" },
                "headers": { "Message-ID": format!("<{message_id}>") } }),
    )
}

#[tokio::test]
async fn log_records_count_once_and_bad_ones_are_kept_aside_without_losing_good_ones() {
    let w = world().await;
    let domain = with_domain(&w, "events.test").await;
    w.app.set_domain_status("events.test", "active");
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 1 })).await;
    let sender = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    let id = created["inboxes"][0]["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kumo = Control::of(&w.app);
    let receptions = json!([
        sent(
            "spool1",
            &id,
            &sender,
            "friend@example.net",
            "m1@events.test"
        ),
        sent(
            "spool2",
            &id,
            &sender,
            "nobody@example.net",
            "m2@events.test"
        ),
        sent("spool3", &id, &sender, "slow@example.net", "m3@events.test"),
    ]);
    let (status, _) = kumo.call(Method::POST, "/events", Some(receptions)).await;
    assert_eq!(status, StatusCode::OK);
    let batch = json!([
        record("Delivery", "spool1", &sender, "friend@example.net", json!({ "meta": { "mailbox_id": id } })),
        record("Bounce", "spool2", &sender, "nobody@example.net", json!({
            "bounce_classification": "InvalidRecipient",
            "response": { "code": 550, "enhanced_code": { "class": 5, "subject": 1, "detail": 1 }, "content": "user unknown", "command": null }
        })),
        { "type": "Delivery" },
        record("TransientFailure", "spool3", &sender, "slow@example.net", json!({
            "response": { "code": 451, "enhanced_code": null, "content": "try later", "command": null }
        })),
    ]);
    // The unreadable record is kept aside, the batch acknowledged: a 4xx
    // or 5xx would make KumoMTA retry or bounce the good records with it.
    let (status, answer) = kumo
        .call(Method::POST, "/events", Some(batch.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["stored"].as_u64(), answer["quarantined"].as_u64()),
        (Some(3), Some(1)),
        "{answer}"
    );

    // The same batch again (KumoMTA retries on failure) changes nothing.
    let (_, again) = kumo.call(Method::POST, "/events", Some(batch)).await;
    assert_eq!(
        (
            again["stored"].as_u64(),
            again["duplicates"].as_u64(),
            again["quarantined"].as_u64()
        ),
        (Some(0), Some(3), Some(0))
    );

    let (_, m) = w.app.get(&format!("/api/v1/inboxes/{id}"), &w.admin).await;
    assert_eq!(
        (
            m["delivered"].as_i64(),
            m["bounced_hard"].as_i64(),
            m["deferrals"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{m}"
    );
    // A hard-bounced address is never mailed again.
    let (_, refused) = kumo
        .call(
            Method::POST,
            "/send-check",
            Some(check(&sender, &sender, &["Nobody@example.net"])),
        )
        .await;
    assert_eq!(refused["code"], 550, "{refused}");
    assert!(refused["reason"].as_str().unwrap().contains("suppressed"));

    let (status, single) = kumo
        .call(
            Method::POST,
            "/events",
            Some(record(
                "Delivery",
                "spool9",
                &sender,
                "b@example.net",
                json!({}),
            )),
        )
        .await;
    assert_eq!(
        (status, single["stored"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, junk) = kumo
        .call(Method::POST, "/events", Some(json!("not a record")))
        .await;
    assert_eq!(
        (status, junk["quarantined"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{junk}"
    );
    // Kept aside, and counted where an operator looks.
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    assert_eq!(stats["events"]["quarantined"], 2, "{stats}");
}

/// The server's database, for the warmup rows no route shows yet.
fn db(app: &crate::helpers::TestApp) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open(inboxgrove::store::Store::path_in(app.dir.path())).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// A warmup message `<message_id>` the engine sent on `day` from mailbox
/// `from` to mailbox `to` (ids and addresses), counted for `from`.
fn warmup_sent(
    app: &crate::helpers::TestApp,
    (from, from_email): (&str, &str),
    (to, to_email): (&str, &str),
    message_id: &str,
    day: &str,
) {
    db(app)
        .execute(
            "INSERT INTO warmup_messages (id, message_id, day, counts_for, sender_mailbox,
                    recipient_mailbox, sender_email, recipient_email, scheduled_at, status,
                    sent_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, 'sent', ?8, ?8)",
            rusqlite::params![
                format!("row-{message_id}"),
                format!("<{message_id}>"),
                day,
                from,
                to,
                from_email,
                to_email,
                "2026-12-01T09:00:00Z"
            ],
        )
        .unwrap();
}

/// The status and error of the warmup message `<message_id>`.
fn warmup_message(app: &crate::helpers::TestApp, message_id: &str) -> (String, Option<String>) {
    db(app)
        .query_row(
            "SELECT status, error FROM warmup_messages WHERE message_id = ?1",
            [format!("<{message_id}>")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn outcomes_of_warmup_mail_reach_its_message_and_its_day_row() {
    let w = world().await;
    let domain = with_domain(&w, "warm.test").await;
    w.app.set_domain_status("warm.test", "active");
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 2 })).await;
    let field = |i: usize, k: &str| created["inboxes"][i][k].as_str().unwrap().to_owned();
    let (ada, ada_id) = (field(0, "email"), field(0, "inbox_id"));
    let (bob, bob_id) = (field(1, "email"), field(1, "inbox_id"));
    let day = "2026-12-01";
    db(&w.app)
        .execute(
            "INSERT INTO warmup_campaigns (id, mailbox_id, campaign_day, day, created_at)
             VALUES ('day1', ?1, 1, ?2, 't')",
            rusqlite::params![ada_id, day],
        )
        .unwrap();
    warmup_sent(
        &w.app,
        (&ada_id, &ada),
        (&bob_id, &bob),
        "w1@warm.test",
        day,
    );
    warmup_sent(
        &w.app,
        (&ada_id, &ada),
        (&bob_id, &bob),
        "w2@warm.test",
        day,
    );
    let kumo = Control::of(&w.app);
    let post = |batch: Value| kumo.call(Method::POST, "/events", Some(batch));
    let logged = |id: &str| json!({ "Message-ID": format!("<{id}>") });
    let response = |code: u16, class: u8, text: &str| {
        json!({ "code": code, "enhanced_code": { "class": class, "subject": 7, "detail": 0 },
                "content": text, "command": null })
    };

    // KumoMTA refused the self-signed peer; it retries, the message stays
    // sent and says why, then bounces: failed, with the bounce's reason.
    let tls = "TLS handshake failed: invalid peer certificate: UnknownIssuer";
    let (status, stored) = post(json!([
        sent("sp1", &ada_id, &ada, &bob, "w1@warm.test"),
        sent("sp2", &ada_id, &ada, &bob, "w2@warm.test"),
        record(
            "TransientFailure",
            "sp1",
            &ada,
            &bob,
            json!({
            "headers": logged("w1@warm.test"), "response": response(421, 4, tls) })
        ),
    ]))
    .await;
    assert_eq!(
        (status, &stored["stored"]),
        (StatusCode::OK, &json!(3)),
        "{stored}"
    );
    assert_eq!(
        warmup_message(&w.app, "w1@warm.test"),
        ("sent".into(), Some(format!("4.7.0 {tls}")))
    );
    let bounce = record(
        "Bounce",
        "sp1",
        &ada,
        &bob,
        json!({
        "headers": logged("w1@warm.test"),
        "bounce_classification": "PolicyRelated",
        "response": response(550, 5, "refused by policy") }),
    );
    post(json!([bounce.clone()])).await;
    assert_eq!(
        warmup_message(&w.app, "w1@warm.test"),
        ("failed".into(), Some("5.7.0 refused by policy".into()))
    );
    // The same record again is stored once: one bounce on the day row.
    let (_, again) = post(json!([bounce])).await;
    assert_eq!(again["duplicates"], 1, "{again}");
    let counts = |app: &crate::helpers::TestApp| -> (i64, i64) {
        db(app)
            .query_row(
                "SELECT bounces, complaints FROM warmup_campaigns WHERE id = 'day1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    assert_eq!(counts(&w.app), (1, 0));

    // A complaint about the other warmup message counts on the day row; the
    // mailbox's own counters are fed as for any mail.
    post(json!([feedback(
        "fb1",
        "fbl@warm.test",
        &quoted(&ada, "w2@warm.test"),
        json!({ "recipient": bob, "x_mailbox_id": ada_id }),
    )]))
    .await;
    assert_eq!(counts(&w.app), (1, 1));
    assert_eq!(warmup_message(&w.app, "w2@warm.test").0, "sent");
    let (_, m) = w
        .app
        .get(&format!("/api/v1/inboxes/{ada_id}"), &w.admin)
        .await;
    assert_eq!(
        (
            m["bounced_soft"].as_i64(),
            m["deferrals"].as_i64(),
            m["complaints"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{m}"
    );

    // An outcome of campaign mail, or a report matching nothing we sent,
    // touches no warmup row.
    post(json!([
        sent("sp3", &ada_id, &ada, "pat@example.net", "c1@warm.test"),
        record(
            "Bounce",
            "sp3",
            &ada,
            "pat@example.net",
            json!({
            "headers": logged("c1@warm.test"), "response": response(550, 5, "no") })
        ),
        record(
            "Bounce",
            "sp9",
            &ada,
            &bob,
            json!({
            "headers": logged("w2@warm.test"), "response": response(550, 5, "forged") })
        ),
    ]))
    .await;
    assert_eq!(
        warmup_message(&w.app, "w2@warm.test"),
        ("sent".into(), None)
    );
    assert_eq!(counts(&w.app), (1, 1));
}
