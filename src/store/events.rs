//! The `mail_events` table and the mailbox counters it feeds.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{Result, mailboxes};
use crate::kumo::events::{BounceClass, EventKind, MailEvent};

/// Stores one event unless a record with its key was stored before, and
/// updates the counters of its mailbox. Returns whether it was new.
pub fn record(conn: &Connection, ev: &MailEvent, now: DateTime<Utc>) -> Result<bool> {
    let mailbox = match ev
        .mailbox_id
        .as_deref()
        .and_then(|m| Uuid::parse_str(m).ok())
    {
        Some(id) => Some(id),
        None => match &ev.sender {
            Some(sender) => mailboxes::by_address(conn, sender)?,
            None => None,
        },
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
