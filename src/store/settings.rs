//! The `settings` table: small named values the appliance keeps for itself
//! (the JWT signing key, sealed). Values are bytes; sealing is the caller's.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::Result;

pub fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Stores `value` under `key` unless a value is already there; returns the
/// value that is stored afterwards, so two processes agree on one.
pub fn get_or_insert(
    conn: &Connection,
    key: &str,
    value: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO NOTHING",
        params![key, value, now],
    )?;
    Ok(
        conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })?,
    )
}
