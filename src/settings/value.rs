//! The run-time settings' values, each built only by parsing, whether it
//! comes from the API, the form, the config file or the store.

use std::net::{Ipv4Addr, Ipv6Addr};

use secrecy::{ExposeSecret, SecretString};

use super::{SettingsError, invalid};
use crate::config::{Key, retention};
use crate::domains::name::{DomainName, MailHostPattern};
use crate::types::{ParseError, parse_timezone};

/// The most days a domain may wait at `p=none`: a year is already longer
/// than any ramp anyone recommends.
const MAX_DMARC_DAYS: u32 = 365;

/// A Cloudflare API token: printable ASCII without spaces, as Cloudflare
/// issues them; anything else is a paste gone wrong.
#[derive(Debug, Clone)]
pub struct CloudflareToken(SecretString);

impl CloudflareToken {
    pub fn parse(raw: String) -> Result<Self, ParseError> {
        let secret = SecretString::from(raw);
        let t = secret.expose_secret();
        if t.is_empty() || t.len() > 1024 {
            return Err(ParseError(
                "paste the token Cloudflare showed when you created it".into(),
            ));
        }
        // The message never repeats the token.
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError(
                "a Cloudflare token has no spaces or line breaks; copy it again".into(),
            ));
        }
        Ok(Self(secret))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<CloudflareToken> for SecretString {
    fn from(t: CloudflareToken) -> Self {
        t.0
    }
}

/// A parsed value of one setting.
#[derive(Debug, Clone)]
pub enum Value {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    MailHost(MailHostPattern),
    Tracking(DomainName),
    Timezone(chrono_tz::Tz),
    Token(CloudflareToken),
    Days(u32),
}

impl Value {
    pub fn parse(key: Key, raw: String) -> Result<Self, SettingsError> {
        let bad = |e: ParseError| invalid(key, e.0);
        Ok(match key {
            Key::PublicIpv4 => Value::Ipv4(raw.trim().parse().map_err(|_| {
                invalid(
                    key,
                    format!("'{raw}' is not an IPv4 address like 203.0.113.7"),
                )
            })?),
            Key::PublicIpv6 => Value::Ipv6(raw.trim().parse().map_err(|_| {
                invalid(
                    key,
                    format!("'{raw}' is not an IPv6 address like 2001:db8::7"),
                )
            })?),
            Key::MailHostPattern => Value::MailHost(MailHostPattern::parse(&raw).map_err(bad)?),
            Key::TrackingHost => Value::Tracking(DomainName::parse(&raw).map_err(bad)?),
            Key::Timezone => Value::Timezone(parse_timezone(&raw).map_err(bad)?),
            Key::CloudflareApiToken => Value::Token(CloudflareToken::parse(raw).map_err(bad)?),
            Key::DmarcQuarantineAfterDays => Value::Days(
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| *d <= MAX_DMARC_DAYS)
                    .ok_or_else(|| {
                        invalid(
                            key,
                            format!(
                                "give a whole number of days from 0 (never) to {MAX_DMARC_DAYS}"
                            ),
                        )
                    })?,
            ),
            Key::AuditRetentionDays => Value::Days(days(key, &raw, retention::audit_days)?),
            Key::EventRetentionDays => Value::Days(days(key, &raw, retention::event_days)?),
        })
    }
}

/// A number of days checked by `check`, whose message says the range.
fn days(key: Key, raw: &str, check: fn(u32) -> Result<u32, String>) -> Result<u32, SettingsError> {
    // Not a whole number at all (negative, a fraction, text, past u32)
    // gets the same message as one out of range.
    let n = raw.trim().parse::<u32>().unwrap_or(0);
    check(n).map_err(|m| invalid(key, m))
}
