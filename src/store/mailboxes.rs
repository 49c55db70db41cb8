//! The `mailboxes` and `suppressions` tables.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, StoreError, unique_or, uuid_at};
use crate::inboxes::datasource::Entry;

#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub daily_limit: u32,
    pub emails_sent_today: u32,
    pub last_reset_date: Option<NaiveDate>,
    pub health_score: f64,
    pub status: String,
    pub total_sent: i64,
    pub delivered: i64,
    pub bounced_hard: i64,
    pub bounced_soft: i64,
    pub complaints: i64,
    pub deferrals: i64,
    /// Logins refused for this address (KumoMTA's Rejection records).
    pub refused_logins: i64,
    /// Messages KumoMTA refused in this mailbox's sessions.
    pub refused_messages: i64,
    /// Reports naming this mailbox that matched nothing it sent; they
    /// changed no other counter and suppressed nobody.
    pub unmatched_reports: i64,
    pub last_send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "m.id, m.domain_id, m.user_id, m.username || '@' || d.domain_name, m.username,
    m.first_name, m.last_name, m.daily_limit, m.emails_sent_today, m.last_reset_date,
    m.health_score, m.status, m.total_sent, m.delivered, m.bounced_hard, m.bounced_soft,
    m.complaints, m.deferrals, m.last_send_at, m.created_at, m.updated_at,
    m.refused_logins, m.refused_messages, m.unmatched_reports";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Mailbox> {
    let reset: Option<String> = r.get(9)?;
    Ok(Mailbox {
        id: uuid_at(r, 0)?,
        domain_id: uuid_at(r, 1)?,
        user_id: uuid_at(r, 2)?,
        email: r.get(3)?,
        username: r.get(4)?,
        first_name: r.get(5)?,
        last_name: r.get(6)?,
        daily_limit: r.get(7)?,
        emails_sent_today: r.get(8)?,
        last_reset_date: reset.and_then(|d| d.parse().ok()),
        health_score: r.get(10)?,
        status: r.get(11)?,
        total_sent: r.get(12)?,
        delivered: r.get(13)?,
        bounced_hard: r.get(14)?,
        bounced_soft: r.get(15)?,
        complaints: r.get(16)?,
        deferrals: r.get(17)?,
        last_send_at: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        refused_logins: r.get(21)?,
        refused_messages: r.get(22)?,
        unmatched_reports: r.get(23)?,
    })
}

pub struct NewMailbox {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub password_sealed: Vec<u8>,
    pub daily_limit: u32,
    pub status: &'static str,
}

/// Inserts every mailbox or none (the caller's transaction).
pub fn insert_many(conn: &Connection, new: &[NewMailbox], now: DateTime<Utc>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO mailboxes (id, domain_id, user_id, username, first_name, last_name,
            password_hash, password_sealed, daily_limit, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?;
    for m in new {
        stmt.execute(params![
            m.id.to_string(),
            m.domain_id.to_string(),
            m.user_id.to_string(),
            m.username,
            m.first_name,
            m.last_name,
            m.password_hash,
            m.password_sealed,
            m.daily_limit,
            m.status,
            now
        ])
        .map_err(unique_or(|| {
            format!("the mailbox {} already exists on this domain", m.username)
        }))?;
    }
    Ok(())
}

pub fn usernames(conn: &Connection, domain_id: Uuid) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT username FROM mailboxes WHERE domain_id = ?1")?;
    let rows = stmt.query_map([domain_id.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: Uuid, scope: Option<Uuid>) -> Result<Option<Mailbox>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM mailboxes m JOIN domains d ON d.id = m.domain_id
         WHERE m.id = ?1 AND (?2 IS NULL OR m.user_id = ?2)"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            params![id.to_string(), scope.map(|s| s.to_string())],
            from_row,
        )
        .optional()?)
}

