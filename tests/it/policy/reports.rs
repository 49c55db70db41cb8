//! Reports through the policy: a DSN or an ARF report anyone can send on
//! port 25 is accepted and logged (`log_oob`, `log_arf`), and the records
//! reach the appliance through the log hook; only those about a message a
//! mailbox sent on port 587 act.

use super::*;
use crate::reports::{feedback, oob, quoted};

/// What kumod's log hook puts in a record of `msg`: the meta keys and
/// headers the policy's hook lists (`crates/kumod/src/logging/mod.rs`,
/// `extract_fields`), keyed as the message spells them.
fn logged_fields(stub: &KumoStub, msg: &LuaTable) -> (Value, Value) {
    let hook = &stub.state("log_hooks")[0];
    let mut meta = serde_json::Map::new();
    for key in hook["meta"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let value = stub.meta(msg, key);
        if !value.is_null() {
            meta.insert(key.to_owned(), value);
        }
    }
    let mut headers = serde_json::Map::new();
    for name in hook["headers"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        if let Some(value) = stub.header(msg, name) {
            headers.insert(name.to_owned(), json!(value));
        }
    }
    (Value::Object(meta), Value::Object(headers))
}

/// The X-KumoRef trace of `msg`, decoded as KumoMTA decodes it into an ARF
/// record's `supplemental_trace`.
fn trace_of(stub: &KumoStub, msg: &LuaTable) -> Value {
    use base64::Engine;
    let header = stub.header(msg, "X-KumoRef").unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_arriving_on_port_25_act_only_on_mail_a_mailbox_sent() {
    let w = world().await;
    let a = mailboxes(&w, "fbl.test", 1, 50).await.remove(0);
    let stub = policy(&w);
    let hook = match stub
        .fire(
            "make.inboxgrove.log_hook",
            ("inboxgrove.log_hook", LuaNil, LuaNil),
        )
        .value()
    {
        LuaValue::Table(t) => t,
        other => panic!("the constructor returned {other:?}"),
    };
    let post = |records: &[Value]| {
        let messages: Vec<LuaTable> = records.iter().map(|r| stub.log_message(r)).collect();
        let out = stub.invoke(&hook, "send_batch", stub.list(&messages));
        let text = stub.json(&out.value()).as_str().unwrap_or("").to_owned();
        assert!(text.starts_with("200"), "{out:?}");
    };
    let counters = || async {
        let (_, m) = w
            .app
            .get(&format!("/api/v1/inboxes/{}", a.id), &w.admin)
            .await;
        (
            m["bounced_hard"].as_i64(),
            m["complaints"].as_i64(),
            m["unmatched_reports"].as_i64(),
        )
    };
    let kumo = Control::of(&w.app);
    let sendable = |to: &'static str| {
        let (kumo, from) = (&kumo, a.email.clone());
        async move {
            let (_, d) = kumo
                .call(
                    Method::POST,
                    "/send-check",
                    Some(crate::kumo::check(&from, &from, &[to])),
                )
                .await;
            d["allow"] == true
        }
    };

    // A stranger's DSN and ARF report, delivered to the mailbox on port 25.
    let mx = inbound(&stub);
    assert_eq!(stub.mail_from(&mx, "").0, 250);
    assert_eq!(stub.rcpt_to(&mx, &a.email).0, 250);
    let (code, text, mut dsn) = stub.data(
        &mx,
        json!({ "headers": [["From", "MAILER-DAEMON@rival.example"], ["Subject", "Undelivered Mail"],
                            ["Content-Type", "multipart/report; report-type=delivery-status; boundary=b"]],
                "body": "--b\r\n\r\nsee attached\r\n--b--\r\n" }),
    );
    assert_eq!(code, 250, "{text}");
    let dsn = dsn.pop().unwrap();
    let dsn_id: String = dsn.call_method("id", ()).unwrap();
    post(&[
        oob(&dsn_id, &a.email, "ceo@rival.example", 1_900_000_100),
        feedback(
            "7f0c4b2e9a1d11efb0c2525400a1b2c3",
            &a.email,
            &quoted(&a.email, "made-up@fbl.test"),
            json!({ "_@_": "\\_/", "recipient": "cfo@rival.example", "x_mailbox_id": a.id }),
        ),
    ]);
    assert_eq!(counters().await, (Some(0), Some(0), Some(2)));
    assert!(sendable("ceo@rival.example").await);
    assert!(sendable("cfo@rival.example").await);

    // The mailbox writes to pat on port 587; kumod logs the Reception with
    // what the policy's log hook lists.
    let conn = submission(&stub);
    login(&stub, &conn, &a);
    let msg = mail(&stub, &conn, &a.email, "pat@prospect.example", &[]);
    let out = stub.receive(&msg, &conn);
    assert!(returned_nil(&out), "{out:?}");
    let spool: String = msg.call_method("id", ()).unwrap();
    let (meta, headers) = logged_fields(&stub, &msg);
    let reception = crate::events::record(
        "Reception",
        &spool,
        &a.email,
        "pat@prospect.example",
        json!({ "meta": meta, "headers": headers, "reception_protocol": "ESMTP",
                "delivery_protocol": null }),
    );
    post(&[reception]);

    // Pat's provider reports a complaint, quoting the message with its
    // X-KumoRef: the complaint counts and pat is never mailed again.
    post(&[feedback(
        "8f0c4b2e9a1d11efb0c2525400a1b2c3",
        &a.email,
        &stub.raw(&msg),
        trace_of(&stub, &msg),
    )]);
    assert_eq!(counters().await, (Some(0), Some(1), Some(2)));
    assert!(!sendable("pat@prospect.example").await);
    assert!(sendable("ceo@rival.example").await);
}
