//! Mail that never arrives: a message KumoMTA accepted but could not hand
//! over (a real kumod refused a hosted domain's self-signed certificate
//! and retried until it expired) is a delivery failure with KumoMTA's
//! reason, never a placement; one nobody reported on is missing.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use inboxgrove::clock::ManualClock;
use reqwest::Method;
use serde_json::json;

use super::rig::Rig;
use crate::events::{record, sent};
use crate::inboxes::Control;
use crate::support::dovecot;

const HELD: &str = "gamma.test";
const TLS: &str = "TLS handshake failed: invalid peer certificate: UnknownIssuer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_warmup_mail_is_a_failure_with_its_reason_never_a_placement() {
    if !dovecot::available() {
        return;
    }
    let start: DateTime<Utc> = "2030-03-18T00:05:00Z".parse().unwrap();
    let rig = Rig::start(Arc::new(ManualClock::new(start)), None).await;
    rig.held.lock().unwrap().insert(HELD.into());
    // KumoMTA logs each held message's Reception and, at its first try, a
    // TransientFailure; the first one held is left unreported.
    let kumo = Control::of(&rig.w.app);
    let db = rig.db();
    let mut seen: Vec<String> = Vec::new();
    let mut at = start;
    while at < start + Duration::hours(20) {
        at += Duration::minutes(10);
        rig.run_until(at, Duration::minutes(10)).await;
        let mut stmt = db
            .prepare(
                "SELECT message_id, sender_mailbox, sender_email, recipient_email FROM warmup_messages
                 WHERE status = 'sent' AND recipient_email LIKE '%@' || ?1",
            )
            .unwrap();
        let held: Vec<(String, String, String, String)> = stmt
            .query_map([HELD], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut batch = Vec::new();
        for (mid, mailbox, from, to) in held {
            if seen.contains(&mid) {
                continue;
            }
            let id = format!("r{}", seen.len());
            batch.push(sent(
                &id,
                &mailbox,
                &from,
                &to,
                mid.trim_matches(|c| c == '<' || c == '>'),
            ));
            if !seen.is_empty() {
                batch.push(record(
                    "TransientFailure",
                    &id,
                    &from,
                    &to,
                    json!({
                        "headers": { "Message-ID": mid },
                        "response": { "code": 421, "enhanced_code": { "class": 4, "subject": 7, "detail": 0 },
                                      "content": TLS, "command": null },
                    }),
                ));
            }
            seen.push(mid);
        }
        if !batch.is_empty() {
            let (status, stored) = kumo.call(Method::POST, "/events", Some(json!(batch))).await;
            assert!(status.is_success(), "{stored}");
        }
    }
    assert!(seen.len() >= 2, "{seen:?}");
    rig.run_until(
        start + Duration::hours(23) + Duration::minutes(50),
        Duration::minutes(10),
    )
    .await;
    for (n, mid) in seen.iter().enumerate() {
        let (status, placement, error): (String, Option<String>, Option<String>) = db
            .query_row(
                "SELECT status, placement, error FROM warmup_messages WHERE message_id = ?1",
                [mid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        if n > 0 {
            assert_eq!(
                (status.as_str(), placement.as_deref()),
                ("failed", None),
                "{mid}: {error:?}"
            );
            let error = error.unwrap();
            assert!(
                error.starts_with("never delivered: ") && error.contains(TLS),
                "{error}"
            );
        } else {
            assert_eq!(
                (status.as_str(), placement.as_deref()),
                ("sent", Some("missing")),
                "{mid}"
            );
        }
    }
    // The day rows count them as failures and one missing, none placed.
    let (failed, missing): (i64, i64) = db
        .query_row(
            "SELECT sum(failed), sum(missing) FROM warmup_campaigns",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((failed, missing), (seen.len() as i64 - 1, 1));
}
