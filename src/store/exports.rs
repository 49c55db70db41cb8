//! The `exports` table and the rows an export file is built from.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{Result, uuid_at};

pub struct Export {
    pub id: Uuid,
    pub user_id: Uuid,
    pub format: String,
    pub include_passwords: bool,
    pub mailbox_ids: Vec<Uuid>,
    pub expires_at: DateTime<Utc>,
}

pub fn insert(conn: &Connection, e: &Export, token_hash: &[u8], now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO exports (id, user_id, token_hash, format, include_passwords, mailbox_ids,
            rows, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            e.id.to_string(),
            e.user_id.to_string(),
            token_hash,
            e.format,
            e.include_passwords,
            serde_json::to_string(&e.mailbox_ids).unwrap_or_else(|_| "[]".into()),
            e.mailbox_ids.len(),
            now,
            e.expires_at
        ],
    )?;
    Ok(())
}

pub fn by_token_hash(conn: &Connection, token_hash: &[u8]) -> Result<Option<Export>> {
    Ok(conn
        .query_row(
            "SELECT id, user_id, format, include_passwords, mailbox_ids, expires_at
             FROM exports WHERE token_hash = ?1",
            [token_hash],
            |r| {
                let ids: String = r.get(4)?;
                Ok(Export {
                    id: uuid_at(r, 0)?,
                    user_id: uuid_at(r, 1)?,
                    format: r.get(2)?,
                    include_passwords: r.get(3)?,
                    mailbox_ids: serde_json::from_str(&ids).unwrap_or_default(),
                    expires_at: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// What a row of an export needs about one mailbox, its sealed password
/// included.
pub struct Source {
    pub id: Uuid,
    pub email: String,
    pub domain: String,
    pub first_name: String,
    pub last_name: String,
    pub daily_limit: u32,
    pub status: String,
    pub tracking_domain: Option<String>,
    pub password_sealed: Option<Vec<u8>>,
}

/// The mailboxes among `ids` visible to `scope` (everyone's when `None`),
/// in the order given.
pub fn sources(conn: &Connection, ids: &[Uuid], scope: Option<Uuid>) -> Result<Vec<Source>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.username || '@' || d.domain_name, d.domain_name, m.first_name,
            m.last_name, m.daily_limit, m.status, d.tracking_domain, m.password_sealed
         FROM mailboxes m JOIN domains d ON d.id = m.domain_id
         WHERE m.id = ?1 AND (?2 IS NULL OR m.user_id = ?2)",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let found = stmt
            .query_row(params![id.to_string(), scope.map(|s| s.to_string())], |r| {
                Ok(Source {
                    id: uuid_at(r, 0)?,
                    email: r.get(1)?,
                    domain: r.get(2)?,
                    first_name: r.get(3)?,
                    last_name: r.get(4)?,
                    daily_limit: r.get(5)?,
                    status: r.get(6)?,
                    tracking_domain: r.get(7)?,
                    password_sealed: r.get(8)?,
                })
            })
            .optional()?;
        out.extend(found);
    }
    Ok(out)
}

/// Ids of the mailboxes visible to `scope`, among `ids` (absent ones are
/// left out), or of a domain's.
pub fn visible(conn: &Connection, ids: &[Uuid], scope: Option<Uuid>) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM mailboxes WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
    )?;
    let mut out = Vec::new();
    for id in ids {
        let found = stmt
            .query_row(params![id.to_string(), scope.map(|s| s.to_string())], |r| {
                uuid_at(r, 0)
            })
            .optional()?;
        out.extend(found);
    }
    Ok(out)
}

pub fn of_domain(conn: &Connection, domain: Uuid) -> Result<Vec<Uuid>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM mailboxes WHERE domain_id = ?1 ORDER BY username")?;
    let rows = stmt.query_map([domain.to_string()], |r| uuid_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
