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
    // 0009 is the retention helper of issue 12, point 7 (another branch).
    include_str!("migrations/0010_tiers.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN \
                 ('users','domains','mailboxes','dkim_keys','oauth_accounts','warmup_campaigns',\
                  'audit_logs','api_tokens','refresh_tokens','sessions','jobs','settings')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 12);

        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn a_version_1_database_upgrades_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("v1.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                 VALUES ('u', 'a@b.test', 'h', 'admin', 't', 't');
             INSERT INTO domains (id, user_id, domain_name, dns_mode, created_at, updated_at)
                 VALUES ('d', 'u', 'b.test', 'manual', 't', 't');
             INSERT INTO mailboxes (id, domain_id, user_id, username, password_hash, created_at, updated_at)
                 VALUES ('m', 'd', 'u', 'ada', 'h', 't', 't');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (first, delivered): (String, i64) = conn
            .query_row(
                "SELECT first_name, delivered FROM mailboxes WHERE id = 'm'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((first.as_str(), delivered), ("", 0));
        let exports: i64 = conn
            .query_row("SELECT count(*) FROM exports", [], |r| r.get(0))
            .unwrap();
        assert_eq!(exports, 0);
    }
}
