//! Validated domain types: each is built only by `parse`, so once a value has
//! its type no later code checks it again.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn invalid(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// An email address, lower-cased. The domain may be a single label
/// (`admin@localhost`) because the bootstrap admin uses one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        // RFC 5321 §4.5.3.1: 64 octets of local part, 254 for the whole path.
        if s.is_empty() || s.len() > 254 {
            return Err(invalid(
                "must be an email address of at most 254 characters, like ops@example.com",
            ));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(invalid("must contain '@', like ops@example.com"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !local_ok {
            return Err(invalid(format!(
                "'{local}' is not a valid mailbox name: use letters, digits and . _ + - (at most 64)"
            )));
        }
        let domain_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !domain_ok {
            return Err(invalid(format!("'{domain}' is not a valid domain name")));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

/// A new password chosen by a person: long enough to resist guessing, short
/// enough that hashing it cannot be used to burn CPU.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: SecretString) -> Result<Self, ParseError> {
        let s = raw.expose_secret();
        if s.chars().count() < Self::MIN_CHARS {
            return Err(invalid(format!(
                "must be at least {} characters; a passphrase of a few words works well",
                Self::MIN_CHARS
            )));
        }
        if s.len() > Self::MAX_BYTES {
            return Err(invalid(format!(
                "must be at most {} bytes",
                Self::MAX_BYTES
            )));
        }
        Ok(Self(raw))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = SecretString::deserialize(d)?;
        Password::parse(raw).map_err(serde::de::Error::custom)
    }
}

/// Declares a closed set of lower-case names stored as TEXT and sent as JSON
/// strings, with one parse that names the allowed values.
macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<Self, $crate::types::ParseError> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::types::ParseError(format!(
                        "'{other}' is not one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use name_enum;

name_enum!(
    /// What a user may do: admins see and manage everything, members only
    /// their own resources.
    Role { Admin => "admin", Member => "member" }
);

name_enum!(
    /// The plan a user is on (spec: users.subscription_tier).
    SubscriptionTier { Free => "free", Pro => "pro", Enterprise => "enterprise" }
);

/// A label a person gives to an API token so they can tell them apart later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
            return Err(invalid(
                "must be 1 to 64 printable characters, like \"instantly sync\"",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<TokenName> for String {
    fn from(t: TokenName) -> String {
        t.0
    }
}

/// An IANA time zone name such as `Europe/Berlin` or `UTC`.
pub fn parse_timezone(raw: &str) -> Result<chrono_tz::Tz, ParseError> {
    raw.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        ParseError(format!(
            "'{raw}' is not an IANA time zone; use a name like Europe/Berlin or UTC"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Ops@Example.COM ").unwrap().as_str(),
            "ops@example.com"
        );
        assert!(EmailAddress::parse("admin@localhost").is_ok());
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a..b@example.com",
            "a@-x.com",
            "a@x..com",
            "a b@example.com",
            "a@exa mple.com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
    }

    #[test]
    fn password_bounds() {
        let p = |s: &str| Password::parse(SecretString::from(s.to_owned()));
        assert!(p("short").is_err());
        assert!(p("twelve chars").is_ok());
        assert!(p(&"x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", p("correct horse battery").unwrap()),
            "Password([REDACTED])"
        );
    }

    #[test]
    fn name_enums_round_trip_and_name_the_choices() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        let err = Role::parse("root").unwrap_err().to_string();
        assert!(err.contains("admin, member"), "{err}");
        assert_eq!(
            SubscriptionTier::parse(SubscriptionTier::Pro.as_str()).unwrap(),
            SubscriptionTier::Pro
        );
    }

    #[test]
    fn token_name_refuses_control_chars() {
        assert!(TokenName::parse("ci").is_ok());
        assert!(TokenName::parse("  ").is_err());
        assert!(TokenName::parse("a\nb").is_err());
    }
}
