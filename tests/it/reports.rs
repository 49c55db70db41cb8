//! Reports that suppress must be ours (issue 12, point 5): a DSN or an ARF
//! report that anyone can send to a hosted mailbox on port 25 changes no
//! counter and suppresses nobody unless it matches a message the appliance
//! sent; one that does, acts. Records are posted as the policy's log hook
//! posts what KumoMTA logs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::world;
use crate::events::{record, sent};
use crate::inboxes::{Control, bulk, with_domain};
use crate::kumo::check;

/// The OOB record KumoMTA logs for one failed recipient of a DSN that
/// arrived on port 25 (`crates/kumod/src/logging/disposition.rs`): the
/// DSN's own spool id, its envelope recipient as `sender`, no meta.
pub fn oob(dsn_id: &str, to: &str, failed: &str, stamp: i64) -> Value {
    record(
        "OOB",
        dsn_id,
        to,
        failed,
        json!({ "timestamp": stamp, "num_attempts": 0, "size": 0,
                "response": { "code": 550, "enhanced_code": { "class": 5, "subject": 1, "detail": 1 },
                              "content": "user unknown", "command": null },
                "peer_address": { "name": "mx.prospect.example", "addr": "203.0.113.9" },
                "reception_protocol": "ESMTP", "delivery_protocol": null }),
    )
}

/// The Feedback record KumoMTA logs for an ARF report that arrived on port
/// 25: `original_message` as quoted, `trace` decoded from its X-KumoRef.
pub fn feedback(report_id: &str, to: &str, original_message: &str, trace: Value) -> Value {
    record(
        "Feedback",
        report_id,
        "fbl-noreply@isp.example",
        to,
        json!({ "num_attempts": 0, "reception_protocol": "ESMTP", "delivery_protocol": null,
                "meta": { "x_listener": "inbound" },
                "feedback_report": {
                    "feedback_type": "abuse", "user_agent": "FBL/1.0", "version": "1",
                    "original_mail_from": null, "original_rcpto_to": [],
                    "reported_domain": [], "source_ip": null,
                    "original_message": original_message, "supplemental_trace": trace } }),
    )
}

/// A quoted copy of a message with this Message-ID.
pub fn quoted(from: &str, message_id: &str) -> String {
    format!(
        "From: {from}\r\nTo: someone\r\nMessage-ID: <{message_id}>\r\nSubject: Quick question\r\n\r\nHi\r\n"
    )
}

async fn post(kumo: &Control, body: Value) {
    let (status, answer) = kumo.call(Method::POST, "/events", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn forged_reports_change_nothing_and_reports_about_our_mail_act() {
    let w = world().await;
    let domain = with_domain(&w, "reports.test").await;
    w.app.set_domain_status("reports.test", "active");
    let (_, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 1, "daily_limit": 100 }),
    )
    .await;
    let (id, ada) = (
        created["inboxes"][0]["inbox_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        created["inboxes"][0]["email"].as_str().unwrap().to_owned(),
    );
    let kumo = Control::of(&w.app);
    let counters = || async {
        let (_, m) = w.app.get(&format!("/api/v1/inboxes/{id}"), &w.admin).await;
        (
            m["bounced_hard"].as_i64(),
            m["complaints"].as_i64(),
            m["unmatched_reports"].as_i64(),
        )
    };
    let suppressed = |to: &'static str| {
        let (kumo, ada) = (&kumo, &ada);
        async move {
            let (_, d) = kumo
                .call(Method::POST, "/send-check", Some(check(ada, ada, &[to])))
                .await;
            d["code"] == 550 && d["reason"].as_str().unwrap_or("").contains("suppressed")
        }
    };

    // A stranger's DSN naming ada and two addresses she never wrote to, and
    // a complaint with a made-up Message-ID and a trace naming her.
    post(
        &kumo,
        json!([
            oob("dsn-1", &ada, "ceo@rival.example", 1_900_000_100),
            oob("dsn-1", &ada, "cfo@rival.example", 1_900_000_100),
            feedback(
                "arf-1",
                "fbl@reports.test",
                &quoted(&ada, "made-up@reports.test"),
                json!({ "_@_": "\\_/", "recipient": "cto@rival.example", "x_mailbox_id": id })
            ),
        ]),
    )
    .await;
    assert_eq!(counters().await, (Some(0), Some(0), Some(3)));
    for to in [
        "ceo@rival.example",
        "cfo@rival.example",
        "cto@rival.example",
    ] {
        assert!(!suppressed(to).await, "{to} must stay sendable");
    }
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    assert_eq!(stats["events"]["unmatched_reports"], 3, "{stats}");

    // Ada's messages, as KumoMTA logs their Reception on port 587.
    post(
        &kumo,
        json!([
            sent(
                "spool-pat",
                &id,
                &ada,
                "pat@prospect.example",
                "pat-1@reports.test"
            ),
            sent(
                "spool-lee",
                &id,
                &ada,
                "lee@prospect.example",
                "lee-1@reports.test"
            ),
        ]),
    )
    .await;
    // Their Message-ID with another recipient is still not ours to act on;
    // naming no mailbox, it is counted only in the totals.
    post(
        &kumo,
        feedback(
            "arf-2",
            "fbl@reports.test",
            &quoted(&ada, "lee-1@reports.test"),
            json!({ "_@_": "\\_/", "recipient": "ceo@rival.example" }),
        ),
    )
    .await;
    assert_eq!(counters().await, (Some(0), Some(0), Some(3)));
    assert!(!suppressed("ceo@rival.example").await);

    // The prospect's MX bounces pat's copy later; lee's provider reports
    // a complaint quoting lee's copy: both act.
    post(
        &kumo,
        json!([
            oob("dsn-2", &ada, "pat@prospect.example", 1_900_000_200),
            feedback(
                "arf-3",
                "fbl@reports.test",
                &quoted(&ada, "lee-1@reports.test"),
                json!({ "_@_": "\\_/", "recipient": "lee@prospect.example", "x_mailbox_id": id })
            ),
        ]),
    )
    .await;
    assert_eq!(counters().await, (Some(1), Some(1), Some(3)));
    assert!(suppressed("pat@prospect.example").await);
    assert!(suppressed("lee@prospect.example").await);
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    assert_eq!(stats["events"]["unmatched_reports"], 4, "{stats}");
}
