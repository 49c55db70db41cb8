//! KumoMTA's log records, as posted to `POST /kumo/v1/events`, turned into
//! the [`MailEvent`]s InboxGrove stores. Pure: no I/O, no clock.
//!
//! KumoMTA's log hook posts one record per request (`log_hooks:new_json`)
//! or, with a batching hook, a JSON array of records (fact sheet §6); how a
//! batch is read, and what happens to a record that cannot be, is in
//! [`batch`]. Every record type KumoMTA writes is taken
//! (`crates/kumo-log-types/src/lib.rs`, `RecordType`), including those
//! without a spool id such as `Rejection`.

mod batch;
mod classify;
mod record;
mod reference;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use batch::{Batch, BatchError, MAX_BATCH, Quarantined, parse_batch};
pub use classify::BounceClass;
pub use record::{
    EnhancedCode, FeedbackReport, LogRecord, PeerAddress, Recipients, Response, Timestamp,
};
pub use reference::Reference;

/// KumoMTA's `RecordType`, from the record's `type`. Kinds InboxGrove does
/// not act on (`Delayed`, `AdminRebind`, `XferOut`, …) keep their name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    Reception,
    Delivery,
    Bounce,
    TransientFailure,
    Expiration,
    /// An ARF feedback report (RFC 5965), logged instead of a Reception.
    Feedback,
    /// An out-of-band DSN (RFC 3464), one record per failed recipient.
    Oob,
    AdminBounce,
    /// KumoMTA's listener answered 4xx/5xx to an SMTP client.
    Rejection,
    Other(String),
}

impl EventKind {
    pub fn parse(s: &str) -> Self {
        match s {
            "Reception" => Self::Reception,
            "Delivery" => Self::Delivery,
            "Bounce" => Self::Bounce,
            "TransientFailure" => Self::TransientFailure,
            "Expiration" => Self::Expiration,
            "Feedback" => Self::Feedback,
            "OOB" => Self::Oob,
            "AdminBounce" => Self::AdminBounce,
            "Rejection" => Self::Rejection,
            other => Self::Other(other.to_owned()),
        }
    }

    /// KumoMTA's spelling, so a stored kind reads like the log it came from.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Reception => "Reception",
            Self::Delivery => "Delivery",
            Self::Bounce => "Bounce",
            Self::TransientFailure => "TransientFailure",
            Self::Expiration => "Expiration",
            Self::Feedback => "Feedback",
            Self::Oob => "OOB",
            Self::AdminBounce => "AdminBounce",
            Self::Rejection => "Rejection",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing that happened to one recipient of one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailEvent {
    pub kind: EventKind,
    /// Same for a re-post of the same record, different for any other
    /// record; see [`idempotency_key`].
    pub idempotency_key: String,
    /// KumoMTA's spool id. For Feedback and OOB records it is the id of the
    /// incoming report, not of the message it reports on.
    pub message_id: String,
    /// `meta.mailbox_id` as InboxGrove's policy sets it.
    pub mailbox_id: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub at: DateTime<Utc>,
    pub response_code: Option<u16>,
    /// The reply text, led by its enhanced status code when there is one
    /// (`5.1.1 user unknown`).
    pub response_text: Option<String>,
    pub bounce: Option<BounceClass>,
    /// A spam (or fraud/virus) complaint from a feedback loop.
    pub complaint: bool,
    /// What a `Rejection` record refused, when it names a mailbox.
    pub refusal: Option<Refusal>,
    /// What the record can be matched on to a message we sent.
    pub reference: Reference,
}

/// What KumoMTA's listener refused, from a `Rejection` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Refusal {
    /// A `535` to AUTH for this login, as the policy noted it in the
    /// connection meta (`x_auth_attempt`); the record itself carries only
    /// the SASL payload, which is never read.
    Login { username: String },
    /// A message refused in a session authenticated as the event's mailbox
    /// (MAIL FROM of another address, a send-check refusal at DATA…).
    Message,
}

