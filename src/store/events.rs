//! The `mail_events` table and the mailbox counters it feeds, and the
//! records kept aside because they could not be read. Whether a report is
//! ours is decided in [`super::reports`].

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::warmup::sends::{self, Outcome};
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
    let effect = effect(
        &ev.kind,
        ev.bounce,
        ev.complaint,
        ev.refusal.as_ref(),
        ev.reference.is_report(),
    );
    let (mailbox, unmatched) = if ev.reference.is_report() {
        match reports::sender_of(conn, ev, now)? {
            Some(sender) => (Some(sender), false),
            None => (claimed, effect.acts()),
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
        if let Some(recipient) = &ev.recipient {
            act_on_waiting(conn, ev, recipient, id, now)?;
        }
    }
    if unmatched {
        bump(conn, id, "unmatched_reports", 1)?;
    } else {
        apply(conn, id, &effect, ev.recipient.as_deref(), now)?;
        if let Some(header_id) = ev.reference.header_id() {
            warmup_outcome(
                conn,
                header_id,
                &ev.kind,
                ev.response_text.as_deref(),
                ev.complaint,
            )?;
        }
    }
    Ok(true)
}

/// A matched report about a warmup message also tells the engine what
/// became of it (`warmup_messages`, the day row of the mailbox it counts
/// for); about any other message it changes nothing. The mailbox's own
/// counters were fed above as for any mail.
fn warmup_outcome(
    conn: &Connection,
    header_id: &str,
    kind: &EventKind,
    response_text: Option<&str>,
    complaint: bool,
) -> Result<()> {
    let outcome = match kind {
        EventKind::Bounce | EventKind::AdminBounce => Outcome::Failed {
            error: response_text,
            keep_earlier: false,
        },
        EventKind::Expiration => Outcome::Failed {
            error: response_text,
            keep_earlier: true,
        },
        EventKind::TransientFailure => Outcome::Deferred {
            error: response_text,
        },
        EventKind::Feedback if complaint => Outcome::Complaint,
        _ => return Ok(()),
    };
    sends::record_outcome(conn, header_id, outcome)?;
    Ok(())
}

/// The outcomes of the message `reception` logged to `recipient` that
/// arrived before it ([`reports::waiting`]) act now, for the mailbox that
/// sent it.
fn act_on_waiting(
    conn: &Connection,
    reception: &MailEvent,
    recipient: &str,
    sender: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    for w in reports::waiting(conn, &reception.message_id, recipient)? {
        conn.execute(
            "UPDATE mail_events SET unmatched = 0, mailbox_id = ?2 WHERE idempotency_key = ?1",
            params![w.key, sender.to_string()],
        )?;
        if let Some(claimed) = w.claimed {
            bump(conn, claimed, "unmatched_reports", -1)?;
        }
        let bounce = w.bounce.as_deref().and_then(BounceClass::parse);
        let kind = EventKind::parse(&w.kind);
        let effect = effect(&kind, bounce, false, None, true);
        apply(conn, sender, &effect, Some(recipient), now)?;
        if let Some(header_id) = reception.reference.header_id() {
            warmup_outcome(conn, header_id, &kind, w.response_text.as_deref(), false)?;
        }
    }
    Ok(())
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

/// What a stored record does: the mailbox counter it adds to, and the
/// reason it suppresses its recipient for the mailbox's owner.
struct Effect {
    column: Option<&'static str>,
    suppression: Option<&'static str>,
}

/// Only reports and refusals act: the Reception of a message, or the
/// maildir delivery of incoming mail, says nothing about how a mailbox's
/// sending goes. A report never mails again an address that does not
/// exist or that complained.
fn effect(
    kind: &EventKind,
    bounce: Option<BounceClass>,
    complaint: bool,
    refusal: Option<&Refusal>,
    report: bool,
) -> Effect {
    if !report {
        let column = match (kind, refusal) {
            (EventKind::Rejection, Some(Refusal::Login { .. })) => Some("refused_logins"),
            (EventKind::Rejection, Some(Refusal::Message)) => Some("refused_messages"),
            _ => None,
        };
        return Effect {
            column,
            suppression: None,
        };
    }
    let column = match (kind, bounce) {
        (EventKind::Delivery, _) => Some("delivered"),
        (_, Some(BounceClass::Hard)) => Some("bounced_hard"),
        (EventKind::TransientFailure, _) => Some("deferrals"),
        (_, Some(BounceClass::Soft)) => Some("bounced_soft"),
        (EventKind::Feedback, _) if complaint => Some("complaints"),
        _ => None,
    };
    let suppression = match (bounce, complaint) {
        (_, true) => Some("complaint"),
        (Some(BounceClass::Hard), _) => Some("hard bounce"),
        _ => None,
    };
    Effect {
        column,
        suppression,
    }
}

impl Effect {
    fn acts(&self) -> bool {
        self.column.is_some() || self.suppression.is_some()
    }
}

fn apply(
    conn: &Connection,
    mailbox: Uuid,
    effect: &Effect,
    recipient: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(column) = effect.column {
        bump(conn, mailbox, column, 1)?;
    }
    if let (Some(reason), Some(recipient)) = (effect.suppression, recipient)
        && let Some(owner) = mailboxes::owner(conn, mailbox)?
    {
        mailboxes::suppress(conn, owner, recipient, reason, now)?;
    }
    Ok(())
}

/// Adds `by` to a counter, never below zero. `column` is one of the
/// constants of this module, never outside input.
fn bump(conn: &Connection, mailbox: Uuid, column: &str, by: i64) -> Result<()> {
    conn.execute(
        &format!("UPDATE mailboxes SET {column} = max({column} + ?2, 0) WHERE id = ?1"),
        params![mailbox.to_string(), by],
    )?;
    Ok(())
}

/// How many reports matched nothing we sent, of those still kept (the raw
/// events are pruned after `event_retention_days`).
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
