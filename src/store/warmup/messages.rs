//! `warmup_messages`: every warmup message from its plan to its placement.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::date_at;
use crate::store::{Result, uuid_at};
use crate::warmup::{MemberId, Placement};

#[derive(Debug, Clone)]
pub struct Message {
    pub id: Uuid,
    pub message_id: Option<String>,
    pub day: NaiveDate,
    pub counts_for: Option<Uuid>,
    pub sender: MemberId,
    pub recipient: MemberId,
    pub sender_email: String,
    pub recipient_email: String,
    pub reply_to: Option<Uuid>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub scheduled_at: DateTime<Utc>,
    pub status: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub engage_at: Option<DateTime<Utc>>,
    pub placement: Option<Placement>,
    pub engaged_at: Option<DateTime<Utc>>,
    pub replied: bool,
}

const COLUMNS: &str = "id, message_id, day, counts_for, sender_mailbox, sender_peer,
    recipient_mailbox, recipient_peer, sender_email, recipient_email, reply_to, subject,
    scheduled_at, status, sent_at, error, engage_at, placement, engaged_at, replied, body";

pub(super) fn opt_uuid(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let v: Option<String> = r.get(i)?;
    Ok(v.and_then(|s| Uuid::parse_str(&s).ok()))
}

fn member(r: &Row<'_>, mailbox: usize) -> rusqlite::Result<MemberId> {
    Ok(match opt_uuid(r, mailbox)? {
        Some(m) => MemberId::Mailbox(m),
        None => MemberId::Peer(uuid_at(r, mailbox + 1)?),
    })
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let placement: Option<String> = r.get(17)?;
    Ok(Message {
        id: uuid_at(r, 0)?,
        message_id: r.get(1)?,
        day: date_at(r, 2)?,
        counts_for: opt_uuid(r, 3)?,
        sender: member(r, 4)?,
        recipient: member(r, 6)?,
        sender_email: r.get(8)?,
        recipient_email: r.get(9)?,
        reply_to: opt_uuid(r, 10)?,
        subject: r.get(11)?,
        scheduled_at: r.get(12)?,
        status: r.get(13)?,
        sent_at: r.get(14)?,
        error: r.get(15)?,
        engage_at: r.get(16)?,
        placement: placement.as_deref().and_then(Placement::parse),
        engaged_at: r.get(18)?,
        replied: r.get(19)?,
        body: r.get(20)?,
    })
}

fn split(m: MemberId) -> (Option<String>, Option<String>) {
    match m {
        MemberId::Mailbox(id) => (Some(id.to_string()), None),
        MemberId::Peer(id) => (None, Some(id.to_string())),
    }
}

pub struct NewMessage<'a> {
    pub id: Uuid,
    pub day: NaiveDate,
    pub counts_for: Option<Uuid>,
    pub sender: MemberId,
    pub recipient: MemberId,
    pub sender_email: &'a str,
    pub recipient_email: &'a str,
    pub reply_to: Option<Uuid>,
    pub scheduled_at: DateTime<Utc>,
}

pub fn insert(c: &Connection, m: &NewMessage<'_>, now: DateTime<Utc>) -> Result<()> {
    let (sm, sp) = split(m.sender);
    let (rm, rp) = split(m.recipient);
    c.execute(
        "INSERT INTO warmup_messages
           (id, day, counts_for, sender_mailbox, sender_peer, recipient_mailbox, recipient_peer,
            sender_email, recipient_email, reply_to, scheduled_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            m.id.to_string(),
            m.day.to_string(),
            m.counts_for.map(|u| u.to_string()),
            sm,
            sp,
            rm,
            rp,
            m.sender_email,
            m.recipient_email,
            m.reply_to.map(|u| u.to_string()),
            m.scheduled_at,
            now
        ],
    )?;
    Ok(())
}

pub fn get(c: &Connection, id: Uuid) -> Result<Option<Message>> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM warmup_messages WHERE id = ?1"),
        [id.to_string()],
        from_row,
    )
    .optional()?)
}

/// The messages a mailbox's day counts, in send order.
pub fn of_day(c: &Connection, counts_for: Uuid, day: NaiveDate) -> Result<Vec<Message>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM warmup_messages WHERE counts_for = ?1 AND day = ?2
         ORDER BY scheduled_at, id"
    ))?;
    let rows = stmt.query_map(params![counts_for.to_string(), day.to_string()], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A sender → recipient message (emails), planned or sent.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub day: NaiveDate,
}

