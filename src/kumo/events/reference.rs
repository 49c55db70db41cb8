//! What a record can be matched on to a message this appliance sent. A
//! report acts on counters and suppressions only when it refers to one of
//! our messages (issue 12, point 5); the matching itself is in
//! `store::reports`, this only reads what each record type offers.

use mail_parser::MessageParser;
use serde::Serialize;
use serde_json::{Map, Value};

use super::EventKind;
use super::record::LogRecord;

/// The listener name our policy puts in the connection meta
/// (`kumo-policy/init.lua`, `x_listener`) for port 587.
const SUBMISSION: &str = "submission";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Reference {
    /// A Reception of a message submitted on port 587 by a mailbox: the
    /// outbound record later reports are matched to. `header_id` is the
    /// message's Message-ID when the log hook lists that header.
    Submitted { header_id: Option<String> },
    /// KumoMTA's own outcome of a message in its outbound queue (Delivery,
    /// Bounce, TransientFailure, Expiration, AdminBounce): it carries the
    /// spool id of that message's Reception, and its Message-ID when the
    /// log hook lists that header (kumod logs the listed headers of the
    /// message with every record, `crates/kumod/src/logging/disposition.rs`).
    Spool { header_id: Option<String> },
    /// An out-of-band DSN (RFC 3464). KumoMTA's OOB record carries only the
    /// DSN's own spool id, its envelope recipient (`sender`) and the failed
    /// recipient: no meta, no headers, no Original-Envelope-Id
    /// (`crates/kumod/src/logging/disposition.rs`, the `log_oob` branch).
    Dsn,
    /// An ARF report (RFC 5965): the Message-ID of the reported message as
    /// quoted in the report, and the mailbox named in its X-KumoRef trace.
    Arf {
        header_id: Option<String>,
        traced_mailbox: Option<String>,
    },
    /// Not about a message we sent: the Reception of incoming mail, a
    /// maildir delivery of it, a Rejection, kinds InboxGrove ignores.
    Other,
}

impl Reference {
    /// Whether the record is a report that must match one of our messages
    /// before it may act.
    pub fn is_report(&self) -> bool {
        matches!(self, Self::Spool { .. } | Self::Dsn | Self::Arf { .. })
    }

    /// The Message-ID (without brackets) of the message we sent that the
    /// record is about, when it names one: the submission itself, an
    /// outcome of it, or the message an ARF report quotes. Never that of a
    /// DSN, whose record carries the DSN's own headers.
    pub fn header_id(&self) -> Option<&str> {
        match self {
            Self::Submitted { header_id }
            | Self::Spool { header_id }
            | Self::Arf { header_id, .. } => header_id.as_deref(),
            Self::Dsn | Self::Other => None,
        }
    }
}

/// `traced_mailbox` is the mailbox id from the report's X-KumoRef trace.
pub(super) fn reference(
    kind: &EventKind,
    rec: &LogRecord,
    traced_mailbox: Option<String>,
) -> Reference {
    match kind {
        EventKind::Reception => {
            let submitted = rec.reception_protocol.as_deref() == Some("ESMTP")
                && rec
                    .meta
                    .as_ref()
                    .and_then(|m| m.get("x_listener"))
                    .and_then(Value::as_str)
                    == Some(SUBMISSION);
            if submitted {
                Reference::Submitted {
                    header_id: rec.headers.as_ref().and_then(logged_message_id),
                }
            } else {
                Reference::Other
            }
        }
        // Incoming mail written to a maildir is logged with the same kinds
        // as outbound mail; it is not a message we sent.
        _ if rec.delivery_protocol.as_deref() == Some("Maildir") => Reference::Other,
        EventKind::Delivery
        | EventKind::Bounce
        | EventKind::TransientFailure
        | EventKind::Expiration
        | EventKind::AdminBounce => Reference::Spool {
            header_id: rec.headers.as_ref().and_then(logged_message_id),
        },
        EventKind::Oob => Reference::Dsn,
        EventKind::Feedback => Reference::Arf {
            header_id: rec
                .feedback_report
                .as_ref()
                .and_then(|r| r.original_message.as_deref())
                .and_then(quoted_message_id),
            traced_mailbox,
        },
        _ => Reference::Other,
    }
}

/// The Message-ID header as the log hook logged it (`log_parameters.headers`):
/// keyed by the name as the message spells it, a list when it appears more
/// than once (`crates/kumod/src/logging/mod.rs`, `extract_fields`), which
/// names no one message and is not taken.
fn logged_message_id(headers: &Map<String, Value>) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("message-id"))
        .and_then(|(_, v)| v.as_str())
        .and_then(normal_message_id)
}