pub struct Filter {
    pub scope: Option<Uuid>,
    pub domain_id: Option<Uuid>,
    pub status: Option<String>,
    /// Part of the address or name, matched case-insensitively.
    pub search: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One page, ordered by email; also the total matching.
pub fn list(conn: &Connection, f: &Filter) -> Result<(Vec<Mailbox>, i64)> {
    let filter = "FROM mailboxes m JOIN domains d ON d.id = m.domain_id
         WHERE (?1 IS NULL OR m.user_id = ?1) AND (?2 IS NULL OR m.domain_id = ?2)
           AND (?3 IS NULL OR m.status = ?3)
           AND (?4 IS NULL OR instr(lower(m.username || '@' || d.domain_name || ' '
                || m.first_name || ' ' || m.last_name), lower(?4)) > 0)";
    let args = params![
        f.scope.map(|s| s.to_string()),
        f.domain_id.map(|d| d.to_string()),
        f.status,
        f.search
    ];
    let total = conn.query_row(&format!("SELECT count(*) {filter}"), args, |r| r.get(0))?;
    let sql =
        format!("SELECT {COLUMNS} {filter} ORDER BY d.domain_name, m.username LIMIT ?5 OFFSET ?6");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            f.scope.map(|s| s.to_string()),
            f.domain_id.map(|d| d.to_string()),
            f.status,
            f.search,
            f.limit,
            f.offset
        ],
        from_row,
    )?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

#[derive(Default)]
pub struct Changes {
    pub daily_limit: Option<u32>,
    pub status: Option<&'static str>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password: Option<(String, Vec<u8>)>,
}

pub fn update(conn: &Connection, id: Uuid, c: &Changes, now: DateTime<Utc>) -> Result<()> {
    let (hash, sealed) = match &c.password {
        Some((h, s)) => (Some(h.as_str()), Some(s.as_slice())),
        None => (None, None),
    };
    let n = conn.execute(
        "UPDATE mailboxes SET daily_limit = coalesce(?2, daily_limit),
            status = coalesce(?3, status), first_name = coalesce(?4, first_name),
            last_name = coalesce(?5, last_name), password_hash = coalesce(?6, password_hash),
            password_sealed = coalesce(?7, password_sealed), updated_at = ?8
         WHERE id = ?1",
        params![
            id.to_string(),
            c.daily_limit,
            c.status,
            c.first_name,
            c.last_name,
            hash,
            sealed,
            now
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("mailbox"));
    }
    Ok(())
}

pub fn delete(conn: &Connection, id: Uuid) -> Result<()> {
    conn.execute("DELETE FROM mailboxes WHERE id = ?1", [id.to_string()])?;
    Ok(())
}

/// Only mailboxes whose owner is enabled have an entry; the join on
/// domains leaves out those of a removed domain.
const ENTRY_SQL: &str = "SELECT m.id, m.user_id, m.domain_id, d.domain_name, m.username,
    m.password_hash, m.daily_limit, m.status
    FROM mailboxes m JOIN domains d ON d.id = m.domain_id JOIN users u ON u.id = m.user_id
    WHERE u.disabled_at IS NULL";

fn entry_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        mailbox_id: uuid_at(r, 0)?,
        user_id: uuid_at(r, 1)?,
        domain_id: uuid_at(r, 2)?,
        domain: r.get(3)?,
        username: r.get(4)?,
        password_hash: r.get(5)?,
        daily_limit: r.get(6)?,
        status: r.get(7)?,
    })
}

/// Which mailboxes' datasource entries to read.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Ids(&'a [Uuid]),
    /// (domain name, username)
    Address(&'a str, &'a str),
    Domain(&'a str),
    User(Uuid),
}

