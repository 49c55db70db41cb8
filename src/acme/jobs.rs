//! The ACME client's durable jobs: `acme.issue` orders every bundle that
//! is due (or all of them, forced), `acme.check` looks at the renewal
//! times every 12 hours and queues `acme.issue` when one has come.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rusqlite::Transaction;
use uuid::Uuid;

use super::Acme;
use crate::domains::work::OnActive;
use crate::jobs::{Next, Scheduler};
use crate::store::{self, StoreError, jobs::NewJob};

pub const ISSUE: &str = "acme.issue";
pub const CHECK: &str = "acme.check";
/// With the scheduler's backoff (5 s doubling, capped at an hour) about
/// ten minutes of tries; after that the next check starts again.
const ISSUE_ATTEMPTS: u32 = 8;
/// How often renewal times are looked at.
const CHECK_EVERY: Duration = Duration::hours(12);
/// A domain that becomes active is ordered this long after, so the domains
/// of a bulk activation make one order, not one each.
pub const DEBOUNCE: Duration = Duration::seconds(30);

pub fn register(scheduler: &mut Scheduler, acme: Arc<Acme>) {
    let a = acme.clone();
    scheduler.register(ISSUE, ISSUE_ATTEMPTS, move |payload| {
        let a = a.clone();
        async move {
            let force = payload["force"].as_bool().unwrap_or(false);
            a.issue(force).await.map_err(|e| e.to_string())
        }
    });
    scheduler.register_periodic(CHECK, CHECK_EVERY, move |_| {
        let a = acme.clone();
        async move {
            a.check().await.map_err(|e| e.to_string())?;
            Ok(Next::Done)
        }
    });
}

/// Queues an issuing run at `run_at`; a queued or running one of the same
/// kind (due, or forced) is not queued twice.
pub fn enqueue(
    tx: &Transaction<'_>,
    run_at: DateTime<Utc>,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let key = if force { "acme.issue:all" } else { ISSUE };
    store::jobs::insert(
        tx,
        &NewJob {
            kind: ISSUE,
            payload: &serde_json::json!({ "force": force }),
            run_at,
            max_attempts: ISSUE_ATTEMPTS,
            unique_key: Some(key),
        },
        now,
    )
}

/// Queues issuance when a domain becomes active (its mail host needs a
/// certificate), in the transaction that activates it.
pub struct IssueOnActive;

impl OnActive for IssueOnActive {
    fn activated(&self, tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        enqueue(tx, now + DEBOUNCE, false, now).map(|_| ())
    }
}
