//! The `domains`, `domain_records` and `dkim_keys` tables.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, StoreError, enum_at, unique_or, uuid_at};
use crate::domains::model::{DnsMode, DomainStatus, RecordState};
use crate::domains::plan::{DmarcPolicy, PlannedRecord, Purpose, RecordType};

#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub id: Uuid,
    pub user_id: Uuid,
    pub domain_name: String,
    pub status: DomainStatus,
    pub dns_mode: DnsMode,
    pub cloudflare_zone_id: Option<String>,
    pub cloudflare_account_id: Option<String>,
    #[serde(skip)]
    pub has_own_token: bool,
    pub zone_name_servers: Vec<String>,
    pub tracking_domain: Option<String>,
    pub dmarc_policy: DmarcPolicy,
    /// The public address its mail leaves from; `None` is the server's
    /// default.
    pub egress_ip: Option<IpAddr>,
    pub last_error: Option<String>,
    pub checks_since: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, domain_name, status, dns_mode, cloudflare_zone_id,
    cloudflare_account_id, cloudflare_api_token IS NOT NULL, zone_name_servers, tracking_domain,
    dmarc_policy, last_error, checks_since, verified_at, activated_at, created_at, updated_at,
    egress_ip";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Domain> {
    let ns: String = r.get(8)?;
    Ok(Domain {
        id: uuid_at(r, 0)?,
        user_id: uuid_at(r, 1)?,
        domain_name: r.get(2)?,
        status: enum_at(r, 3, DomainStatus::parse)?,
        dns_mode: enum_at(r, 4, DnsMode::parse)?,
        cloudflare_zone_id: r.get(5)?,
        cloudflare_account_id: r.get(6)?,
        has_own_token: r.get(7)?,
        zone_name_servers: serde_json::from_str(&ns).unwrap_or_default(),
        tracking_domain: r.get(9)?,
        dmarc_policy: enum_at(r, 10, DmarcPolicy::parse)?,
        last_error: r.get(11)?,
        checks_since: r.get(12)?,
        verified_at: r.get(13)?,
        activated_at: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        egress_ip: match r.get_ref(17)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(ip_at(r, 17)?),
        },
    })
}

pub struct NewDomain<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub domain_name: &'a str,
    pub status: DomainStatus,
    pub dns_mode: DnsMode,
    pub cloudflare_zone_id: Option<&'a str>,
    pub cloudflare_account_id: Option<&'a str>,
    pub sealed_token: Option<&'a [u8]>,
    pub tracking_domain: Option<&'a str>,
    pub spf_record: &'a str,
    pub dmarc_policy: DmarcPolicy,
}

pub fn insert(conn: &Connection, d: &NewDomain<'_>, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO domains (id, user_id, domain_name, status, dns_mode, cloudflare_zone_id,
            cloudflare_api_token, tracking_domain, spf_record, dmarc_policy, checks_since,
            created_at, updated_at, cloudflare_account_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?11, ?12)",
        params![
            d.id.to_string(),
            d.user_id.to_string(),
            d.domain_name,
            d.status.as_str(),
            d.dns_mode.as_str(),
            d.cloudflare_zone_id,
            d.sealed_token,
            d.tracking_domain,
            d.spf_record,
            d.dmarc_policy.as_str(),
            now,
            d.cloudflare_account_id
        ],
    )
    .map_err(unique_or(|| {
        format!(
            "{} is already added; each domain can be added once",
            d.domain_name
        )
    }))?;
    Ok(())
}

pub fn exists(conn: &Connection, domain_name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE domain_name = ?1)",
        [domain_name],
        |r| r.get(0),
    )?)
}

/// A domain visible to `scope` (everyone's when `None`).
pub fn get(conn: &Connection, id: Uuid, scope: Option<Uuid>) -> Result<Option<Domain>> {
    let sql =
        format!("SELECT {COLUMNS} FROM domains WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            params![id.to_string(), scope.map(|s| s.to_string())],
            from_row,
        )
        .optional()?)
}

