//! The `audit_logs` table.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use uuid::Uuid;

use crate::types::ParseError;

use super::{Result, uuid_at};

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: String,
    pub metadata: serde_json::Value,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AuditRow {
    /// For a row that counts repeated events (refused mailbox logins): how
    /// many, and when the last was, as the audit page shows it.
    pub fn repeated(&self) -> Option<String> {
        let count = self.metadata.get("count")?.as_u64()?;
        let last = self.metadata.get("last_seen").and_then(|l| l.as_str());
        let last = last
            .and_then(|l| DateTime::parse_from_rfc3339(l).ok())
            .map(|l| l.format(", last %H:%M:%S").to_string());
        Some(format!("×{count}{}", last.unwrap_or_default()))
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let user: Option<String> = row.get(1)?;
    let metadata: String = row.get(6)?;
    Ok(AuditRow {
        id: uuid_at(row, 0)?,
        user_id: user.and_then(|u| Uuid::parse_str(&u).ok()),
        action: row.get(2)?,
        resource_type: row.get(3)?,
        resource_id: row.get(4)?,
        status: row.get(5)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        client_ip: row.get(7)?,
        request_id: row.get(8)?,
        created_at: row.get(9)?,
    })
}

pub fn insert(conn: &Connection, row: &AuditRow) -> Result<()> {
    // No key never conflicts: NULLs are distinct in a unique index.
    upsert(conn, row, None)
}

/// One more occurrence of the aggregate `key`: the first makes `row`, each
/// later one adds its metadata's `count` and `throttled` to the stored
/// row's and takes its other metadata fields (e.g. `last_seen`). The row
/// keeps its id and `created_at` (the first occurrence), so paging by
/// (created_at, id) neither skips nor repeats it while it grows.
pub fn add_to_aggregate(conn: &Connection, row: &AuditRow, key: &str) -> Result<()> {
    upsert(conn, row, Some(key))
}

fn upsert(conn: &Connection, row: &AuditRow, key: Option<&str>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, status,
                                 metadata, client_ip, request_id, created_at, aggregate_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (aggregate_key) WHERE aggregate_key IS NOT NULL DO UPDATE SET
             metadata = json_set(json_patch(audit_logs.metadata, excluded.metadata),
                 '$.count', coalesce(audit_logs.metadata ->> '$.count', 0)
                            + coalesce(excluded.metadata ->> '$.count', 0),
                 '$.throttled', coalesce(audit_logs.metadata ->> '$.throttled', 0)
                                + coalesce(excluded.metadata ->> '$.throttled', 0))",
    )?
    .execute(params![
        row.id.to_string(),
        row.user_id.map(|u| u.to_string()),
        row.action,
        row.resource_type,
        row.resource_id,
        row.status,
        row.metadata.to_string(),
        row.client_ip,
        row.request_id,
        row.created_at,
        key
    ])?;
    Ok(())
}

/// Newest first, `limit` rows that come after the row `before` in that
/// order; only `owner`'s rows unless `owner` is `None`. Rows written in the
/// same instant are ordered by id, so pages never skip or repeat a row.
/// Which rows a page holds besides its owner and position: `action`
/// matches any part of the action text, ignoring case.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub action: Option<String>,
    pub success: Option<bool>,
}

impl Filter {
    /// From the text people type: blank means "any"; `status` is
    /// `success` or `failure`.
    pub fn parse(
        action: Option<&str>,
        status: Option<&str>,
    ) -> std::result::Result<Self, ParseError> {
        fn blank(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        let success = match blank(status) {
            None => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(other) => {
                return Err(ParseError(format!(
                    "'{other}' is not a result; use success or failure"
                )));
            }
        };
        Ok(Self {
            action: blank(action).map(str::to_owned),
            success,
        })
    }
}

pub fn page(
    conn: &Connection,
    owner: Option<Uuid>,
    before: Option<Uuid>,
    filter: &Filter,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    // instr, not LIKE: the searched text may hold % or _.
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, action, resource_type, resource_id, status, metadata,
                client_ip, request_id, created_at
         FROM audit_logs
         WHERE (?1 IS NULL OR user_id = ?1)
           AND (?2 IS NULL OR (created_at, id) <
                (SELECT created_at, id FROM audit_logs WHERE id = ?2))
           AND (?4 IS NULL OR instr(lower(action), lower(?4)) > 0)
           AND (?5 IS NULL OR status = ?5)
         ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let status = filter
        .success
        .map(|ok| if ok { "success" } else { "failure" });
    let rows = stmt.query_map(
        params![
            owner.map(|o| o.to_string()),
            before.map(|b| b.to_string()),
            limit,
            filter.action,
            status
        ],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
