//! Whether a report is about a message this appliance sent (issue 12,
//! point 5). Anyone who can mail a hosted mailbox on port 25 can write a DSN
//! or an ARF report naming it and any list of addresses, and KumoMTA logs
//! both (`log_oob`, `log_arf`); only a report that matches an outbound
//! record of ours may change counters or suppress anyone.
//!
//! What each report is matched on (the strongest thing its record offers):
//! - KumoMTA's own outcomes (Bounce, Delivery, TransientFailure,
//!   Expiration, AdminBounce): the spool id of the message's Reception and
//!   the recipient. Only kumod writes these, about its own queue.
//! - An ARF report: the Message-ID of the reported message, quoted in the
//!   report, sent by us to the complaining recipient (the X-KumoRef trace's
//!   `recipient`, else Original-Rcpt-To); if the trace names a mailbox it
//!   must be the one that sent it. A stranger does not know the Message-ID
//!   of a message they never received.
//! - An OOB DSN: its record has neither the original message's spool id
//!   nor its headers (`crates/kumod/src/logging/disposition.rs`), and
//!   KumoMTA sends no ENVID, so there is no Original-Envelope-Id either.
//!   What is left: the DSN came to the address of a mailbox (`sender`, our
//!   envelope sender), and that mailbox sent a message to the failed
//!   recipient within [`DSN_WINDOW`] before it arrived. A forger must know
//!   whom that mailbox wrote to lately; one who guesses wrong suppresses
//!   nobody.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{Result, mailboxes, uuid_at};
use crate::kumo::events::{MailEvent, Reference};

/// How long after sending a DSN may still arrive. RFC 5321 §4.5.4.1: a
/// receiving MTA retries for "at least 4-5 days" before it gives up and
/// writes the DSN; twice that covers a slow one.
pub const DSN_WINDOW: Duration = Duration::days(10);

/// Keeps the outbound record of a submitted message for each of its
/// recipients (one with `BifurcateAlways`); a re-post adds nothing.
pub fn remember_sent(
    conn: &Connection,
    ev: &MailEvent,
    mailbox: Uuid,
    header_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(recipient) = ev.recipient.as_deref() else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO outbound_messages (spool_id, recipient, mailbox_id, message_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (spool_id, recipient) DO NOTHING",
    )?
    .execute(params![
        ev.message_id,
        recipient.trim().to_ascii_lowercase(),
        mailbox.to_string(),
        header_id,
        now
    ])?;
    Ok(())
}

/// The mailbox that sent the message `ev` reports on, or `None` when it
/// matches nothing we sent to that recipient (or is no report at all).
pub fn sender_of(conn: &Connection, ev: &MailEvent, now: DateTime<Utc>) -> Result<Option<Uuid>> {
    let Some(recipient) = ev
        .recipient
        .as_deref()
        .map(|r| r.trim().to_ascii_lowercase())
    else {
        return Ok(None);
    };
    match &ev.reference {
        Reference::Spool { .. } => Ok(conn
            .prepare_cached(
                "SELECT mailbox_id FROM outbound_messages WHERE spool_id = ?1 AND recipient = ?2",
            )?
            .query_row(params![ev.message_id, recipient], |r| uuid_at(r, 0))
            .optional()?),
        Reference::Dsn => {
            let Some(mailbox) = ev.sender.as_deref().map(|s| mailboxes::by_address(conn, s)) else {
                return Ok(None);
            };
            let Some(mailbox) = mailbox? else {
                return Ok(None);
            };
            let sent: Option<i64> = conn
                .prepare_cached(
                    "SELECT 1 FROM outbound_messages
                     WHERE mailbox_id = ?1 AND recipient = ?2 AND at >= ?3 AND at <= ?4 LIMIT 1",
                )?
                .query_row(
                    params![mailbox.to_string(), recipient, now - DSN_WINDOW, now],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(sent.map(|_| mailbox))
        }
        Reference::Arf {
            header_id: Some(header_id),
            traced_mailbox,
        } => {
            let mut stmt = conn.prepare_cached(
                "SELECT mailbox_id FROM outbound_messages WHERE message_id = ?1 AND recipient = ?2",
            )?;
            let senders = stmt
                .query_map(params![header_id, recipient], |r| uuid_at(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let traced = traced_mailbox.as_deref().map(|m| Uuid::parse_str(m).ok());
            Ok(match traced {
                // A trace naming a mailbox that is no id, or not the
                // sender, contradicts the report: nothing is trusted.
                Some(traced) => senders.into_iter().find(|s| Some(*s) == traced),
                None => senders.into_iter().next(),
            })
        }
        Reference::Arf {
            header_id: None, ..
        }
        | Reference::Submitted { .. }
        | Reference::Other => Ok(None),
    }
}

/// An outcome of the outbound queue stored as unmatched for this spool id
/// and recipient: its key, kind, bounce class, reply text and the mailbox
/// it named.
pub struct Waiting {
    pub key: String,
    pub kind: String,
    pub bounce: Option<String>,
    pub response_text: Option<String>,
    pub claimed: Option<Uuid>,
}

/// KumoMTA logs a message's Reception before any outcome, but the log hook
/// retries each record of a failed batch with its own jitter, so a Bounce
/// can reach the appliance first. Those outcomes wait, unmatched, until the
/// Reception of their spool id and recipient arrives. Only KumoMTA's own
/// outcomes wait: an OOB or Feedback record carries the spool id of the
/// incoming report, never one of ours.
pub fn waiting(conn: &Connection, spool_id: &str, recipient: &str) -> Result<Vec<Waiting>> {
    let mut stmt = conn.prepare_cached(
        "SELECT idempotency_key, kind, bounce, mailbox_id, response_text FROM mail_events
         WHERE unmatched = 1 AND message_id = ?1 AND lower(recipient) = ?2
           AND kind IN ('Delivery', 'Bounce', 'TransientFailure', 'Expiration', 'AdminBounce')",
    )?;
    let rows = stmt.query_map(
        params![spool_id, recipient.trim().to_ascii_lowercase()],
        |r| {
            let claimed: Option<String> = r.get(3)?;
            Ok(Waiting {
                key: r.get(0)?,
                kind: r.get(1)?,
                bounce: r.get(2)?,
                response_text: r.get(4)?,
                claimed: claimed.and_then(|c| Uuid::parse_str(&c).ok()),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests;
