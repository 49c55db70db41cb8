//! Domain names as the orchestrator accepts them: normalised (lower case,
//! no trailing dot, IDN as punycode) and checked once, at the edge.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::types::ParseError;

/// A registrable domain a user sends from, e.g. `sales-outreach.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

/// RFC 1035 §2.3.4: 253 characters in presentation form, 63 per label.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        let bare = trimmed.trim_start_matches('[').trim_end_matches(']');
        if trimmed.is_empty() {
            return Err(ParseError("must be a domain name like example.com".into()));
        }
        if bare.parse::<IpAddr>().is_ok() {
            return Err(ParseError(format!(
                "'{trimmed}' is an IP address; give the domain name you send from, like example.com"
            )));
        }
        if trimmed.contains('*') {
            return Err(ParseError(
                "wildcards cannot be added; give one domain, like example.com".into(),
            ));
        }
        // Plain ASCII input gets the precise complaint before IDNA would
        // give a generic one.
        if trimmed.is_ascii() {
            check_shape(&trimmed.to_ascii_lowercase())?;
        }
        // UTS #46 with STD3 rules: lower-cases, maps IDN to punycode and
        // refuses anything but letters, digits and hyphens.
        let ascii = idna::domain_to_ascii_strict(trimmed).map_err(|_| {
            ParseError(format!(
                "'{trimmed}' is not a valid domain name: use letters, digits, hyphens and dots"
            ))
        })?;
        check_shape(&ascii)?;
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `label.<domain>`; `label` is trusted (a constant or a validated
    /// selector).
    pub fn sub(&self, label: &str) -> String {
        format!("{label}.{}", self.0)
    }

    /// The name itself, then each parent that still has two labels,
    /// closest first: the names a zone holding it can have (no DNS host
    /// gives out a zone for a bare top-level domain).
    pub fn and_parents(&self) -> impl Iterator<Item = &str> {
        let dots = self.0.matches('.').count();
        std::iter::successors(Some(self.0.as_str()), |n| {
            n.split_once('.').map(|(_, parent)| parent)
        })
        .take(dots)
    }

    /// Whether `zone` (a zone name as a DNS host spells it) is this name
    /// or one of its parents.
    pub fn is_within(&self, zone: &str) -> bool {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        !zone.is_empty() && (self.0 == zone || self.0.ends_with(&format!(".{zone}")))
    }
}

fn check_shape(ascii: &str) -> Result<(), ParseError> {
    if ascii.len() > MAX_NAME {
        return Err(ParseError(format!(
            "is {} characters long; a domain name has at most {MAX_NAME}",
            ascii.len()
        )));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(ParseError(format!(
            "'{ascii}' has a single label; give a registrable name like {ascii}.com"
        )));
    }
    for label in &labels {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(ParseError(format!(
                "'{ascii}' has an invalid label '{label}' (1 to {MAX_LABEL} characters, no leading or trailing hyphen)"
            )));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(ParseError(format!(
            "'{ascii}' ends in a numeric label; top-level domains are never numeric"
        )));
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

/// A mail host name with `{domain}` in it, e.g. `mail.{domain}`, that gives
/// a valid host name for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailHostPattern(String);

impl MailHostPattern {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if !raw.contains("{domain}") {
            return Err(ParseError(format!(
                "'{raw}' must contain {{domain}}, like mail.{{domain}}"
            )));
        }
        DomainName::parse(&raw.replace("{domain}", "example.com")).map_err(|_| {
            ParseError(format!(
                "'{raw}' does not give a host name; use letters, digits, hyphens and dots around {{domain}}, like mail.{{domain}}"
            ))
        })?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (raw, want) in [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("  sales-outreach.io ", "sales-outreach.io"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
            ("mail.sub.example.co.uk", "mail.sub.example.co.uk"),
        ] {
            assert_eq!(DomainName::parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn parents_run_closest_first_and_stop_above_the_tld() {
        let d = DomainName::parse("mail.a.example.com").unwrap();
        let names: Vec<&str> = d.and_parents().collect();
        assert_eq!(
            names,
            ["mail.a.example.com", "a.example.com", "example.com"]
        );
        let apex = DomainName::parse("example.com").unwrap();
        assert_eq!(apex.and_parents().collect::<Vec<_>>(), ["example.com"]);
    }

    #[test]
    fn a_name_is_within_itself_and_its_parents_only() {
        let d = DomainName::parse("mail.a.example.com").unwrap();
        for zone in ["mail.a.example.com", "a.example.com", "Example.COM.", "com"] {
            assert!(d.is_within(zone), "{zone}");
        }
        for zone in [
            "",
            ".",
            "b.example.com",
            "xa.example.com",
            "le.com",
            "mail.a.example.com.evil",
            "x.mail.a.example.com",
        ] {
            assert!(!d.is_within(zone), "{zone}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_a_sending_domain() {
        let long = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        let long_label = format!("{}.com", "a".repeat(64));
        for (raw, hint) in [
            ("", "domain name"),
            ("localhost", "single label"),
            ("192.0.2.1", "IP address"),
            ("[2001:db8::1]", "IP address"),
            ("*.example.com", "wildcard"),
            ("exa mple.com", "not a valid"),
            ("under_score.com", "not a valid"),
            ("-lead.com", "invalid label"),
            ("a..b.com", "invalid label"),
            ("example.123", "numeric"),
            (long.as_str(), "at most 253"),
            (long_label.as_str(), "invalid label"),
        ] {
            let err = DomainName::parse(raw).unwrap_err().0;
            assert!(err.contains(hint), "{raw:?}: {err}");
        }
    }
}
