//! KumoMTA's log records posted to `/kumo/v1/events`: each stored once
//! however often the hook retries, unreadable ones kept aside without
//! losing the good ones beside them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::world;
use crate::inboxes::{Control, bulk, with_domain};
use crate::kumo::check;

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