/// The datasource entries in `scope`: what may log in and send.
pub fn entries(conn: &Connection, scope: Scope<'_>) -> Result<Vec<Entry>> {
    let query = |clause: &str, args: &[String]| -> Result<Vec<Entry>> {
        let mut stmt = conn.prepare_cached(&format!("{ENTRY_SQL}{clause}"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), entry_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let lower = str::to_ascii_lowercase;
    match scope {
        Scope::All => query("", &[]),
        Scope::Domain(name) => query(" AND d.domain_name = ?1", &[lower(name)]),
        Scope::User(id) => query(" AND m.user_id = ?1", &[id.to_string()]),
        Scope::Address(domain, username) => query(
            " AND d.domain_name = ?1 AND m.username = ?2",
            &[lower(domain), lower(username)],
        ),
        Scope::Ids(ids) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(query(" AND m.id = ?1", &[id.to_string()])?);
            }
            Ok(out)
        }
    }
}

/// The datasource keys of these mailboxes, whether or not they may log in.
pub fn keys_of(conn: &Connection, ids: &[Uuid]) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.domain_name, m.username FROM mailboxes m JOIN domains d ON d.id = m.domain_id
         WHERE m.id = ?1",
    )?;
    let mut keys = std::collections::HashSet::with_capacity(ids.len());
    for id in ids {
        let found = stmt
            .query_row([id.to_string()], |r| {
                Ok(crate::inboxes::datasource::key(
                    &r.get::<_, String>(0)?,
                    &r.get::<_, String>(1)?,
                ))
            })
            .optional()?;
        keys.extend(found);
    }
    Ok(keys)
}

pub fn sealed_password(conn: &Connection, id: Uuid) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT password_sealed FROM mailboxes WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Counts one campaign send for `id` on `today` if its daily limit, and
/// `cap` when given (the slow ramp of a warming mailbox), allow it.
/// Returns `Some(remaining)` under the lower of the two when counted,
/// `None` when that is reached. The reset and the check happen in one
/// statement, so concurrent sends cannot overshoot the limit.
pub fn count_send(
    conn: &Connection,
    id: Uuid,
    today: NaiveDate,
    now: DateTime<Utc>,
    cap: Option<u32>,
) -> Result<Option<u32>> {
    let day = today.to_string();
    Ok(conn
        .prepare_cached(
            "UPDATE mailboxes SET
                emails_sent_today = CASE WHEN last_reset_date IS ?2 THEN emails_sent_today + 1 ELSE 1 END,
                last_reset_date = ?2, total_sent = total_sent + 1, last_send_at = ?3
             WHERE id = ?1
               AND (CASE WHEN last_reset_date IS ?2 THEN emails_sent_today ELSE 0 END)
                   < min(daily_limit, coalesce(?4, daily_limit))
             RETURNING min(daily_limit, coalesce(?4, daily_limit)) - emails_sent_today",
        )?
        .query_row(params![id.to_string(), day, now, cap], |r| r.get(0))
        .optional()?)
}

