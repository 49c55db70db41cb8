//! Housekeeping that keeps the store small: expired refresh tokens, old
//! sessions and finished jobs, and the audit log and raw mail events past
//! their retention (issue 12, point 7).

use std::sync::Arc;

use chrono::Duration;

use super::{Next, Scheduler};
use crate::clock::SharedClock;
use crate::settings::LiveSettings;
use crate::store::retention::{self, Pruned};
use crate::store::{self, Store, StoreError};

pub const PURGE: &str = "maintenance.purge";

/// How long revoked sessions and finished jobs stay visible for diagnosis.
const KEEP: i64 = 30;

/// Rows deleted per transaction: a first prune of a long backlog takes the
/// one writer in short turns, so logins and event ingestion go on between.
const BATCH: u32 = 5_000;

pub fn register(
    scheduler: &mut Scheduler,
    store: Store,
    clock: SharedClock,
    settings: Arc<LiveSettings>,
) {
    scheduler.register_periodic(PURGE, Duration::hours(1), move |_| {
        let (store, settings, now) = (store.clone(), settings.clone(), clock.now());
        async move {
            let keep = Duration::days(KEEP);
            let mut removed = store
                .write(move |tx| {
                    Ok::<_, StoreError>(
                        store::sessions::purge(tx, now, keep)?
                            + store::jobs::purge_finished(tx, now - keep)?,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
            // Read at each run, so a changed setting applies at the next.
            let days = settings.get().retention;
            for table in Pruned::ALL {
                let kept = match table {
                    Pruned::AuditLogs => days.audit_days,
                    _ => days.event_days,
                };
                let before = now - Duration::days(i64::from(kept));
                let pruned = prune_all(&store, table, before)
                    .await
                    .map_err(|e| e.to_string())?;
                if pruned > 0 {
                    tracing::info!(
                        table = table.table(),
                        pruned,
                        kept_days = kept,
                        "pruned rows past their retention"
                    );
                }
                removed += pruned;
            }
            tracing::debug!(removed, "maintenance purge done");
            Ok(Next::Done)
        }
    });
}

async fn prune_all(
    store: &Store,
    table: Pruned,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = store
            .write(move |tx| retention::prune(tx, table, before, BATCH))
            .await?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests;
