//! Deleting the per-record rows older than their retention (issue 12,
//! point 7): the audit log and the raw mail events. What they fed stays:
//! the mailbox counters are columns of `mailboxes` and the suppression list
//! is its own table, neither of which is touched here.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::Result;

/// A table that is pruned, with the column saying when the appliance
/// stored each row (its own clock, not a time a record claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    AuditLogs,
    MailEvents,
    QuarantinedEvents,
    /// What reports are matched against ([`super::reports::sender_of`]):
    /// kept as long as the raw events, which is never less than matching
    /// needs ([`crate::config::retention::MIN_EVENT_DAYS`]). A complaint
    /// about an older message matches nothing and suppresses nobody, so the
    /// default of 90 days leaves feedback loops months to answer.
    OutboundMessages,
}

impl Pruned {
    pub const ALL: [Pruned; 4] = [
        Pruned::AuditLogs,
        Pruned::MailEvents,
        Pruned::QuarantinedEvents,
        Pruned::OutboundMessages,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Pruned::AuditLogs => "audit_logs",
            Pruned::MailEvents => "mail_events",
            Pruned::QuarantinedEvents => "quarantined_events",
            Pruned::OutboundMessages => "outbound_messages",
        }
    }

    fn stored_at(self) -> &'static str {
        match self {
            Pruned::AuditLogs => "created_at",
            Pruned::MailEvents | Pruned::QuarantinedEvents => "received_at",
            Pruned::OutboundMessages => "at",
        }
    }
}

/// Deletes at most `limit` rows of `table` stored before `before` and
/// returns how many went. Callers repeat it in separate transactions, so a
/// first prune of a large backlog does not hold the one writer for long.
pub fn prune(conn: &Connection, table: Pruned, before: DateTime<Utc>, limit: u32) -> Result<usize> {
    let (name, column) = (table.table(), table.stored_at());
    // Both names come from the fixed list above, never from input.
    let sql = format!(
        "DELETE FROM {name} WHERE rowid IN
             (SELECT rowid FROM {name} WHERE {column} < ?1 LIMIT ?2)"
    );
    Ok(conn.prepare_cached(&sql)?.execute(params![before, limit])?)
}
