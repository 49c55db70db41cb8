//! What the control plane reads and writes of warmup: the campaign slow
//! ramp a warming mailbox's send-check follows, and what KumoMTA's log
//! records say happened to a warmup message after it was queued.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::store::Result;

/// A warmup-enabled mailbox's settings (the JSON of
/// `warmup::settings::Settings`, parsed by the caller) and the first day
/// of its warmup.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub settings: String,
    pub started_on: NaiveDate,
}

/// The enrolment of `mailbox` when its warmup is enabled.
pub fn enabled(conn: &Connection, mailbox: Uuid) -> Result<Option<Enrolment>> {
    Ok(conn
        .prepare_cached(
            "SELECT settings, started_on FROM warmup_mailboxes
             WHERE mailbox_id = ?1 AND enabled = 1",
        )?
        .query_row([mailbox.to_string()], |r| {
            Ok(Enrolment {
                settings: r.get(0)?,
                started_on: r.get(1)?,
            })
        })
        .optional()?)
}

/// What a log record says of a warmup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Never delivered: a Bounce or an AdminBounce (their text says why),
    /// or an Expiration, whose own text only says time ran out, so the
    /// last deferral's reason is kept when there is one.
    Failed {
        error: Option<&'a str>,
        keep_earlier: bool,
    },
    /// A TransientFailure: KumoMTA retries, the message stays `sent`, and
    /// its latest reason is kept ("TLS handshake … invalid peer
    /// certificate" with a self-signed peer).
    Deferred { error: Option<&'a str> },
    /// A spam complaint (ARF) about it.
    Complaint,
}

/// Applies `outcome` to the warmup message whose Message-ID is
/// `message_id` (without its angle brackets, as log records are
/// compared; the row keeps them as the header has them). Returns whether
/// a warmup message was changed: `false` for any other mail, and for a
/// failure of a message already failed (a record posted twice is stored
/// once before this runs, but a Bounce may follow an Expiration's
/// AdminBounce).
pub fn record_outcome(conn: &Connection, message_id: &str, outcome: Outcome<'_>) -> Result<bool> {
    let id = message_id.trim();
    let bracketed = format!("<{id}>");
    let day_row = match outcome {
        Outcome::Failed {
            error,
            keep_earlier,
        } => conn
            .prepare_cached(
                "UPDATE warmup_messages SET status = 'failed',
                    error = CASE WHEN ?3 AND error IS NOT NULL THEN error ELSE coalesce(?4, error) END
                 WHERE message_id IN (?1, ?2) AND status IN ('sending', 'sent')
                 RETURNING counts_for, day",
            )?
            .query_row(params![bracketed, id, keep_earlier, error], day_of)
            .optional()?
            .map(|row| (row, "bounces")),
        Outcome::Deferred { error } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE warmup_messages SET error = coalesce(?3, error)
                     WHERE message_id IN (?1, ?2) AND status IN ('sending', 'sent')",
                )?
                .execute(params![bracketed, id, error])?;
            return Ok(changed > 0);
        }
        Outcome::Complaint => conn
            .prepare_cached(
                "SELECT counts_for, day FROM warmup_messages WHERE message_id IN (?1, ?2)",
            )?
            .query_row(params![bracketed, id], day_of)
            .optional()?
            .map(|row| (row, "complaints")),
    };
    let Some(((counts_for, day), column)) = day_row else {
        return Ok(false);
    };
    if let Some(mailbox) = counts_for {
        // `column` is one of the two names above, never outside input.
        conn.execute(
            &format!(
                "UPDATE warmup_campaigns SET {column} = {column} + 1
                 WHERE mailbox_id = ?1 AND day = ?2"
            ),
            params![mailbox, day],
        )?;
    }
    Ok(true)
}

fn day_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Option<String>, String)> {
    Ok((r.get(0)?, r.get(1)?))
}
