//! The `mail_events` table and the mailbox counters it feeds, and the
//! records kept aside because they could not be read.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{Result, mailboxes};
use crate::kumo::events::{BounceClass, EventKind, MailEvent, Quarantined, Refusal};

/// Stores one event unless a record with its key was stored before, and
/// updates the counters of its mailbox. Returns whether it was new.
pub fn record(conn: &Connection, ev: &MailEvent, now: DateTime<Utc>) -> Result<bool> {
    let from_meta = ev
        .mailbox_id
        .as_deref()
        .and_then(|m| Uuid::parse_str(m).ok());
    let mailbox = match (&ev.refusal, from_meta, &ev.sender) {
        (Some(Refusal::Login { username }), _, _) => mailboxes::by_address(conn, username)?,
        (_, Some(id), _) => Some(id),
        // A refused command's envelope sender is whatever the client
        // claimed: on port 25 a stranger may claim any of our addresses.
        _ if ev.kind == EventKind::Rejection => None,
        (_, None, Some(sender)) => mailboxes::by_address(conn, sender)?,
        (_, None, None) => None,
    };
    let inserted =
        conn.prepare_cached(
            "INSERT INTO mail_events (idempotency_key, kind, message_id, mailbox_id, sender,
                recipient, response_code, response_text, bounce, complaint, at, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![
            ev.idempotency_key,
            ev.kind.as_str(),
            ev.message_id,
            mailbox.map(|m| m.to_string()),
            ev.sender,
            ev.recipient,
            ev.response_code,
            ev.response_text,
            ev.bounce.map(BounceClass::as_str),
            ev.complaint,
            ev.at,
            now
        ])? == 1;
    let Some(id) = mailbox.filter(|_| inserted) else {
        return Ok(inserted);
    };
    let column = match (&ev.kind, ev.bounce) {
        (EventKind::Rejection, _) => match ev.refusal {
            Some(Refusal::Login { .. }) => Some("refused_logins"),
            Some(Refusal::Message) => Some("refused_messages"),
            None => None,
        },
        (EventKind::Delivery, _) => Some("delivered"),
        (_, Some(BounceClass::Hard)) => Some("bounced_hard"),
        (EventKind::TransientFailure, _) => Some("deferrals"),
        (_, Some(BounceClass::Soft)) => Some("bounced_soft"),
        (EventKind::Feedback, _) if ev.complaint => Some("complaints"),
        _ => None,
    };
    if let Some(column) = column {
        // `column` is one of the constants above, never outside input.
        conn.execute(
            &format!("UPDATE mailboxes SET {column} = {column} + 1 WHERE id = ?1"),
            [id.to_string()],
        )?;
    }
    // Never mail again an address that does not exist or that complained.
    let reason = match (ev.bounce, ev.complaint) {
        (_, true) => Some("complaint"),
        (Some(BounceClass::Hard), _) => Some("hard bounce"),
        _ => None,
    };
    if let (Some(reason), Some(recipient)) = (reason, &ev.recipient)
        && let Some(owner) = mailboxes::owner(conn, id)?
    {
        mailboxes::suppress(conn, owner, recipient, reason, now)?;
    }
    Ok(true)
}

/// Keeps unreadable records aside; one posted again adds nothing. Returns
/// how many were new.
pub fn quarantine(conn: &Connection, items: &[Quarantined], now: DateTime<Utc>) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO quarantined_events (digest, error, raw, received_at)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (digest) DO NOTHING",
    )?;
    let mut added = 0;
    for q in items {
        added += stmt.execute(params![q.digest(), q.error, q.raw, now])?;
    }
    Ok(added)
}

/// How many records are kept aside.
pub fn quarantined_count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM quarantined_events", [], |r| r.get(0))?)
}