pub fn by_name(conn: &Connection, name: &str, scope: Option<Uuid>) -> Result<Option<Domain>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM domains WHERE domain_name = ?1 AND (?2 IS NULL OR user_id = ?2)"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![name, scope.map(|s| s.to_string())], from_row)
        .optional()?)
}

pub fn list(conn: &Connection, scope: Option<Uuid>) -> Result<Vec<Domain>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM domains WHERE ?1 IS NULL OR user_id = ?1 ORDER BY domain_name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([scope.map(|s| s.to_string())], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Moves a domain to `status`; returns the status it had.
pub fn set_status(
    conn: &Connection,
    id: Uuid,
    status: DomainStatus,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DomainStatus> {
    let before: String = conn.query_row(
        "SELECT status FROM domains WHERE id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE domains SET status = ?2, last_error = ?3, updated_at = ?4,
            verified_at = CASE WHEN ?2 = 'active' THEN coalesce(verified_at, ?4) ELSE verified_at END,
            activated_at = CASE WHEN ?2 = 'active' THEN coalesce(activated_at, ?4) ELSE activated_at END
         WHERE id = ?1",
        params![id.to_string(), status.as_str(), last_error, now],
    )?;
    DomainStatus::parse(&before).map_err(|e| StoreError::Conflict(e.0))
}

pub fn set_last_error(
    conn: &Connection,
    id: Uuid,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE domains SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.to_string(), error, now],
    )?;
    Ok(())
}

pub fn set_zone(
    conn: &Connection,
    id: Uuid,
    zone_id: &str,
    account_id: Option<&str>,
    name_servers: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE domains SET cloudflare_zone_id = ?2, cloudflare_account_id = coalesce(?3, cloudflare_account_id),
            zone_name_servers = ?4, updated_at = ?5 WHERE id = ?1",
        params![
            id.to_string(),
            zone_id,
            account_id,
            serde_json::to_string(name_servers).unwrap_or_else(|_| "[]".into()),
            now
        ],
    )?;
    Ok(())
}

/// Restarts the 48-hour window of DNS checks.
pub fn restart_checks(conn: &Connection, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE domains SET checks_since = ?2, updated_at = ?2 WHERE id = ?1",
        params![id.to_string(), now],
    )?;
    Ok(())
}

pub fn set_policy(
    conn: &Connection,
    id: Uuid,
    dmarc: DmarcPolicy,
    tracking_domain: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE domains SET dmarc_policy = ?2, tracking_domain = ?3, updated_at = ?4 WHERE id = ?1",
        params![id.to_string(), dmarc.as_str(), tracking_domain, now],
    )?;
    Ok(())
}

pub fn sealed_token(conn: &Connection, id: Uuid) -> Result<Option<Vec<u8>>> {
    Ok(conn.query_row(
        "SELECT cloudflare_api_token FROM domains WHERE id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )?)
}

pub fn mailbox_count(conn: &Connection, id: Uuid) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM mailboxes WHERE domain_id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )?)
}

pub fn delete(conn: &Connection, id: Uuid) -> Result<()> {
    conn.execute("DELETE FROM domains WHERE id = ?1", [id.to_string()])?;
    Ok(())
}

/// Active domains still at `p=none` that became active before `cutoff`.
pub fn due_for_quarantine(conn: &Connection, cutoff: DateTime<Utc>) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM domains WHERE status = 'active' AND dmarc_policy = 'none'
            AND activated_at <= ?1",
    )?;
    let rows = stmt.query_map([cutoff], |r| uuid_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct DkimKey {
    pub id: Uuid,
    pub selector: String,
    pub public_key: String,
    #[serde(skip)]
    pub sealed_private_key: Vec<u8>,
}

pub fn insert_dkim_key(
    conn: &Connection,
    domain_id: Uuid,
    key: &DkimKey,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO dkim_keys (id, domain_id, selector, private_key, public_key, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6)",
        params![
            key.id.to_string(),
            domain_id.to_string(),
            key.selector,
            key.sealed_private_key,
            key.public_key,
            now
        ],
    )?;
    Ok(())
}

