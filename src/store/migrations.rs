//! Versioned migrations, tracked in SQLite's `user_version`. Each one runs in
//! its own transaction, so a failed upgrade leaves the previous version
//! intact.

use rusqlite::Connection;

use super::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_inboxes.sql"),
    include_str!("migrations/0003_exports.sql"),
    include_str!("migrations/0004_integrations.sql"),
    include_str!("migrations/0005_event_ingest.sql"),
    include_str!("migrations/0006_egress.sql"),
    include_str!("migrations/0007_server_token.sql"),
    include_str!("migrations/0008_unmatched_reports.sql"),
    include_str!("migrations/0009_retention.sql"),
    include_str!("migrations/0010_auth_generation.sql"),
    include_str!("migrations/0011_tiers.sql"),
    include_str!("migrations/0012_certificates.sql"),
    include_str!("migrations/0013_warmup.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS)
}

/// Applies the `migrations` a database at `user_version` has not had yet.
/// Split from [`migrate`] so tests can stop at an earlier version (to
/// write the data dir an older binary left) or append a failing step.
fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let known = migrations.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    // user_version lives in the database header (page 1, offset 60;
    // sqlite.org/fileformat2.html), written through the same journal as the
    // schema, so a version and its migration commit or roll back together.
    for (version, sql) in (1..).zip(migrations).skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
