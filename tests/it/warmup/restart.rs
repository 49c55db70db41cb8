//! A restart in the middle of a warmup day neither loses nor repeats a
//! send: the plan, its send jobs and each message's state are in SQLite,
//! and a message is marked `sending` before its SMTP session.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use inboxgrove::clock::ManualClock;

use super::rig::Rig;
use crate::support::dovecot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_day_neither_loses_nor_repeats_a_send() {
    if !dovecot::available() {
        return;
    }
    let control = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let start: DateTime<Utc> = "2030-03-18T00:05:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let mut rig = Rig::start(clock.clone(), Some(control)).await;
    // Half the day, then a restart with sends still planned.
    rig.run_until(start + Duration::hours(12), Duration::minutes(10))
        .await;
    let db = rig.db();
    let count = |status: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM warmup_messages WHERE status = ?1 AND reply_to IS NULL",
            [status],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (sent_before, planned_before) = (count("sent"), count("planned"));
    assert!(
        sent_before > 0 && planned_before > 0,
        "{sent_before} sent, {planned_before} planned by noon"
    );
    // One send is cut off in its SMTP session by the stop: left `sending`.
    let cut: String = db
        .query_row(
            "UPDATE warmup_messages SET status = 'sending', message_id = '<cut@alpha.test>'
             WHERE id = (SELECT id FROM warmup_messages WHERE status = 'planned' AND reply_to IS NULL
                         ORDER BY scheduled_at LIMIT 1)
             RETURNING id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    rig.restart(control).await;
    rig.run_until(start + Duration::hours(23), Duration::minutes(10))
        .await;

    let planned_total: i64 = db
        .query_row(
            "SELECT sum(scheduled_sends) FROM warmup_campaigns",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count("planned"), 0, "nothing is left behind");
    assert_eq!(
        count("sent") + 1,
        planned_total,
        "every planned message but the one cut off was sent"
    );
    // Each was submitted once: the receiver saw every Message-ID once.
    let ids: Vec<String> = rig
        .submission
        .accepted()
        .iter()
        .filter_map(|e| {
            let text = String::from_utf8_lossy(&e.data).to_string();
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l[11..].trim().to_owned())
        })
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a message was submitted twice");
    let all_sent: i64 = db
        .query_row(
            "SELECT count(*) FROM warmup_messages WHERE status = 'sent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ids.len() as i64, all_sent);
    // The one cut off is never submitted again; it is looked for, and as
    // it never arrived it is a failure that says why, not a placement.
    assert!(!ids.contains(&"<cut@alpha.test>".to_owned()));
    let (status, error, placement): (String, String, Option<String>) = db
        .query_row(
            "SELECT status, error, placement FROM warmup_messages WHERE id = ?1",
            [&cut],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), placement), ("failed", None));
    assert!(
        error.starts_with("never delivered: the server stopped during its submission"),
        "{error}"
    );
}
