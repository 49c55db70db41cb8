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

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::migrations;

    const ADA: &str = "5a1f6a4e-0000-4000-8000-0000000000a1";
    const BOB: &str = "5a1f6a4e-0000-4000-8000-0000000000b2";

    /// Two mailboxes, a warmup message from each to the other on
    /// 2026-12-01 and ada's day row; `<w1@grove.test>` counts for ada,
    /// `<w2@grove.test>` for bob, who has no day row.
    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut conn).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
                 VALUES ('u', 'owner@b.test', 'h', 'member', 't', 't');
             INSERT INTO domains (id, user_id, domain_name, dns_mode, created_at, updated_at)
                 VALUES ('d', 'u', 'grove.test', 'manual', 't', 't');
             INSERT INTO mailboxes (id, domain_id, user_id, username, password_hash, created_at, updated_at)
                 VALUES ('{ADA}', 'd', 'u', 'ada', 'h', 't', 't'),
                        ('{BOB}', 'd', 'u', 'bob', 'h', 't', 't');
             INSERT INTO warmup_messages (id, message_id, day, counts_for, sender_mailbox,
                     recipient_mailbox, sender_email, recipient_email, scheduled_at, status, created_at)
                 VALUES ('m1', '<w1@grove.test>', '2026-12-01', '{ADA}', '{ADA}', '{BOB}',
                         'ada@grove.test', 'bob@grove.test', 't', 'sent', 't'),
                        ('m2', '<w2@grove.test>', '2026-12-01', '{BOB}', '{BOB}', '{ADA}',
                         'bob@grove.test', 'ada@grove.test', 't', 'sent', 't');
             INSERT INTO warmup_campaigns (id, mailbox_id, campaign_day, day, created_at)
                 VALUES ('c1', '{ADA}', 1, '2026-12-01', 't');"
        ))
        .unwrap();
        conn
    }

    fn message(conn: &Connection, id: &str) -> (String, Option<String>) {
        conn.query_row(
            "SELECT status, error FROM warmup_messages WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn day_row(conn: &Connection) -> (u32, u32) {
        conn.query_row(
            "SELECT bounces, complaints FROM warmup_campaigns WHERE id = 'c1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_deferral_keeps_the_latest_reason_and_a_bounce_fails_the_message_once() {
        let conn = db();
        let tls = "4.0.0 TLS handshake failed: invalid peer certificate: UnknownIssuer";
        for text in ["4.4.1 connection refused", tls] {
            let deferred = Outcome::Deferred { error: Some(text) };
            assert!(record_outcome(&conn, "w1@grove.test", deferred).unwrap());
        }
        assert_eq!(message(&conn, "m1"), ("sent".into(), Some(tls.into())));
        assert_eq!(day_row(&conn), (0, 0));

        let bounce = Outcome::Failed {
            error: Some("5.1.1 user unknown"),
            keep_earlier: false,
        };
        assert!(record_outcome(&conn, " w1@grove.test ", bounce).unwrap());
        assert_eq!(
            message(&conn, "m1"),
            ("failed".into(), Some("5.1.1 user unknown".into()))
        );
        assert_eq!(day_row(&conn), (1, 0));
        // Failed already: a second final outcome changes nothing.
        assert!(!record_outcome(&conn, "w1@grove.test", bounce).unwrap());
        assert_eq!(day_row(&conn), (1, 0));
        // Mail that is not warmup mail is no warmup message.
        assert!(!record_outcome(&conn, "campaign@grove.test", bounce).unwrap());
    }

    #[test]
    fn an_expiry_keeps_the_reason_the_retries_gave_and_complaints_count_on_the_day() {
        let conn = db();
        let tls = "4.0.0 TLS handshake failed: invalid peer certificate";
        let deferred = Outcome::Deferred { error: Some(tls) };
        record_outcome(&conn, "w1@grove.test", deferred).unwrap();
        let expired = Outcome::Failed {
            error: Some("5.4.7 next delivery time would exceed the expiry time"),
            keep_earlier: true,
        };
        assert!(record_outcome(&conn, "w1@grove.test", expired).unwrap());
        assert_eq!(message(&conn, "m1"), ("failed".into(), Some(tls.into())));
        // Without an earlier reason, its own.
        assert!(record_outcome(&conn, "w2@grove.test", expired).unwrap());
        assert!(message(&conn, "m2").1.unwrap().starts_with("5.4.7"));

        assert!(record_outcome(&conn, "w1@grove.test", Outcome::Complaint).unwrap());
        assert_eq!(day_row(&conn), (1, 1));
        // bob has no day row: his message is still marked, nothing else.
        assert!(record_outcome(&conn, "w2@grove.test", Outcome::Complaint).unwrap());
        assert_eq!(day_row(&conn), (1, 1));
    }
}
