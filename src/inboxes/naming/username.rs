//! The local part of a mailbox we create, e.g. `john.smith` in
//! `john.smith@sales-outreach.com`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::ParseError;

/// Local parts that mailbox providers, RFC 2142 and common practice reserve
/// for a role rather than a person. Handing one out as a sending mailbox
/// would route the domain's abuse, postmaster or DMARC mail to a cold-email
/// inbox, and sequencers and spam filters treat role senders as bulk mail.
pub const ROLE_ADDRESSES: &[&str] = &[
    "postmaster",
    "abuse",
    "admin",
    "administrator",
    "hostmaster",
    "webmaster",
    "info",
    "sales",
    "support",
    "noreply",
    "no-reply",
    "root",
    "security",
    "billing",
    "mailer-daemon",
    "marketing",
    "contact",
    "help",
    "hello",
    "office",
    "team",
    "privacy",
    "legal",
    "jobs",
    "careers",
    "press",
    "news",
    "newsletter",
    "unsubscribe",
    "bounce",
    "bounces",
    "dmarc",
    "dmarc-reports",
    "tlsrpt",
    "list",
    "lists",
    "www",
    "ftp",
    "nobody",
];

/// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
const MAX_LEN: usize = 64;

/// A mailbox local part: lower case, ASCII letters, digits and `.`, `-`,
/// `_`, starting and ending with a letter or digit, and never a role
/// address. Narrower than RFC 5322 allows, so every client, sequencer CSV
/// and SMTP AUTH user name takes it unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(ParseError(format!(
                "must be 1 to {MAX_LEN} characters, like john.smith"
            )));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(ParseError(format!(
                "'{s}' contains {bad:?}; use only letters a-z, digits and . - _"
            )));
        }
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !edge_ok(s.chars().next()) || !edge_ok(s.chars().last()) {
            return Err(ParseError(format!(
                "'{s}' must start and end with a letter or digit"
            )));
        }
        if s.contains("..") {
            return Err(ParseError(format!(
                "'{s}' has two dots in a row; use a single dot, like john.smith"
            )));
        }
        if is_role_address(&s) {
            return Err(ParseError(format!(
                "'{s}' is a role address, not a person; pick a personal name like john.smith"
            )));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compares without separators as well, so `no.reply` and `mailer_daemon`
/// are caught along with the spellings in the list.
fn is_role_address(lower: &str) -> bool {
    let bare = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '.' | '-' | '_'))
            .collect()
    };
    let wanted = bare(lower);
    ROLE_ADDRESSES
        .iter()
        .any(|role| *role == lower || bare(role) == wanted)
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_lower_cases() {
        for (raw, want) in [
            ("john.smith", "john.smith"),
            (" John.Smith ", "john.smith"),
            ("jsmith", "jsmith"),
            ("mary-jane_o2", "mary-jane_o2"),
            ("a", "a"),
            ("7", "7"),
        ] {
            assert_eq!(Username::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_bad_shapes_with_a_hint() {
        let long = "a".repeat(65);
        for (raw, hint) in [
            ("", "1 to 64"),
            ("   ", "1 to 64"),
            (long.as_str(), "1 to 64"),
            ("john smith", "' '"),
            ("john+tag", "'+'"),
            ("jöhn", "'ö'"),
            (".john", "start and end"),
            ("john-", "start and end"),
            ("_x", "start and end"),
            ("john..smith", "two dots"),
        ] {
            let err = Username::parse(raw).unwrap_err().0;
            assert!(err.contains(hint), "{raw:?}: {err}");
        }
    }

    #[test]
    fn refuses_role_addresses_in_any_spelling() {
        for role in ROLE_ADDRESSES {
            let err = Username::parse(role).unwrap_err().0;
            assert!(err.contains("role address"), "{role}: {err}");
        }
        for raw in [
            "No.Reply",
            "no_reply",
            "POSTMASTER",
            "mailer.daemon",
            "dmarc_reports",
        ] {
            assert!(Username::parse(raw).is_err(), "{raw} should be refused");
        }
        // Only whole names are reserved, not names that contain one.
        for raw in ["info.desk.jones", "sales.smith", "teamwork", "rootes"] {
            assert!(Username::parse(raw).is_ok(), "{raw} should be accepted");
        }
    }

    #[test]
    fn serde_goes_through_parse() {
        let u: Username = serde_json::from_str("\"J.Smith\"").unwrap();
        assert_eq!(u.to_string(), "j.smith");
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"j.smith\"");
        assert!(serde_json::from_str::<Username>("\"abuse\"").is_err());
    }
}
