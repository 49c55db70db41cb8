//! The `integration_keys` table: sequencer API keys saved per user, sealed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::Result;

pub struct SavedKey {
    pub tool: String,
    pub hint: String,
    pub updated_at: DateTime<Utc>,
}

pub fn upsert(
    conn: &Connection,
    user: Uuid,
    tool: &str,
    sealed: &[u8],
    hint: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO integration_keys (user_id, tool, key_sealed, hint, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, tool) DO UPDATE
         SET key_sealed = excluded.key_sealed, hint = excluded.hint,
             updated_at = excluded.updated_at",
        params![user.to_string(), tool, sealed, hint, now],
    )?;
    Ok(())
}

pub fn sealed(conn: &Connection, user: Uuid, tool: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT key_sealed FROM integration_keys WHERE user_id = ?1 AND tool = ?2",
            params![user.to_string(), tool],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn list(conn: &Connection, user: Uuid) -> Result<Vec<SavedKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT tool, hint, updated_at FROM integration_keys WHERE user_id = ?1 ORDER BY tool",
    )?;
    let rows = stmt.query_map([user.to_string()], |r| {
        Ok(SavedKey {
            tool: r.get(0)?,
            hint: r.get(1)?,
            updated_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether there was a key to remove.
pub fn delete(conn: &Connection, user: Uuid, tool: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM integration_keys WHERE user_id = ?1 AND tool = ?2",
        params![user.to_string(), tool],
    )? > 0)
}
