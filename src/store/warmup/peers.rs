//! `warmup_peers`: external accounts in the warmup pool.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use crate::store::{Result, StoreError, unique_or, uuid_at};
use crate::warmup::Provider;

/// A peer as listed; the sealed password stays in the row.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub email: String,
    pub display_name: String,
    pub provider: Provider,
    pub imap_host: String,
    pub imap_port: u16,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// TLS from the first byte (993, 465) rather than STARTTLS.
    pub imap_implicit_tls: bool,
    pub smtp_implicit_tls: bool,
    pub username: String,
    pub shared: bool,
    pub receive_only: bool,
    pub status: String,
    pub last_error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, kind, email, display_name, provider, imap_host, imap_port,
    smtp_host, smtp_port, username, shared, receive_only, status, last_error, checked_at,
    created_at, imap_implicit_tls, smtp_implicit_tls";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Peer> {
    let provider: String = r.get(5)?;
    Ok(Peer {
        id: uuid_at(r, 0)?,
        user_id: uuid_at(r, 1)?,
        kind: r.get(2)?,
        email: r.get(3)?,
        display_name: r.get(4)?,
        provider: Provider::parse(&provider).unwrap_or(Provider::Other),
        imap_host: r.get(6)?,
        imap_port: r.get(7)?,
        smtp_host: r.get(8)?,
        smtp_port: r.get(9)?,
        username: r.get(10)?,
        shared: r.get(11)?,
        receive_only: r.get(12)?,
        status: r.get(13)?,
        last_error: r.get(14)?,
        checked_at: r.get(15)?,
        created_at: r.get(16)?,
        imap_implicit_tls: r.get(17)?,
        smtp_implicit_tls: r.get(18)?,
    })
}

pub fn insert(c: &Connection, p: &Peer, password_sealed: &[u8]) -> Result<()> {
    c.execute(
        &format!(
            "INSERT INTO warmup_peers ({COLUMNS}, password_sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20)"
        ),
        params![
            p.id.to_string(),
            p.user_id.to_string(),
            p.kind,
            p.email,
            p.display_name,
            p.provider.as_str(),
            p.imap_host,
            p.imap_port,
            p.smtp_host,
            p.smtp_port,
            p.username,
            p.shared,
            p.receive_only,
            p.status,
            p.last_error,
            p.checked_at,
            p.created_at,
            p.imap_implicit_tls,
            p.smtp_implicit_tls,
            password_sealed
        ],
    )
    .map_err(unique_or(|| {
        format!("{} is already a warmup peer of this account", p.email)
    }))?;
    Ok(())
}

/// The peers `scope` may see: its own and the shared ones (`None`: all).
pub fn list(c: &Connection, scope: Option<Uuid>) -> Result<Vec<Peer>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM warmup_peers
         WHERE ?1 IS NULL OR user_id = ?1 OR shared = 1 ORDER BY email, id"
    ))?;
    let rows = stmt.query_map([scope.map(|u| u.to_string())], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(c: &Connection, id: Uuid) -> Result<Option<(Peer, Vec<u8>)>> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS}, password_sealed FROM warmup_peers WHERE id = ?1"),
        [id.to_string()],
        |r| Ok((from_row(r)?, r.get(19)?)),
    )
    .optional()?)
}

/// Deletes a peer `owner` owns (`None`: an admin, any).
pub fn delete(c: &Connection, id: Uuid, owner: Option<Uuid>) -> Result<()> {
    let n = c.execute(
        "DELETE FROM warmup_peers WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![id.to_string(), owner.map(|u| u.to_string())],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("warmup peer"));
    }
    Ok(())
}

/// The outcome of a login check or of the engine's last use.
pub fn set_status(
    c: &Connection,
    id: Uuid,
    status: &str,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "UPDATE warmup_peers SET status = ?2, last_error = ?3, checked_at = ?4 WHERE id = ?1",
        params![id.to_string(), status, error, at],
    )?;
    Ok(())
}