/// One event per recipient: a Bounce of a batched message (KumoMTA
/// 2025.12.02 `BatchByDomain`) is a bounce for each of them, and keeping
/// only the first would leave the others unsuppressed.
///
/// `hook_id` is the spool id of the log-hook message that carried the
/// record, when the policy sends it: the key of a record that has no spool
/// id of its own.
fn to_events(rec: &LogRecord, hook_id: Option<&str>) -> Result<Vec<MailEvent>, String> {
    let kind_name = rec.kind.trim();
    if kind_name.is_empty() {
        return Err("`type` is empty".into());
    }
    let message_id = rec.id.trim();
    let kind = EventKind::parse(kind_name);
    // Only messages have spool ids: a Rejection (a refused SMTP command)
    // is logged with `"id": ""` (kumod's `log_rejection`), and so may be
    // anything KumoMTA logs about a session rather than a message.
    if message_id.is_empty() && hook_id.is_none() && rec.session_id.is_none() {
        return Err("`id` (the spool id) is empty and the record names no session".into());
    }
    // `event_time` is the same instant as `timestamp` with sub-second
    // precision, when KumoMTA is new enough to send it.
    let at = rec
        .event_time
        .or(rec.timestamp)
        .ok_or("missing `timestamp`")?
        .0;

    let report = rec
        .feedback_report
        .as_ref()
        .filter(|_| kind == EventKind::Feedback);
    let trace = report.and_then(|r| r.supplemental_trace.as_ref());
    let traced_mailbox = trace.and_then(mailbox_in);
    let mailbox_id = rec
        .meta
        .as_ref()
        .and_then(mailbox_in)
        // A Feedback record's meta is the incoming report's; the reported
        // message's own meta survives only in its X-KumoRef trace header
        // (`trace_headers.include_meta_names`).
        .or_else(|| traced_mailbox.clone());
    let reference = reference::reference(&kind, rec, traced_mailbox);
    let (sender, recipients) = match report {
        Some(r) => reported_parties(rec, r),
        None => (non_empty(rec.sender.as_deref()), rec.recipient.0.clone()),
    };

    let response = rec.response.as_ref();
    let response_code = response.and_then(|r| r.code);
    let response_text = response.and_then(response_text);
    let bounce = classify::classify(&kind, rec.bounce_classification.as_deref(), response_code);
    let complaint = kind == EventKind::Feedback && is_complaint(report);
    let refusal = (kind == EventKind::Rejection)
        .then(|| refusal(rec, response_code, mailbox_id.is_some()))
        .flatten();

    let recipients: Vec<Option<String>> = if recipients.is_empty() {
        vec![None]
    } else {
        recipients.into_iter().map(Some).collect()
    };
    Ok(recipients
        .into_iter()
        .map(|recipient| MailEvent {
            idempotency_key: match (message_id, hook_id) {
                ("", Some(hook)) => idempotency_key("hook", hook, recipient.as_deref(), None, at),
                ("", None) => session_key(rec, kind_name, recipient.as_deref(), at),
                _ => idempotency_key(
                    kind_name,
                    message_id,
                    recipient.as_deref(),
                    rec.num_attempts,
                    at,
                ),
            },
            kind: kind.clone(),
            message_id: message_id.to_owned(),
            mailbox_id: mailbox_id.clone(),
            sender: sender.clone(),
            recipient,
            at,
            response_code,
            response_text: response_text.clone(),
            bounce,
            complaint,
            refusal: refusal.clone(),
            reference: reference.clone(),
        })
        .collect())
}

/// What a Rejection refused. A 535 is the only reply to AUTH that means
/// "wrong password" (RFC 4954 §6); it names the mailbox only through the
/// login the policy recorded, never through the envelope sender, which on
/// port 25 anyone may claim.
fn refusal(rec: &LogRecord, code: Option<u16>, has_mailbox: bool) -> Option<Refusal> {
    if code == Some(535) {
        let tried = rec.meta.as_ref()?.get("x_auth_attempt")?.as_str()?;
        return non_empty(Some(tried)).map(|username| Refusal::Login {
            username: username.to_ascii_lowercase(),
        });
    }
    has_mailbox.then_some(Refusal::Message)
}

/// The key of a record without a spool id that came without its log-hook
/// message id (posted by hand, or by `new_json`): the session and the exact
/// instant (nanoseconds with `event_time`), plus what was refused, so two
/// refusals in one session differ.
fn session_key(rec: &LogRecord, kind: &str, recipient: Option<&str>, at: DateTime<Utc>) -> String {
    let session = rec.session_id.as_deref().unwrap_or("");
    let response = rec.response.as_ref();
    let what = format!(
        "{}|{}|{}",
        rec.sender.as_deref().unwrap_or(""),
        response.and_then(|r| r.code).unwrap_or(0),
        response.and_then(|r| r.content.as_deref()).unwrap_or(""),
    );
    idempotency_key(
        kind,
        &format!("session:{session}:{what}"),
        recipient,
        None,
        at,
    )
}

