//! The `certificates` table: one row per certificate bundle the ACME
//! client keeps (see `crate::acme`). The private key is sealed by the
//! caller (slot `certificates.private_key`, row = bundle id).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Result, StoreError};

// Apart, so the macro's `Result` is std's, not this module's alias.
mod status {
    crate::types::name_enum!(
        /// Where a bundle stands: never issued yet, serving a certificate,
        /// or its last order failed (a certificate issued before stays).
        BundleStatus { Pending => "pending", Valid => "valid", Failed => "failed" }
    );
}
pub use status::BundleStatus;

/// A bundle as stored, without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRow {
    pub id: String,
    /// What the bundle should cover now.
    pub names: Vec<String>,
    pub status: BundleStatus,
    /// What its current certificate covers (empty before the first one).
    pub issued_names: Vec<String>,
    #[serde(skip)]
    pub chain_pem: Option<String>,
    pub serial: Option<String>,
    pub not_after: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    pub renew_after: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub needs_reload: bool,
}

/// A certificate just issued for a bundle.
pub struct Issued<'a> {
    pub names: &'a [String],
    pub chain_pem: &'a str,
    pub sealed_key: &'a [u8],
    pub serial: &'a str,
    pub not_after: DateTime<Utc>,
    pub renew_after: DateTime<Utc>,
}

const COLUMNS: &str = "id, names, status, issued_names, chain_pem, serial, not_after, issued_at,
    renew_after, last_error, needs_reload";

fn names_of(r: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<String>> {
    let raw: Option<String> = r.get(idx)?;
    match raw {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        }),
    }
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<BundleRow> {
    let status: String = r.get(2)?;
    Ok(BundleRow {
        id: r.get(0)?,
        names: names_of(r, 1)?,
        status: BundleStatus::parse(&status).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.0.into())
        })?,
        issued_names: names_of(r, 3)?,
        chain_pem: r.get(4)?,
        serial: r.get(5)?,
        not_after: r.get(6)?,
        issued_at: r.get(7)?,
        renew_after: r.get(8)?,
        last_error: r.get(9)?,
        needs_reload: r.get(10)?,
    })
}

fn json(names: &[String]) -> String {
    serde_json::Value::from(names.to_vec()).to_string()
}

/// Every bundle, in the order their ids sort (`admin`, `mail-1`, …).
pub fn list(conn: &Connection) -> Result<Vec<BundleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM certificates ORDER BY length(id), id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records what bundle `id` should cover; a new bundle starts pending.
pub fn set_names(conn: &Connection, id: &str, names: &[String], now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO certificates (id, names, status, created_at, updated_at)
         VALUES (?1, ?2, 'pending', ?3, ?3)
         ON CONFLICT (id) DO UPDATE SET names = excluded.names, updated_at = excluded.updated_at
         WHERE names <> excluded.names",
        params![id, json(names), now],
    )?;
    Ok(())
}

/// Keeps a newly issued certificate, marked to be reloaded.
pub fn set_issued(conn: &Connection, id: &str, i: &Issued<'_>, now: DateTime<Utc>) -> Result<()> {
    let changed = conn.execute(
        "UPDATE certificates SET status = 'valid', issued_names = ?2, chain_pem = ?3,
             private_key = ?4, serial = ?5, not_after = ?6, issued_at = ?7, renew_after = ?8,
             last_error = NULL, needs_reload = 1, updated_at = ?7
         WHERE id = ?1",
        params![
            id,
            json(i.names),
            i.chain_pem,
            i.sealed_key,
            i.serial,
            i.not_after,
            now,
            i.renew_after
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("certificate bundle"));
    }
    Ok(())
}

/// Records a failed order; the certificate issued before stays.
pub fn set_failed(conn: &Connection, id: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE certificates SET status = 'failed', last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, error, now],
    )?;
    Ok(())
}

/// KumoMTA and Dovecot were told of bundle `id`'s certificate.
pub fn set_reloaded(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "UPDATE certificates SET needs_reload = 0 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Bundle `id`'s certificate was written to tls_dir again; tell the
/// services.
pub fn mark_reload(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "UPDATE certificates SET needs_reload = 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// The sealed private key of bundle `id`'s certificate.
pub fn sealed_key(conn: &Connection, id: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT private_key FROM certificates WHERE id = ?1",
            [id],
            |r| r.get::<_, Option<Vec<u8>>>(0),
        )
        .optional()?
        .flatten())
}