/// The Message-ID of the reported message, from the copy (or the headers)
/// an ARF report carries (RFC 5965 §2, the third MIME part).
fn quoted_message_id(original: &str) -> Option<String> {
    let parsed = MessageParser::default().parse_headers(original.as_bytes())?;
    parsed.message_id().and_then(normal_message_id)
}

/// RFC 5322 §3.6.4: `msg-id = [CFWS] "<" id-left "@" id-right ">" [CFWS]`;
/// compared without the brackets and surrounding space, case kept (the
/// left part is case-sensitive).
pub(super) fn normal_message_id(raw: &str) -> Option<String> {
    let id = raw.trim();
    let id = id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(id)
        .trim();
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kumo::events::parse_batch;

    fn reference_of(record: Value) -> Reference {
        let body = serde_json::to_vec(&record).unwrap();
        parse_batch(&body).unwrap().events.remove(0).reference
    }

    fn reception(headers: Value, listener: &str, protocol: &str) -> Value {
        json!({ "type": "Reception", "id": "s1", "sender": "ada@grove.test",
                "recipient": "pat@prospect.example", "timestamp": 1, "headers": headers,
                "reception_protocol": protocol, "meta": { "x_listener": listener } })
    }

    #[test]
    fn a_submission_reception_keeps_its_one_message_id_however_the_header_is_spelt() {
        for name in ["Message-ID", "message-id", "Message-Id"] {
            assert_eq!(
                reference_of(reception(
                    json!({ name: " <a1@grove.test> " }),
                    "submission",
                    "ESMTP"
                )),
                Reference::Submitted {
                    header_id: Some("a1@grove.test".into())
                },
                "{name}"
            );
        }
        // Two Message-ID headers name no one message.
        let twice = json!({ "Message-ID": ["<a1@grove.test>", "<a2@grove.test>"] });
        assert_eq!(
            reference_of(reception(twice, "submission", "ESMTP")),
            Reference::Submitted { header_id: None }
        );
        assert_eq!(
            reference_of(reception(json!({}), "inbound", "ESMTP")),
            Reference::Other
        );
        assert_eq!(
            reference_of(reception(json!({}), "submission", "HTTP")),
            Reference::Other
        );
    }

    #[test]
    fn an_arf_report_is_matched_on_the_message_id_it_quotes() {
        let quoted =
            "Received: from x\r\nMessage-ID:\r\n <a1@grove.test>\r\nSubject: hi\r\n\r\nbody";
        let record = json!({ "type": "Feedback", "id": "f1", "sender": "fbl@isp.example",
            "recipient": "fbl@grove.test", "timestamp": 1,
            "feedback_report": { "feedback_type": "abuse", "original_message": quoted,
                "supplemental_trace": { "recipient": "pat@prospect.example", "x_mailbox_id": "m1" } } });
        assert_eq!(
            reference_of(record),
            Reference::Arf {
                header_id: Some("a1@grove.test".into()),
                traced_mailbox: Some("m1".into())
            }
        );
    }

    #[test]
    fn outcomes_of_the_outbound_queue_are_spool_matched_and_maildir_ones_are_not() {
        let outcome = |kind: &str, protocol: &str| {
            json!({ "type": kind, "id": "s1", "sender": "a@b.test", "recipient": "c@d.test",
                    "timestamp": 1, "delivery_protocol": protocol })
        };
        for kind in [
            "Delivery",
            "Bounce",
            "TransientFailure",
            "Expiration",
            "AdminBounce",
        ] {
            assert_eq!(
                reference_of(outcome(kind, "ESMTP")),
                Reference::Spool { header_id: None },
                "{kind}"
            );
            let mut logged = outcome(kind, "ESMTP");
            logged["headers"] = json!({ "Message-ID": "<w1@grove.test>" });
            let reference = reference_of(logged);
            assert_eq!(reference.header_id(), Some("w1@grove.test"), "{kind}");
            assert_eq!(
                reference_of(outcome(kind, "Maildir")),
                Reference::Other,
                "{kind}"
            );
        }
        assert_eq!(reference_of(outcome("OOB", "ESMTP")), Reference::Dsn);
        // A DSN's headers are its own, not those of the message it reports.
        let mut dsn = outcome("OOB", "ESMTP");
        dsn["headers"] = json!({ "Message-ID": "<dsn1@isp.example>" });
        assert_eq!(reference_of(dsn).header_id(), None);
    }
}