/// The exchanges from `since` on: what the pairing rules look back at.
pub fn exchanges_since(c: &Connection, since: DateTime<Utc>) -> Result<Vec<Exchange>> {
    let mut stmt = c.prepare_cached(
        "SELECT sender_email, recipient_email, coalesce(sent_at, scheduled_at), day
         FROM warmup_messages
         WHERE status IN ('planned', 'sending', 'sent') AND coalesce(sent_at, scheduled_at) >= ?1",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok(Exchange {
            from: r.get(0)?,
            to: r.get(1)?,
            at: r.get(2)?,
            day: date_at(r, 3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// planned → sending, with the composed Message-ID and subject; false
/// when the row was not planned any more (another run took it).
pub fn start_sending(
    c: &Connection,
    id: Uuid,
    message_id: &str,
    subject: &str,
    body: &str,
) -> Result<bool> {
    Ok(c.execute(
        "UPDATE warmup_messages SET status = 'sending', message_id = ?2, subject = ?3, body = ?4
         WHERE id = ?1 AND status = 'planned'",
        params![id.to_string(), message_id, subject, body],
    )? == 1)
}

/// Messages left `sending` by a process that stopped in the middle of
/// their SMTP session, before `before`: whether the server took them is
/// unknown, so they are never submitted again; they become `sent` and the
/// receiving side looks for them. Returns their ids.
pub fn interrupted(c: &Connection, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
    let mut stmt = c.prepare_cached(
        "UPDATE warmup_messages
         SET status = 'sent', sent_at = scheduled_at, engage_at = ?2,
             error = 'the server stopped during its submission; looked for, never sent again'
         WHERE status = 'sending' AND scheduled_at < ?1
         RETURNING id",
    )?;
    let rows = stmt.query_map(params![before, now], |r| uuid_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The server refused for now: planned again, to be retried.
pub fn back_to_planned(c: &Connection, id: Uuid) -> Result<()> {
    c.execute(
        "UPDATE warmup_messages SET status = 'planned', message_id = NULL
         WHERE id = ?1 AND status = 'sending'",
        [id.to_string()],
    )?;
    Ok(())
}

pub fn sent(c: &Connection, id: Uuid, at: DateTime<Utc>, engage_at: DateTime<Utc>) -> Result<()> {
    c.execute(
        "UPDATE warmup_messages SET status = 'sent', sent_at = ?2, engage_at = ?3
         WHERE id = ?1 AND status = 'sending'",
        params![id.to_string(), at, engage_at],
    )?;
    Ok(())
}

/// Never sent: `skipped` (the plan shrank, a member left) or `failed`.
pub fn end(c: &Connection, id: Uuid, status: &str, error: &str) -> Result<()> {
    c.execute(
        "UPDATE warmup_messages SET status = ?2, error = ?3
         WHERE id = ?1 AND status IN ('planned', 'sending', 'sent')",
        params![id.to_string(), status, error],
    )?;
    Ok(())
}

/// What the receiving side found, recorded before it touches the message.
pub fn placed(c: &Connection, id: Uuid, placement: Placement, at: DateTime<Utc>) -> Result<bool> {
    Ok(c.execute(
        "UPDATE warmup_messages SET placement = ?2, engaged_at = ?3
         WHERE id = ?1 AND placement IS NULL",
        params![id.to_string(), placement.as_str(), at],
    )? == 1)
}

pub fn set_engaged(
    c: &Connection,
    id: Uuid,
    rescued: bool,
    flagged: bool,
    replied: bool,
) -> Result<()> {
    c.execute(
        "UPDATE warmup_messages SET rescued = ?2, flagged = ?3, replied = ?4 WHERE id = ?1",
        params![id.to_string(), rescued, flagged, replied],
    )?;
    Ok(())
}

/// Planned messages of a day beyond its first `keep` (in send order) are
/// skipped with `why`; returns how many.
pub fn skip_beyond(
    c: &Connection,
    counts_for: Uuid,
    day: NaiveDate,
    keep: u32,
    why: &str,
) -> Result<usize> {
    Ok(c.execute(
        "UPDATE warmup_messages SET status = 'skipped', error = ?4
         WHERE id IN (
           SELECT id FROM warmup_messages
           WHERE counts_for = ?1 AND day = ?2 AND reply_to IS NULL
           ORDER BY scheduled_at, id LIMIT -1 OFFSET ?3)
         AND status = 'planned'",
        params![counts_for.to_string(), day.to_string(), keep, why],
    )?)
}

/// Filed warmup mail at `recipient` engaged before `before`, not yet
/// expunged: the Warmup folder's retention.
pub fn expired_at(
    c: &Connection,
    recipient: MemberId,
    before: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>> {
    let (m, p) = split(recipient);
    let mut stmt = c.prepare_cached(
        "SELECT id, message_id FROM warmup_messages
         WHERE (recipient_mailbox IS ?1 AND recipient_peer IS ?2)
           AND engaged_at < ?3 AND expunged = 0 AND message_id IS NOT NULL
           AND placement IN ('inbox', 'spam', 'other')
         LIMIT 200",
    )?;
    let rows = stmt.query_map(params![m, p, before], |r| Ok((uuid_at(r, 0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn mark_expunged(c: &Connection, ids: &[Uuid]) -> Result<()> {
    let mut stmt = c.prepare_cached("UPDATE warmup_messages SET expunged = 1 WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id.to_string()])?;
    }
    Ok(())
}
