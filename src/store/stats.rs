//! Counts for the dashboard: how many domains and mailboxes stand in each
//! status, and today's sends against the daily capacity.

use chrono::NaiveDate;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::Result;

/// `(status, count)` of the domains `scope` sees, by status name.
pub fn domains_by_status(conn: &Connection, scope: Option<Uuid>) -> Result<Vec<(String, i64)>> {
    by_status(
        conn,
        "SELECT status, count(*) FROM domains WHERE ?1 IS NULL OR user_id = ?1
         GROUP BY status ORDER BY status",
        scope,
    )
}

/// `(status, count)` of the mailboxes `scope` sees, by status name.
pub fn mailboxes_by_status(conn: &Connection, scope: Option<Uuid>) -> Result<Vec<(String, i64)>> {
    by_status(
        conn,
        "SELECT status, count(*) FROM mailboxes WHERE ?1 IS NULL OR user_id = ?1
         GROUP BY status ORDER BY status",
        scope,
    )
}

fn by_status(conn: &Connection, sql: &str, scope: Option<Uuid>) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([scope.map(|s| s.to_string())], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sends on `today` (the sending day's date) and the summed daily limits of
/// the mailboxes that may send (not paused or blacklisted).
pub fn sends_today(conn: &Connection, scope: Option<Uuid>, today: NaiveDate) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(CASE WHEN last_reset_date = ?2 THEN emails_sent_today ELSE 0 END), 0),
                coalesce(sum(CASE WHEN status IN ('active', 'warming') THEN daily_limit ELSE 0 END), 0)
         FROM mailboxes WHERE ?1 IS NULL OR user_id = ?1",
        params![scope.map(|s| s.to_string()), today.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