/// Counts one warmup send for `id` on `today` in `warmup_sent_today`,
/// reset on a new day as [`count_send`] resets its count. Warmup mail has
/// no daily limit here (the engine's ramp plans it) and never touches
/// `emails_sent_today`; it is mail the mailbox sent, so `total_sent`
/// counts it, as the bounces and deliveries of it count. Returns the
/// day's warmup count, or `None` when the mailbox does not exist.
pub fn count_warmup_send(
    conn: &Connection,
    id: Uuid,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Option<u32>> {
    Ok(conn
        .prepare_cached(
            "UPDATE mailboxes SET
                warmup_sent_today = CASE WHEN warmup_reset_date IS ?2 THEN warmup_sent_today + 1 ELSE 1 END,
                warmup_reset_date = ?2, total_sent = total_sent + 1, last_send_at = ?3
             WHERE id = ?1
             RETURNING warmup_sent_today",
        )?
        .query_row(params![id.to_string(), today.to_string(), now], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Gives back one warmup send counted for `id` on `today`, never below
/// zero.
pub fn release_warmup_send(conn: &Connection, id: Uuid, today: NaiveDate) -> Result<()> {
    conn.prepare_cached(
        "UPDATE mailboxes SET warmup_sent_today = warmup_sent_today - 1,
            total_sent = max(total_sent - 1, 0)
         WHERE id = ?1 AND warmup_reset_date IS ?2 AND warmup_sent_today > 0",
    )?
    .execute(params![id.to_string(), today.to_string()])?;
    Ok(())
}

/// Warmup sends counted today (0 when the last count was on another day).
pub fn warmup_sent_today(conn: &Connection, id: Uuid, today: NaiveDate) -> Result<u32> {
    counted_on(conn, id, today, WARMUP)
}

/// Gives back one send counted for `id` on `today` (a later step refused
/// the message), never below zero, to the mailbox and to its owner's day
/// count.
pub fn release_send(conn: &Connection, id: Uuid, today: NaiveDate) -> Result<()> {
    let day = today.to_string();
    let owner = conn
        .prepare_cached(
            "UPDATE mailboxes SET emails_sent_today = emails_sent_today - 1,
                total_sent = max(total_sent - 1, 0)
             WHERE id = ?1 AND last_reset_date IS ?2 AND emails_sent_today > 0
             RETURNING user_id",
        )?
        .query_row(params![id.to_string(), day], |r| uuid_at(r, 0))
        .optional()?;
    if let Some(owner) = owner {
        super::tiers::release_send(conn, owner, today)?;
    }
    Ok(())
}

/// Sends counted today (0 when the last count was on another day).
pub fn sent_today(conn: &Connection, id: Uuid, today: NaiveDate) -> Result<u32> {
    counted_on(conn, id, today, CAMPAIGN)
}

/// A mailbox's daily counters: the count and the day it was last reset.
type Counter = (&'static str, &'static str);
const CAMPAIGN: Counter = ("emails_sent_today", "last_reset_date");
const WARMUP: Counter = ("warmup_sent_today", "warmup_reset_date");

/// Sends counted on `day` by `counter` (0 for a mailbox that does not
/// exist).
fn counted_on(conn: &Connection, id: Uuid, day: NaiveDate, (count, reset): Counter) -> Result<u32> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT CASE WHEN {reset} IS ?2 THEN {count} ELSE 0 END FROM mailboxes WHERE id = ?1"
        ))?
        .query_row(params![id.to_string(), day.to_string()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The mailbox with this address, if any.
pub fn by_address(conn: &Connection, address: &str) -> Result<Option<Uuid>> {
    let address = address.trim().to_ascii_lowercase();
    let Some((local, domain)) = address.split_once('@') else {
        return Ok(None);
    };
    Ok(conn
        .prepare_cached(
            "SELECT m.id FROM mailboxes m JOIN domains d ON d.id = m.domain_id
             WHERE d.domain_name = ?1 AND m.username = ?2",
        )?
        .query_row(params![domain, local], |r| uuid_at(r, 0))
        .optional()?)
}

/// The user a mailbox belongs to.
pub fn owner(conn: &Connection, id: Uuid) -> Result<Option<Uuid>> {
    Ok(conn
        .query_row(
            "SELECT user_id FROM mailboxes WHERE id = ?1",
            [id.to_string()],
            |r| uuid_at(r, 0),
        )
        .optional()?)
}

pub fn is_suppressed(conn: &Connection, user_id: Uuid, address: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM suppressions WHERE user_id = ?1 AND address = ?2)",
        )?
        .query_row(
            params![user_id.to_string(), address.to_ascii_lowercase()],
            |r| r.get(0),
        )?)
}

pub fn suppress(
    conn: &Connection,
    user_id: Uuid,
    address: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO suppressions (user_id, address, reason, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, address) DO NOTHING",
        params![
            user_id.to_string(),
            address.to_ascii_lowercase(),
            reason,
            now
        ],
    )?;
    Ok(())
}