pub fn active_dkim_key(conn: &Connection, domain_id: Uuid) -> Result<Option<DkimKey>> {
    Ok(conn
        .query_row(
            "SELECT id, selector, public_key, private_key FROM dkim_keys
             WHERE domain_id = ?1 AND state = 'active' ORDER BY created_at DESC LIMIT 1",
            [domain_id.to_string()],
            |r| {
                Ok(DkimKey {
                    id: uuid_at(r, 0)?,
                    selector: r.get(1)?,
                    public_key: r.get(2)?,
                    sealed_private_key: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// One planned record with where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct RecordRow {
    #[serde(flatten)]
    pub record: PlannedRecord,
    pub status: RecordState,
    /// What DNS answered at the last check.
    pub observed: Vec<String>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// Replaces the plan of a domain; every record starts `pending`.
pub fn replace_records(conn: &Connection, domain_id: Uuid, plan: &[PlannedRecord]) -> Result<()> {
    conn.execute(
        "DELETE FROM domain_records WHERE domain_id = ?1",
        [domain_id.to_string()],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO domain_records (domain_id, position, purpose, type, name, content, priority)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (i, r) in plan.iter().enumerate() {
        stmt.execute(params![
            domain_id.to_string(),
            i as i64,
            r.purpose.as_str(),
            r.record_type.as_str(),
            r.name,
            r.content,
            r.priority
        ])?;
    }
    Ok(())
}

pub fn records(conn: &Connection, domain_id: Uuid) -> Result<Vec<RecordRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT purpose, type, name, content, priority, status, observed, checked_at
         FROM domain_records WHERE domain_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([domain_id.to_string()], |r| {
        let record = PlannedRecord {
            purpose: enum_at(r, 0, Purpose::parse)?,
            record_type: enum_at(r, 1, RecordType::parse)?,
            name: r.get(2)?,
            content: r.get(3)?,
            priority: r.get(4)?,
        };
        let observed: String = r.get(6)?;
        Ok(RecordRow {
            record,
            status: enum_at(r, 5, RecordState::parse)?,
            observed: serde_json::from_str(&observed).unwrap_or_default(),
            checked_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records the state of each record by position; `observed` is `None` when
/// DNS was not asked (e.g. just published).
pub fn set_record_states(
    conn: &Connection,
    domain_id: Uuid,
    states: &[(usize, RecordState, Option<Vec<String>>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE domain_records SET status = ?3,
            observed = coalesce(?4, observed),
            checked_at = CASE WHEN ?4 IS NULL THEN checked_at ELSE ?5 END
         WHERE domain_id = ?1 AND position = ?2",
    )?;
    for (pos, state, observed) in states {
        stmt.execute(params![
            domain_id.to_string(),
            *pos as i64,
            state.as_str(),
            observed
                .as_ref()
                .map(|o| serde_json::to_string(o).unwrap_or_else(|_| "[]".into())),
            now
        ])?;
    }
    Ok(())
}

/// Binds a domain's outgoing mail to one of the server's addresses, or
/// back to the default (`None`).
pub fn set_egress_ip(
    conn: &Connection,
    id: Uuid,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE domains SET egress_ip = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.to_string(), ip.map(|ip| ip.to_string()), now],
    )?;
    Ok(())
}

/// Every address some domain is bound to, each once.
pub fn egress_ips(conn: &Connection) -> Result<Vec<IpAddr>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT egress_ip FROM domains WHERE egress_ip IS NOT NULL ORDER BY egress_ip",
    )?;
    let rows = stmt.query_map([], |r| ip_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn ip_at(r: &Row<'_>, idx: usize) -> rusqlite::Result<IpAddr> {
    let text: String = r.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}
