//! The `mail_events` table and the mailbox counters it feeds, and the
//! records kept aside because they could not be read. Whether a report is
//! ours is decided in [`super::reports`].

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{Result, mailboxes, reports};
use crate::kumo::events::{BounceClass, EventKind, MailEvent, Quarantined, Reference, Refusal};

/// Stores one event unless a record with its key was stored before, and
/// updates the counters of its mailbox. Returns whether it was new.
///
/// A report (a Bounce, DSN, ARF complaint, any outcome of a queued message)
/// acts only when it matches a message the appliance sent to that
/// recipient ([`reports::sender_of`]), and then on the mailbox that sent
/// it, whatever the record claims. One that matches nothing is stored as
/// `unmatched` under the mailbox it names and acts on nothing else.
pub fn record(conn: &Connection, ev: &MailEvent, now: DateTime<Utc>) -> Result<bool> {
    let claimed = claimed_mailbox(conn, ev)?;
    let (mailbox, unmatched) = if ev.reference.is_report() {
        match reports::sender_of(conn, ev, now)? {
            Some(sender) => (Some(sender), false),
            None => (claimed, column(ev).is_some() || suppression(ev).is_some()),
        }
    } else {
        (claimed, false)
    };
    let inserted =
        conn.prepare_cached(
            "INSERT INTO mail_events (idempotency_key, kind, message_id, mailbox_id, sender,
                recipient, response_code, response_text, bounce, complaint, at, received_at,
                unmatched)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
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
            now,
            unmatched
        ])? == 1;
    let Some(id) = mailbox.filter(|_| inserted) else {
        return Ok(inserted);
    };
    if let Reference::Submitted { header_id } = &ev.reference {
        reports::remember_sent(conn, ev, id, header_id.as_deref(), now)?;
    }
    let column = if unmatched {
        Some("unmatched_reports")
    } else {
        column(ev)
    };
    if let Some(column) = column {
        // `column` is one of the constants here, never outside input.
        conn.execute(
            &format!("UPDATE mailboxes SET {column} = {column} + 1 WHERE id = ?1"),
            [id.to_string()],
        )?;
    }
    if let (Some(reason), Some(recipient), false) = (suppression(ev), &ev.recipient, unmatched)
        && let Some(owner) = mailboxes::owner(conn, id)?
    {
        mailboxes::suppress(conn, owner, recipient, reason, now)?;
    }
    Ok(true)
}

/// The mailbox a record names: the login a Rejection tried, the policy's
/// meta, else the envelope sender.
fn claimed_mailbox(conn: &Connection, ev: &MailEvent) -> Result<Option<Uuid>> {
    let from_meta = ev
        .mailbox_id
        .as_deref()
        .and_then(|m| Uuid::parse_str(m).ok());
    Ok(match (&ev.refusal, from_meta, &ev.sender) {
        (Some(Refusal::Login { username }), _, _) => mailboxes::by_address(conn, username)?,
        (_, Some(id), _) => Some(id),
        // A refused command's envelope sender is whatever the client
        // claimed: on port 25 a stranger may claim any of our addresses.
        _ if ev.kind == EventKind::Rejection => None,
        (_, None, Some(sender)) => mailboxes::by_address(conn, sender)?,
        (_, None, None) => None,
    })
}

/// The mailbox counter a record adds to. Only reports and refusals count:
/// the Reception of a message, or the maildir delivery of incoming mail,
/// says nothing about how a mailbox's sending goes.
fn column(ev: &MailEvent) -> Option<&'static str> {
    if !(ev.reference.is_report() || ev.kind == EventKind::Rejection) {
        return None;
    }
    match (&ev.kind, ev.bounce) {
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
    }
}

/// Never mail again an address that does not exist or that complained.
fn suppression(ev: &MailEvent) -> Option<&'static str> {
    if !ev.reference.is_report() {
        return None;
    }
    match (ev.bounce, ev.complaint) {
        (_, true) => Some("complaint"),
        (Some(BounceClass::Hard), _) => Some("hard bounce"),
        _ => None,
    }
}

/// How many reports matched nothing we sent (all time).
pub fn unmatched_count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM mail_events WHERE unmatched = 1",
        [],
        |r| r.get(0),
    )?)
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