/// Identifies one record across re-posts. KumoMTA's hook retries a batch
/// until it gets a 2xx, so the same record can arrive several times, with
/// its JSON keys possibly reordered by the Lua side; hashing chosen fields
/// rather than the bytes keeps a re-post equal. The fields:
/// - `kind` and spool `id`: one message logs a Reception, then attempts,
///   then a final outcome;
/// - `recipient`: a batched message logs one record per recipient, and one
///   DSN yields one OOB record per failed recipient under the same id;
/// - `num_attempts`: each retry logs another TransientFailure;
/// - the instant (to the nanosecond when `event_time` gives it): KumoMTA
///   says `num_attempts` may be approximate after a restart, and Delayed or
///   Rejection records can repeat a kind and count.
///
/// Each field is length-prefixed so no two field lists hash the same bytes.
pub fn idempotency_key(
    kind: &str,
    spool_id: &str,
    recipient: Option<&str>,
    num_attempts: Option<u32>,
    at: DateTime<Utc>,
) -> String {
    let attempts = num_attempts.map(|n| n.to_string()).unwrap_or_default();
    let at = at.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut h = Sha256::new();
    // Bump the version if the field list changes, so old and new keys
    // cannot collide by accident.
    for part in [
        "inboxgrove.kumo-event.v1",
        kind,
        spool_id,
        recipient.unwrap_or(""),
        &attempts,
        &at,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// For a Feedback record the envelope is the FBL provider writing to us;
/// the parties that matter are those of the reported message: its sender
/// (Original-Mail-From) and the recipient who complained (the X-KumoRef
/// trace's `recipient`, else Original-Rcpt-To), per RFC 5965 §3.2 and
/// KumoMTA's `trace_headers` docs.
fn reported_parties(rec: &LogRecord, r: &FeedbackReport) -> (Option<String>, Vec<String>) {
    let sender = non_empty(r.original_mail_from.as_deref().map(unbracket))
        .or_else(|| non_empty(rec.sender.as_deref()));
    let traced = r
        .supplemental_trace
        .as_ref()
        .and_then(|t| t.get("recipient"))
        .and_then(Value::as_str)
        .and_then(|s| non_empty(Some(s)));
    let recipients = match traced {
        Some(rcpt) => vec![rcpt],
        None => {
            let listed: Vec<String> = r
                .original_rcpto_to
                .iter()
                .filter_map(|a| non_empty(Some(unbracket(a))))
                .collect();
            if listed.is_empty() {
                rec.recipient.0.clone()
            } else {
                listed
            }
        }
    };
    (sender, recipients)
}

/// KumoMTA's docs show `<a@b>` in report fields, its source writes `a@b`.
fn unbracket(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `mailbox_id`, or `x_mailbox_id` for a policy that follows the fact
/// sheet's advice to prefix its own meta keys with `x_`. Meta values are
/// arbitrary JSON; an id may have been stored as a number.
fn mailbox_in(meta: &Map<String, Value>) -> Option<String> {
    ["mailbox_id", "x_mailbox_id"]
        .iter()
        .find_map(|key| match meta.get(*key)? {
            Value::String(s) => non_empty(Some(s)),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

fn response_text(r: &Response) -> Option<String> {
    let content = r.content.as_deref().map(str::trim).unwrap_or("");
    let text = match r.enhanced_code {
        Some(EnhancedCode {
            class,
            subject,
            detail,
        }) => format!("{class}.{subject}.{detail} {content}"),
        None => content.to_owned(),
    };
    non_empty(Some(&text))
}

/// RFC 5965 §7.3 registers `abuse`, `fraud`, `virus` and `other`; the
/// first three report the message as unwanted or harmful. `other`,
/// `not-spam` (RFC 6430) and `auth-failure` (RFC 6591) are not complaints.
fn is_complaint(report: Option<&FeedbackReport>) -> bool {
    match report.and_then(|r| r.feedback_type.as_deref()) {
        Some(t) => matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "abuse" | "fraud" | "virus"
        ),
        // KumoMTA logs Feedback only for a parsed report, and Feedback-Type
        // is required there; a record without one is still an FBL report,
        // and those are overwhelmingly abuse reports.
        None => true,
    }
}

#[cfg(test)]
mod tests;
