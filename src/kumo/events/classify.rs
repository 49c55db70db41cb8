//! Hard or soft: what a failed delivery says about the recipient address.
//!
//! "Hard" means the address (or its domain) cannot receive mail, so a
//! cold-email sender must stop writing to it. "Soft" means this message
//! failed but the address may well be good: the cause is reputation,
//! content, quota, configuration or the network, and suppressing the
//! recipient would throw away a working address.

use serde::Serialize;

use super::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BounceClass {
    Hard,
    Soft,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }

    /// The class [`Self::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard" => Some(Self::Hard),
            "soft" => Some(Self::Soft),
            _ => None,
        }
    }
}

/// The class of a failure record, or `None` for records that are not
/// failures of an outbound message (Reception, Delivery, Feedback,
/// Rejection, …).
pub fn classify(kind: &EventKind, label: Option<&str>, code: Option<u16>) -> Option<BounceClass> {
    match kind {
        // The verdict on the message is final; the class says whether the
        // address is to blame. OOB records carry a code from the DSN's
        // Diagnostic-Code (KumoMTA defaults it to 550).
        EventKind::Bounce | EventKind::Oob => Some(
            label
                .and_then(from_label)
                .or_else(|| from_code(code))
                // A permanent failure with no usable class or code: trust
                // the record type.
                .unwrap_or(BounceClass::Hard),
        ),
        // KumoMTA retries these, and the final outcome arrives later as a
        // Bounce or an Expiration. The iana.toml rules also match 4xx
        // replies such as "451 4.1.1", so the label alone would call a
        // retryable failure hard.
        EventKind::TransientFailure => Some(BounceClass::Soft),
        // The queue lifetime ran out after temporary failures; its response
        // is KumoMTA's own (a 5xx "expired" line), not the receiver's
        // verdict on the address.
        EventKind::Expiration => Some(BounceClass::Soft),
        // An operator failed the message (`/api/admin/bounce`): nothing is
        // known about the address.
        EventKind::AdminBounce => Some(BounceClass::Soft),
        _ => None,
    }
}

/// KumoMTA's predefined classes (`PreDefinedBounceClass` in
/// `crates/bounce-classify/src/lib.rs`; descriptions quoted from there).
/// `Uncategorized` and user-defined labels give `None`, so the SMTP code
/// decides.
fn from_label(label: &str) -> Option<BounceClass> {
    use BounceClass::{Hard, Soft};
    Some(match label {
        // The address itself is bad.
        "InvalidRecipient" => Hard, // "The recipient is invalid"
        "InactiveMailbox" => Hard,  // "expired, inactive, or disabled recipient addresses"
        // The recipient domain cannot take mail at all (incl. RFC 7505 null
        // MX, which iana.toml files under BadDomain).
        "BadDomain" => Hard,     // "invalid or non-existing domains"
        "RoutingErrors" => Hard, // "mail routing issues for recipient domain, 5.X.X"

        // The receiver objects to us or to the message, not the address.
        "SpamBlock" | "SpamContent" | "SpamRelated" => Soft,
        "ContentRelated" | "ProhibitedAttachment" | "VirusRelated" => Soft,
        "PolicyRelated" | "AuthenticationFailed" | "InvalidSender" => Soft,
        "RelayDenied" | "RelayingIssues" | "BadConfiguration" => Soft,
        "TooManyRecipients" => Soft,

        // Temporary by nature: a full mailbox empties, hosts come back, DNS
        // lookups that failed (rather than proved the domain absent, which
        // is BadDomain) may succeed next time.
        "QuotaIssues" | "TransientFailure" | "MessageExpired" => Soft,
        "DNSFailure" | "BadConnection" | "NoAnswerFromHost" | "ProtocolErrors" => Soft,

        // Classes for replies rather than failures; the mailbox is alive.
        "AutoReply" | "ChallengeResponse" | "Subscribe" | "Unsubscribe" => Soft,

        _ => return None,
    })
}

/// RFC 5321 §4.2.1: 5yz is a permanent negative reply, 4yz a transient one.
fn from_code(code: Option<u16>) -> Option<BounceClass> {
    match code? {
        500..=599 => Some(BounceClass::Hard),
        400..=499 => Some(BounceClass::Soft),
        _ => None,
    }
}
