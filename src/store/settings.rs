//! The `settings` table: small named values the appliance keeps for itself
//! (the JWT signing key, sealed; the run-time server settings, see
//! `crate::settings`). Values are bytes; sealing is the caller's.

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

/// Stores `value` under `key`, replacing what was there.
pub fn put(conn: &Connection, key: &str, value: &[u8], now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, now],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM settings WHERE key = ?1", [key])?;
    Ok(())
}

/// Every `(key, value)` whose key starts with `prefix`.
pub fn with_prefix(conn: &Connection, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut stmt =
        conn.prepare("SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1")?;
    let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
