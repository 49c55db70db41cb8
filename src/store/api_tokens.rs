//! The `api_tokens` table: long-lived tokens for automation, stored hashed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::users::{self, User};
use super::{Result, StoreError, uuid_at};

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The first characters of the token, enough to recognise it.
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: uuid_at(row, 0)?,
        user_id: uuid_at(row, 1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        expires_at: row.get(4)?,
        created_at: row.get(5)?,
    })
}

const COLUMNS: &str = "id, user_id, name, prefix, expires_at, created_at";

pub fn insert(conn: &Connection, token: &ApiToken, token_hash: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token.id.to_string(),
            token.user_id.to_string(),
            token.name,
            token.prefix,
            token_hash,
            token.expires_at,
            token.created_at
        ],
    )?;
    Ok(())
}

/// Tokens of one owner, or of everyone when `owner` is `None` (admins).
pub fn list(conn: &Connection, owner: Option<Uuid>) -> Result<Vec<ApiToken>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE ?1 IS NULL OR user_id = ?1 ORDER BY created_at"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([owner.map(|o| o.to_string())], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes a token visible to `owner` (everyone's when `None`). A token of
/// someone else is reported as not found, exactly like a missing one.
pub fn delete(conn: &Connection, id: Uuid, owner: Option<Uuid>) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM api_tokens WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![id.to_string(), owner.map(|o| o.to_string())],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("API token"));
    }
    Ok(())
}

/// The token with this hash and its owner, if the owner is enabled. Expiry
/// is the caller's to check against its clock.
pub fn owner_by_hash(conn: &Connection, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = ?1");
    let token = conn
        .prepare_cached(&sql)?
        .query_row([token_hash], from_row)
        .optional()?;
    let Some(token) = token else { return Ok(None) };
    let owner = users::by_id(conn, token.user_id)?.filter(|u| !u.disabled);
    Ok(owner.map(|u| (token, u)))
}

/// Deletes every API token of `user`; returns how many there were.
pub fn delete_all_of_user(conn: &Connection, user: Uuid) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM api_tokens WHERE user_id = ?1",
        [user.to_string()],
    )?)
}
