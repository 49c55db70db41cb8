//! The log hook: records reach `/events` in batches, and a failed POST is
//! retried instead of dropped.

use super::*;
use crate::kumo::record;

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

    // A record the appliance cannot read fails for good (5xx) instead of
    // being retried for a week; the readable one beside it is stored.
    let later = record("Delivery", "hook-3", &a.email, "pal@example.net", json!({}));
    let batch = stub.list(&[
        stub.log_message(&later),
        stub.log_message(&json!({ "type": "Delivery" })),
    ]);
    let out = stub.invoke(&hook, "send_batch", batch);
    assert_eq!(out.rejected().0, 500, "{out:?}");
    assert_eq!(counters().await, (Some(2), Some(1)));
}
