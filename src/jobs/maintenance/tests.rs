//! The maintenance job against a real store, driven by the injected clock
//! through the scheduler.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rusqlite::params;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::config::DomainSettings;
use crate::config::{Key, Origins};
use crate::settings::{Change, Patch, Value};
use crate::vault::Vault;

const USER: &str = "00000000-0000-7000-8000-000000000001";
const MAILBOX: &str = "00000000-0000-7000-8000-000000000003";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    settings: Arc<LiveSettings>,
    scheduler: Scheduler,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
    ));
    let settings = Arc::new(LiveSettings::new(
        store.clone(),
        Arc::new(vault),
        clock.clone(),
        DomainSettings::default(),
        chrono_tz::UTC,
        Origins::default(),
    ));
    settings.load().await.unwrap();
    let mut scheduler = Scheduler::new(store.clone(), clock.clone(), StdRng::seed_from_u64(1));
    register(
        &mut scheduler,
        store.clone(),
        clock.clone(),
        settings.clone(),
    );
    scheduler.recover().await.unwrap();
    Fixture {
        _dir: dir,
        store,
        clock,
        settings,
        scheduler,
    }
}

/// A user with a mailbox whose counters are non-zero and a suppression
/// written long before any retention.
async fn seed_owner(f: &Fixture) {
    let long_ago = f.clock.now() - Duration::days(1000);
    f.store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                 VALUES (?1, 'o@example.com', 'x', 'member', ?2, ?2)",
                params![USER, long_ago],
            )?;
            tx.execute(
                "INSERT INTO domains (id, user_id, domain_name, dns_mode, created_at, updated_at)
                 VALUES ('00000000-0000-7000-8000-000000000002', ?1, 'kept.test', 'manual', ?2, ?2)",
                params![USER, long_ago],
            )?;
            tx.execute(
                "INSERT INTO mailboxes (id, domain_id, user_id, username, password_hash,
                     bounced_hard, complaints, total_sent, created_at, updated_at)
                 VALUES (?1, '00000000-0000-7000-8000-000000000002', ?2, 'ann', 'x', 3, 1, 40, ?3, ?3)",
                params![MAILBOX, USER, long_ago],
            )?;
            tx.execute(
                "INSERT INTO suppressions (user_id, address, reason, created_at)
                 VALUES (?1, 'gone@example.net', 'complaint', ?2)",
                params![USER, long_ago],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

/// `n` rows of each pruned table stored `age` ago, tagged with `tag`.
async fn seed_rows(f: &Fixture, tag: &str, age: Duration, n: usize) {
    let at = f.clock.now() - age;
    let tag = tag.to_owned();
    f.store
        .write(move |tx| {
            for i in 0..n {
                let key = format!("{tag}-{i}");
                let row = crate::audit::row(
                    crate::audit::Entry {
                        action: format!("test.{tag}"),
                        success: true,
                        ..Default::default()
                    },
                    at,
                );
                store::audit::insert(tx, &row)?;
                tx.execute(
                    "INSERT INTO mail_events (idempotency_key, kind, message_id, mailbox_id,
                         at, received_at) VALUES (?1, 'Delivery', ?1, ?2, ?3, ?3)",
                    params![key, MAILBOX, at],
                )?;
                tx.execute(
                    "INSERT INTO quarantined_events (digest, error, raw, received_at)
                     VALUES (?1, 'unreadable', '{}', ?2)",
                    params![key, at],
                )?;
                tx.execute(
                    "INSERT INTO outbound_messages (spool_id, recipient, mailbox_id, at)
                     VALUES (?1, 'r@example.net', ?2, ?3)",
                    params![key, MAILBOX, at],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

/// How many rows tagged `tag` each pruned table holds, in `Pruned::ALL`
/// order.
async fn left(f: &Fixture, tag: &str) -> [i64; 4] {
    let (like, action) = (format!("{tag}-%"), format!("test.{tag}"));
    f.store
        .read(move |c| {
            let count = |sql: &str, arg: &str| -> rusqlite::Result<i64> {
                c.query_row(sql, [arg], |r| r.get(0))
            };
            Ok::<_, StoreError>([
                count("SELECT count(*) FROM audit_logs WHERE action = ?1", &action)?,
                count(
                    "SELECT count(*) FROM mail_events WHERE idempotency_key LIKE ?1",
                    &like,
                )?,
                count(
                    "SELECT count(*) FROM quarantined_events WHERE digest LIKE ?1",
                    &like,
                )?,
                count(
                    "SELECT count(*) FROM outbound_messages WHERE spool_id LIKE ?1",
                    &like,
                )?,
            ])
        })
        .await
        .unwrap()
}

async fn set(f: &Fixture, key: Key, days: &str) {
    let value = Value::parse(key, days.to_owned()).unwrap();
    let patch = Patch([(key, Change::Set(value))].into_iter().collect());
    f.settings.update(patch).await.unwrap();
}

#[tokio::test]
async fn rows_past_their_retention_go_and_what_they_fed_stays() {
    let f = fixture().await;
    seed_owner(&f).await;
    // More than one batch of old rows, so the job must come back for more.
    seed_rows(&f, "ancient", Duration::days(400), BATCH as usize + 7).await;
    seed_rows(&f, "audit-kept", Duration::days(364), 1).await;
    seed_rows(&f, "month", Duration::days(40), 2).await;
    seed_rows(&f, "fortnight", Duration::days(20), 2).await;
    seed_rows(&f, "fresh", Duration::days(1), 2).await;

    assert_eq!(f.scheduler.run_due().await.unwrap(), 1);
    // Audit log 365 days, raw events 90, by default.
    assert_eq!(left(&f, "ancient").await, [0; 4]);
    assert_eq!(left(&f, "audit-kept").await, [1, 0, 0, 0]);
    assert_eq!(left(&f, "month").await, [2; 4]);
    assert_eq!(left(&f, "fortnight").await, [2; 4]);
    assert_eq!(left(&f, "fresh").await, [2; 4]);

    // A changed setting applies at the next hourly run, not before.
    set(&f, Key::EventRetentionDays, "14").await;
    set(&f, Key::AuditRetentionDays, "30").await;
    assert_eq!(f.scheduler.run_due().await.unwrap(), 0);
    assert_eq!(left(&f, "month").await, [2; 4]);
    f.clock.advance(Duration::hours(1));
    assert_eq!(f.scheduler.run_due().await.unwrap(), 1);
    assert_eq!(left(&f, "audit-kept").await, [0; 4]);
    assert_eq!(left(&f, "month").await, [0; 4]);
    assert_eq!(left(&f, "fortnight").await, [2, 0, 0, 0]);
    assert_eq!(left(&f, "fresh").await, [2; 4]);

    let (counters, suppressed) = f
        .store
        .read(|c| {
            let counters: (i64, i64, i64) = c.query_row(
                "SELECT bounced_hard, complaints, total_sent FROM mailboxes WHERE id = ?1",
                [MAILBOX],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let user = uuid::Uuid::parse_str(USER).unwrap();
            let suppressed = store::mailboxes::is_suppressed(c, user, "gone@example.net")?;
            Ok::<_, StoreError>((counters, suppressed))
        })
        .await
        .unwrap();
    assert_eq!(counters, (3, 1, 40), "mailbox counters are not raw events");
    assert!(suppressed, "a suppressed address stays suppressed");
}

#[tokio::test]
async fn an_aggregated_row_goes_by_its_first_occurrence() {
    let f = fixture().await;
    let first = f.clock.now() - Duration::days(366);
    let later = first + Duration::minutes(50);
    for at in [first, later] {
        let row = crate::audit::row(
            crate::audit::Entry {
                action: "test.aggregate".into(),
                metadata: [("count".to_owned(), serde_json::json!(1))]
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
            at,
        );
        f.store
            .write(move |tx| store::audit::add_to_aggregate(tx, &row, "k"))
            .await
            .unwrap();
    }
    let count = |store: Store| async move {
        store
            .read(|c| {
                Ok::<i64, StoreError>(c.query_row(
                    "SELECT coalesce(sum(metadata ->> '$.count'), 0) FROM audit_logs
                 WHERE action = 'test.aggregate'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
    };
    assert_eq!(
        count(f.store.clone()).await.unwrap(),
        2,
        "one row, counted twice"
    );
    f.scheduler.run_due().await.unwrap();
    assert_eq!(count(f.store.clone()).await.unwrap(), 0);
}
