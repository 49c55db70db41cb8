//! Housekeeping that keeps the store small: expired refresh tokens, old
//! sessions and finished jobs.

use chrono::Duration;

use super::{Next, Scheduler};
use crate::clock::SharedClock;
use crate::store::{self, Store};

pub const PURGE: &str = "maintenance.purge";

/// How long revoked sessions and finished jobs stay visible for diagnosis.
const KEEP: i64 = 30;

pub fn register(scheduler: &mut Scheduler, store: Store, clock: SharedClock) {
    scheduler.register_periodic(PURGE, Duration::hours(1), move |_| {
        let (store, now) = (store.clone(), clock.now());
        async move {
            let keep = Duration::days(KEEP);
            let removed = store
                .write(move |tx| {
                    Ok::<_, store::StoreError>(
                        store::sessions::purge(tx, now, keep)?
                            + store::jobs::purge_finished(tx, now - keep)?,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
            tracing::debug!(removed, "maintenance purge done");
            Ok(Next::Done)
        }
    });
}
