//! The built-in warmup engine (issue 14): a pool of this appliance's
//! warmup-enabled mailboxes and external peer accounts sends small amounts
//! of plain conversational mail to one another along a ramp, and the
//! receiving side, over IMAP, records where each message landed before it
//! rescues, reads, flags, answers and files it. Placement closes the loop:
//! a spam placement cuts the day and freezes the ramp.
//!
//! Planned through [`crate::jobs`] with the injected clock; recorded in
//! `warmup_mailboxes`, `warmup_peers`, `warmup_messages` and the spec's
//! `warmup_campaigns` day rows.

pub mod content;
pub mod imap;
pub mod marker;
pub mod pairing;
pub mod ramp;
pub mod settings;
pub mod slots;
pub mod smtp;
pub mod tls;

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Who runs a pool member's mailbox, from its MX (or its IMAP host): the
/// pairing prefers a recipient at another provider than the sender's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Gmail,
    Outlook,
    Yahoo,
    Zoho,
    Other,
    /// A mailbox of this appliance: its MX is this host.
    Appliance,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gmail => "gmail",
            Self::Outlook => "outlook",
            Self::Yahoo => "yahoo",
            Self::Zoho => "zoho",
            Self::Other => "other",
            Self::Appliance => "appliance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "gmail" => Self::Gmail,
            "outlook" => Self::Outlook,
            "yahoo" => Self::Yahoo,
            "zoho" => Self::Zoho,
            "other" => Self::Other,
            "appliance" => Self::Appliance,
            _ => return None,
        })
    }

    /// The provider behind a mail host name (an MX target or an IMAP or
    /// SMTP host), lower-cased, without the trailing dot.
    pub fn of_host(host: &str) -> Self {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        let under = |suffix: &str| h == suffix || h.ends_with(&format!(".{suffix}"));
        if under("google.com") || under("googlemail.com") || under("gmail.com") {
            Self::Gmail
        } else if under("outlook.com") || under("office365.com") || under("hotmail.com") {
            Self::Outlook
        } else if under("yahoodns.net") || under("yahoo.com") {
            Self::Yahoo
        } else if under("zoho.com") || under("zoho.eu") || under("zohomail.com") {
            Self::Zoho
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of the warmup pool: a mailbox of this appliance or an
/// external peer account (`warmup_peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub enum MemberId {
    Mailbox(uuid::Uuid),
    Peer(uuid::Uuid),
}

/// Where the receiving side found a warmup message, before touching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Inbox,
    Spam,
    /// Another folder (a Gmail category, a rule's folder).
    Other,
    /// In no folder by the time the receiving side looked.
    Missing,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Spam => "spam",
            Self::Other => "other",
            Self::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "inbox" => Self::Inbox,
            "spam" => Self::Spam,
            "other" => Self::Other,
            "missing" => Self::Missing,
            _ => return None,
        })
    }
}

/// An SMTP or IMAP server the engine connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address to connect to.
    pub host: String,
    pub port: u16,
    /// The name its certificate must be valid for (SNI too); usually
    /// `host`, but the appliance's own services are reached on loopback
    /// under its public host name.
    pub tls_name: String,
    /// TLS from the first byte (IMAPS 993, SMTPS 465) rather than
    /// STARTTLS (IMAP 143, submission 587).
    pub implicit_tls: bool,
}

/// A mailbox login; the password never reaches a log or an error.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: SecretString,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_told_by_their_mail_hosts() {
        for (host, p) in [
            ("gmail-smtp-in.l.google.com.", Provider::Gmail),
            ("imap.gmail.com", Provider::Gmail),
            ("acme-com.mail.protection.outlook.com", Provider::Outlook),
            ("outlook.office365.com", Provider::Outlook),
            ("mta5.am0.yahoodns.net", Provider::Yahoo),
            ("mx.zoho.eu", Provider::Zoho),
            ("mail.notgoogle.com", Provider::Other),
            ("127.0.0.1", Provider::Other),
        ] {
            assert_eq!(Provider::of_host(host), p, "{host}");
        }
        for p in [Provider::Gmail, Provider::Appliance, Provider::Other] {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
    }
}
