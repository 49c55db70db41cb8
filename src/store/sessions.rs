//! The `sessions` and `refresh_tokens` tables: a session is one family of
//! rotating refresh tokens.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::users::{self, User};
use super::{Result, uuid_at};

pub fn create(conn: &Connection, user_id: Uuid, now: DateTime<Utc>) -> Result<Uuid> {
    let id = Uuid::new_v4();
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![id.to_string(), user_id.to_string(), now],
    )?;
    Ok(id)
}

pub fn add_refresh_token(
    conn: &Connection,
    session_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            Uuid::new_v4().to_string(),
            session_id.to_string(),
            token_hash,
            expires_at,
            now
        ],
    )?;
    Ok(())
}

/// What is known about a presented refresh token.
pub struct RefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub spent: bool,
    pub session_revoked: bool,
    pub user_disabled: bool,
}

pub fn refresh_token(conn: &Connection, token_hash: &[u8]) -> Result<Option<RefreshToken>> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id, r.session_id, s.user_id, r.expires_at, r.spent_at IS NOT NULL,
                    s.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL
             FROM refresh_tokens r
             JOIN sessions s ON s.id = r.session_id
             JOIN users u ON u.id = s.user_id
             WHERE r.token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(RefreshToken {
                id: uuid_at(r, 0)?,
                session_id: uuid_at(r, 1)?,
                user_id: uuid_at(r, 2)?,
                expires_at: r.get(3)?,
                spent: r.get(4)?,
                session_revoked: r.get(5)?,
                user_disabled: r.get(6)?,
            })
        })
        .optional()?)
}

/// Marks a refresh token spent; false when it already was (a concurrent
/// refresh won the race), which callers treat as reuse.
pub fn spend_refresh_token(conn: &Connection, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let n = conn.execute(
        "UPDATE refresh_tokens SET spent_at = ?2 WHERE id = ?1 AND spent_at IS NULL",
        params![id.to_string(), now],
    )?;
    Ok(n == 1)
}

pub fn revoke(conn: &Connection, session_id: Uuid, reason: &str, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![session_id.to_string(), now, reason],
    )?;
    Ok(())
}

pub fn revoke_all_of_user(
    conn: &Connection,
    user_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id.to_string(), now, reason],
    )?)
}

/// The user behind an access token, if its session is live and the user
/// enabled.
pub fn active_user(conn: &Connection, session_id: Uuid, user_id: Uuid) -> Result<Option<User>> {
    let live: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sessions
                            WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL)",
        )?
        .query_row(params![session_id.to_string(), user_id.to_string()], |r| {
            r.get(0)
        })?;
    if !live {
        return Ok(None);
    }
    Ok(users::by_id(conn, user_id)?.filter(|u| !u.disabled))
}

/// Deletes refresh tokens past their expiry and sessions that have been
/// revoked, or have had no live refresh token, for longer than `keep`.
pub fn purge(conn: &Connection, now: DateTime<Utc>, keep: chrono::Duration) -> Result<usize> {
    let expired = conn.execute(
        "DELETE FROM refresh_tokens WHERE expires_at < ?1",
        params![now],
    )?;
    let cutoff = now - keep;
    let sessions = conn.execute(
        "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < ?1)
            OR (created_at < ?1 AND NOT EXISTS
                (SELECT 1 FROM refresh_tokens r WHERE r.session_id = sessions.id))",
        params![cutoff],
    )?;
    Ok(expired + sessions)
}
