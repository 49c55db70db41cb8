//! The `users` table.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, StoreError, enum_at, unique_or, uuid_at};
use crate::types::{EmailAddress, Role, SubscriptionTier};

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub subscription_tier: SubscriptionTier,
    pub disabled: bool,
    /// An admin let this member's domains be published with the server's
    /// Cloudflare token (admins always may; see `domains::ownership`).
    pub may_use_server_token: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, role, subscription_tier, disabled_at, created_at, updated_at,
    password_hash, may_use_server_token";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_at(row, 0)?,
        email: row.get(1)?,
        role: enum_at(row, 2, Role::parse)?,
        subscription_tier: enum_at(row, 3, SubscriptionTier::parse)?,
        disabled: row.get::<_, Option<DateTime<Utc>>>(4)?.is_some(),
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        may_use_server_token: row.get(8)?,
    })
}

pub struct NewUser<'a> {
    pub email: &'a EmailAddress,
    pub password_hash: &'a str,
    pub role: Role,
    pub subscription_tier: SubscriptionTier,
}

pub fn insert(conn: &Connection, new: &NewUser<'_>, now: DateTime<Utc>) -> Result<User> {
    let id = Uuid::new_v4();
    conn.execute(
        "INSERT INTO users (id, email, password_hash, role, subscription_tier, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            id.to_string(),
            new.email.as_str(),
            new.password_hash,
            new.role.as_str(),
            new.subscription_tier.as_str(),
            now
        ],
    )
    .map_err(unique_or(|| format!("a user with email {} already exists", new.email)))?;
    by_id(conn, id)?.ok_or(StoreError::NotFound("user"))
}

pub fn by_id(conn: &Connection, id: Uuid) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id.to_string()], from_row)
        .optional()?)
}

/// The user with this email and their password hash, for login.
pub fn credentials(conn: &Connection, email: &EmailAddress) -> Result<Option<(User, String)>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email.as_str()], |r| Ok((from_row(r)?, r.get(7)?)))
        .optional()?)
}

pub fn by_email(conn: &Connection, email: &EmailAddress) -> Result<Option<User>> {
    Ok(credentials(conn, email)?.map(|(u, _)| u))
}

pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY created_at, email");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn count_active_admins(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL",
        [],
        |r| r.get(0),
    )?)
}

/// The changes an admin may make to a user; `None` leaves a field alone.
#[derive(Default)]
pub struct Changes {
    pub role: Option<Role>,
    pub subscription_tier: Option<SubscriptionTier>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
    pub may_use_server_token: Option<bool>,
}

pub fn update(conn: &Connection, id: Uuid, c: &Changes, now: DateTime<Utc>) -> Result<User> {
    let n = conn.execute(
        "UPDATE users SET
            role = coalesce(?2, role),
            subscription_tier = coalesce(?3, subscription_tier),
            disabled_at = CASE ?4 WHEN 1 THEN coalesce(disabled_at, ?6) WHEN 0 THEN NULL
                          ELSE disabled_at END,
            password_hash = coalesce(?5, password_hash),
            may_use_server_token = coalesce(?7, may_use_server_token),
            updated_at = ?6
         WHERE id = ?1",
        params![
            id.to_string(),
            c.role.map(Role::as_str),
            c.subscription_tier.map(SubscriptionTier::as_str),
            c.disabled,
            c.password_hash,
            now,
            c.may_use_server_token
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("user"));
    }
    by_id(conn, id)?.ok_or(StoreError::NotFound("user"))
}
