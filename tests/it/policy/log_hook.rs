//! The log hook: records reach `/events` in batches, and a failed POST is
//! retried instead of dropped.

use super::*;
use crate::events::{record, sent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_are_posted_in_batches_and_retried_until_stored() {
    let w = world().await;
    let boxes = mailboxes(&w, "hook.test", 1, 50).await;
    let a = &boxes[0];
    let delivered = record(
        "Delivery",
        "hook-1",
        &a.email,
        "friend@example.net",
        json!({ "meta": { "mailbox_id": a.id } }),
    );
    let bounced = record(
        "Bounce",
        "hook-2",
        &a.email,
        "gone@example.net",
        json!({ "meta": { "mailbox_id": a.id }, "bounce_classification": "InvalidRecipient",
                "response": { "code": 550, "enhanced_code": null, "content": "no such user", "command": null } }),
    );
    let counters = || async {
        let (_, m) = w
            .app
            .get(&format!("/api/v1/inboxes/{}", a.id), &w.admin)
            .await;
        (m["delivered"].as_i64(), m["bounced_hard"].as_i64())
    };
    let connection = |stub: &KumoStub| {
        let out = stub.fire(
            "make.inboxgrove.log_hook",
            ("inboxgrove.log_hook", LuaNil, LuaNil),
        );
        match out.value() {
            LuaValue::Table(t) => t,
            other => panic!("the constructor returned {other:?}"),
        }
    };

    // What those records report on: messages the mailbox sent.
    let kumo = Control::of(&w.app);
    let receptions = json!([
        sent(
            "hook-1",
            &a.id,
            &a.email,
            "friend@example.net",
            "h1@hook.test"
        ),
        sent(
            "hook-2",
            &a.id,
            &a.email,
            "gone@example.net",
            "h2@hook.test"
        ),
        sent("hook-3", &a.id, &a.email, "pal@example.net", "h3@hook.test"),
    ]);
    let (status, _) = kumo.call(Method::POST, "/events", Some(receptions)).await;
    assert_eq!(status, StatusCode::OK);

    let stub = policy(&w);
    let first = stub.log_message(&delivered);
    let queued = stub.fire("should_enqueue_log_record", (first.clone(), "inboxgrove"));
    assert_eq!(queued.value(), LuaValue::Boolean(true));
    assert_eq!(stub.meta(&first, "queue"), "inboxgrove.log_hook");
    // Records about log-hook messages are not queued again (no loop).
    let mut about_hook = delivered.clone();
    about_hook["reception_protocol"] = json!("LogRecord");
    let loop_ = stub.fire(
        "should_enqueue_log_record",
        (stub.log_message(&about_hook), "inboxgrove"),
    );
    assert_eq!(loop_.value(), LuaValue::Boolean(false));
    // The policy's catch-all queue config does not shadow the hook's.
    let queue = stub.fire(
        "get_queue_config",
        ("inboxgrove.log_hook", LuaNil, LuaNil, LuaNil),
    );
    assert_eq!(
        stub.json(&queue.value())["params"]["protocol"],
        json!({ "custom_lua": { "constructor": "make.inboxgrove.log_hook", "batch_size": 100 } })
    );

    // InboxGrove down: the batch fails with a temporary code, so KumoMTA
    // keeps it spooled and retries.
    let down = policy_with_appliance_down(&w);
    let batch = down.list(&[down.log_message(&delivered), down.log_message(&bounced)]);
    let out = down.invoke(&connection(&down), "send_batch", batch);
    assert_eq!(out.rejected().0, 451, "{out:?}");
    assert_eq!(counters().await, (Some(0), Some(0)));

    // The retry reaches it: both records, one POST.
    let hook = connection(&stub);
    let batch = stub.list(&[first, stub.log_message(&bounced)]);
    let before = stub.http_calls().len();
    let out = stub.invoke(&hook, "send_batch", batch.clone());
    let LuaValue::String(disposition) = out.value() else {
        panic!("{out:?}")
    };
    assert!(disposition.to_str().unwrap().starts_with("200"), "{out:?}");
    assert_eq!(stub.http_calls().len(), before + 1);
    assert!(stub.http_calls()[before].url.ends_with("/kumo/v1/events"));
    assert_eq!(counters().await, (Some(1), Some(1)));
    // Delivered twice (a retry after a lost answer) counts once.
    let out = stub.invoke(&hook, "send_batch", batch);
    let text = stub.json(&out.value()).as_str().unwrap().to_owned();
    assert!(text.contains("\"duplicates\":2"), "{text}");
    assert_eq!(counters().await, (Some(1), Some(1)));

    // A record the appliance cannot read costs the batch nothing: it is
    // kept aside there, the readable one beside it stored, and the batch
    // acknowledged (a 5xx would bounce both for good).
    let later = record("Delivery", "hook-3", &a.email, "pal@example.net", json!({}));
    let batch = stub.list(&[
        stub.log_message(&later),
        stub.log_message(&json!({ "type": "Delivery" })),
    ]);
    let out = stub.invoke(&hook, "send_batch", batch);
    let text = stub.json(&out.value()).as_str().unwrap().to_owned();
    assert!(text.contains("\"quarantined\":1"), "{text}");
    assert_eq!(counters().await, (Some(2), Some(1)));
}

/// A Rejection as kumod's `log_rejection` writes it: no spool id, the
/// session's meta as the hook lists it, and for AUTH the SASL payload as
/// the command.
fn rejection(code: u16, content: &str, command: &str, meta: Value) -> Value {
    json!({
        "type": "Rejection", "id": "", "sender": "", "recipient": [""], "queue": "",
        "site": "", "size": 0,
        "response": { "code": code, "enhanced_code": null, "content": content, "command": command },
        "peer_address": { "name": "client.example", "addr": "198.51.100.7" },
        "timestamp": 1_900_000_000, "created": 1_900_000_000, "num_attempts": 0,
        "bounce_classification": "Uncategorized", "egress_pool": null, "egress_source": null,
        "feedback_report": null, "meta": meta, "headers": {},
        "delivery_protocol": null, "reception_protocol": null,
        "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173",
        "session_id": "9bcd689e-23d9-41b7-a015-63a1382f8b57"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_stored_once_and_counted_against_their_mailbox() {
    let w = world().await;
    let boxes = mailboxes(&w, "reject.test", 1, 50).await;
    let a = &boxes[0];
    let stub = policy(&w);

    // A wrong password: the policy notes which login was tried, and the
    // hook is configured to log that meta key.
    let conn = submission(&stub);
    let (code, _) = auth(&stub, &conn, &a.email.to_uppercase(), "not-the-password");
    assert_eq!(code, 535);
    assert_eq!(stub.meta(&conn, "x_auth_attempt"), json!(a.email));
    let logged = stub.state("log_hooks")[0]["meta"].clone();
    assert!(
        logged
            .as_array()
            .unwrap()
            .contains(&json!("x_auth_attempt")),
        "{logged}"
    );

    let batch = stub.list(&[
        stub.log_message(&rejection(
            535,
            "5.7.8 AUTH invalid",
            "AGFkYQBub3QtdGhlLXBhc3N3b3Jk",
            json!({ "x_auth_attempt": a.email, "x_listener": "submission" }),
        )),
        stub.log_message(&rejection(
            550,
            &format!("5.7.1 The envelope sender must be {}", a.email),
            "MAIL FROM:<ceo@reject.test>",
            json!({ "x_mailbox_id": a.id, "authn_id": a.email }),
        )),
        // A stranger on port 25 naming our mailbox as sender counts for
        // nobody.
        stub.log_message(&json!({
            "type": "Rejection", "id": "", "sender": a.email, "recipient": "x@reject.test",
            "timestamp": 1_900_000_001, "session_id": "0f6c4a9e-23d9-41b7-a015-63a1382f8b57",
            "response": { "code": 550, "content": "5.1.1 No such mailbox here" }, "meta": {}
        })),
    ]);
    let hook = stub.fire(
        "make.inboxgrove.log_hook",
        ("inboxgrove.log_hook", LuaNil, LuaNil),
    );
    let LuaValue::Table(hook) = hook.value() else {
        panic!("{hook:?}")
    };
    let refusals = || async {
        let (_, m) = w
            .app
            .get(&format!("/api/v1/inboxes/{}", a.id), &w.admin)
            .await;
        (m["refused_logins"].as_i64(), m["refused_messages"].as_i64())
    };
    let out = stub.invoke(&hook, "send_batch", batch.clone());
    let text = stub.json(&out.value()).as_str().unwrap().to_owned();
    assert!(text.contains("\"stored\":3"), "{text}");
    assert_eq!(refusals().await, (Some(1), Some(1)));

    // KumoMTA retries the same log-hook messages after a lost answer: the
    // records have no spool id, and still count once.
    let out = stub.invoke(&hook, "send_batch", batch);
    let text = stub.json(&out.value()).as_str().unwrap().to_owned();
    assert!(text.contains("\"duplicates\":3"), "{text}");
    assert_eq!(refusals().await, (Some(1), Some(1)));
}
