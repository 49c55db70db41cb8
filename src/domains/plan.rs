//! The record plan: every DNS record that authenticates a domain's mail,
//! computed from the domain, its DKIM key and the server's settings.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::name::DomainName;
use crate::types::name_enum;

name_enum!(
    /// The record types InboxGrove writes.
    RecordType { A => "A", AAAA => "AAAA", MX => "MX", TXT => "TXT", CNAME => "CNAME" }
);

name_enum!(
    /// What a planned record is for; it decides how the record is compared
    /// and reconciled (an SPF record is merged, a DKIM record replaced …).
    Purpose {
        MailHost => "mail_host",
        MailHostV6 => "mail_host_v6",
        Mx => "mx",
        Spf => "spf",
        Dkim => "dkim",
        Dmarc => "dmarc",
        Tracking => "tracking",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRecord {
    pub purpose: Purpose,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Fully qualified, no trailing dot.
    pub name: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
}

name_enum!(
    /// The DMARC policy published for a domain; it ramps none → quarantine
    /// → reject as the domain proves itself.
    DmarcPolicy { None => "none", Quarantine => "quarantine", Reject => "reject" }
);

/// The server facts a plan depends on.
#[derive(Debug, Clone)]
pub struct Server {
    pub ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    /// `{domain}` stands for the sending domain, e.g. `mail.{domain}`.
    pub mail_host_pattern: String,
    /// Where tracking CNAMEs point; without it no tracking record is planned.
    pub tracking_target: Option<String>,
}

impl Server {
    pub fn mail_host(&self, domain: &DomainName) -> String {
        crate::inboxes::mail_host(&self.mail_host_pattern, domain.as_str())
    }

    /// The SPF mechanisms that authorise this server.
    pub fn spf_mechanisms(&self) -> Vec<String> {
        let mut m = vec![format!("ip4:{}", self.ipv4)];
        if let Some(v6) = self.ipv6 {
            m.push(format!("ip6:{v6}"));
        }
        m
    }
}

pub struct Inputs<'a> {
    pub domain: &'a DomainName,
    pub selector: &'a str,
    pub dkim_public_b64: &'a str,
    pub dmarc: DmarcPolicy,
    pub tracking_domain: Option<&'a str>,
}

pub fn plan(server: &Server, i: &Inputs<'_>) -> Vec<PlannedRecord> {
    let d = i.domain;
    let mail_host = server.mail_host(d);
    let rec = |purpose, record_type, name: String, content: String| PlannedRecord {
        purpose,
        record_type,
        name,
        content,
        priority: None,
    };
    let mut out = vec![rec(
        Purpose::MailHost,
        RecordType::A,
        mail_host.clone(),
        server.ipv4.to_string(),
    )];
    if let Some(v6) = server.ipv6 {
        out.push(rec(
            Purpose::MailHostV6,
            RecordType::AAAA,
            mail_host.clone(),
            v6.to_string(),
        ));
    }
    out.push(PlannedRecord {
        priority: Some(10),
        ..rec(Purpose::Mx, RecordType::MX, d.to_string(), mail_host)
    });
    out.push(rec(
        Purpose::Spf,
        RecordType::TXT,
        d.to_string(),
        format!("v=spf1 {} -all", server.spf_mechanisms().join(" ")),
    ));
    out.push(rec(
        Purpose::Dkim,
        RecordType::TXT,
        d.sub(&format!("{}._domainkey", i.selector)),
        super::dkim::txt_value(i.dkim_public_b64),
    ));
    // No pct=: DMARCbis (RFC 9989) removed it; the policy ramps instead.
    out.push(rec(
        Purpose::Dmarc,
        RecordType::TXT,
        d.sub("_dmarc"),
        format!(
            "v=DMARC1; p={}; rua=mailto:dmarc-reports@{d}",
            i.dmarc.as_str()
        ),
    ));
    if let (Some(host), Some(target)) = (i.tracking_domain, &server.tracking_target) {
        out.push(rec(
            Purpose::Tracking,
            RecordType::CNAME,
            host.to_owned(),
            target.clone(),
        ));
    }
    out
}

/// TXT content as DNS serves it: character-strings joined without a
/// separator. Accepts Cloudflare's quoted forms (`"a" "b"`) and bare text.
pub fn normalize_txt(content: &str) -> String {
    let t = content.trim();
    if !(t.starts_with('"') && t.ends_with('"') && t.len() >= 2) {
        return t.to_owned();
    }
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in t.chars() {
        match (in_string, escaped, c) {
            (true, true, c) => {
                out.push(c);
                escaped = false;
            }
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (true, false, c) => out.push(c),
            (false, _, _) => {}
        }
    }
    out
}

pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start().to_ascii_lowercase();
    t == "v=spf1" || t.starts_with("v=spf1 ")
}

/// The terms of an SPF record after `v=spf1`, lower-cased.
pub fn spf_terms(txt: &str) -> Vec<String> {
    txt.split_whitespace()
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect()
}

fn bare(term: &str) -> &str {
    term.trim_start_matches(['+', '?', '~', '-'])
}

fn ends_policy(term: &str) -> bool {
    let t = term.to_ascii_lowercase();
    bare(&t) == "all" || t.starts_with("redirect=")
}

/// `existing` with `mechanisms` added before its `all`/`redirect=` term, so
/// a domain that already sends through others keeps one SPF record
/// (RFC 7208 §4.5: two records are a permanent error). Returns `None` when
/// nothing needs adding.
pub fn merge_spf(existing: &str, mechanisms: &[String]) -> Option<String> {
    let terms = spf_terms(existing);
    let missing: Vec<&String> = mechanisms
        .iter()
        .filter(|m| !terms.iter().any(|t| bare(t) == m.to_ascii_lowercase()))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let words: Vec<&str> = existing.split_whitespace().collect();
    let tail_at = words
        .iter()
        .position(|w| ends_policy(w))
        .unwrap_or(words.len());
    let mut out: Vec<&str> = words[..tail_at].to_vec();
    out.extend(missing.iter().map(|m| m.as_str()));
    out.extend(&words[tail_at..]);
    Some(out.join(" "))
}

/// Whether `observed` SPF authorises everything `planned` does, compared by
/// mechanisms, so a merged record that also names other senders counts.
pub fn spf_satisfies(observed: &str, planned: &str) -> bool {
    let wanted: Vec<String> = spf_terms(planned)
        .into_iter()
        .filter(|t| !ends_policy(t))
        .collect();
    is_spf(observed) && merge_spf(observed, &wanted).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server {
            ipv4: "203.0.113.7".parse().unwrap(),
            ipv6: Some("2001:db8::7".parse().unwrap()),
            mail_host_pattern: "mail.{domain}".into(),
            tracking_target: Some("track.inboxgrove.example".into()),
        }
    }

    #[test]
    fn plans_every_authenticating_record() {
        let d = DomainName::parse("sales.example").unwrap();
        let records = plan(
            &server(),
            &Inputs {
                domain: &d,
                selector: "ig202611",
                dkim_public_b64: "MIIBKEY",
                dmarc: DmarcPolicy::None,
                tracking_domain: Some("track.sales.example"),
            },
        );
        let summary: Vec<(RecordType, &str, &str, Option<u16>)> = records
            .iter()
            .map(|r| {
                (
                    r.record_type,
                    r.name.as_str(),
                    r.content.as_str(),
                    r.priority,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (RecordType::A, "mail.sales.example", "203.0.113.7", None),
                (RecordType::AAAA, "mail.sales.example", "2001:db8::7", None),
                (
                    RecordType::MX,
                    "sales.example",
                    "mail.sales.example",
                    Some(10)
                ),
                (
                    RecordType::TXT,
                    "sales.example",
                    "v=spf1 ip4:203.0.113.7 ip6:2001:db8::7 -all",
                    None
                ),
                (
                    RecordType::TXT,
                    "ig202611._domainkey.sales.example",
                    "v=DKIM1; k=rsa; p=MIIBKEY",
                    None
                ),
                (
                    RecordType::TXT,
                    "_dmarc.sales.example",
                    "v=DMARC1; p=none; rua=mailto:dmarc-reports@sales.example",
                    None
                ),
                (
                    RecordType::CNAME,
                    "track.sales.example",
                    "track.inboxgrove.example",
                    None
                ),
            ]
        );
    }

    #[test]
    fn txt_is_compared_as_dns_serves_it() {
        assert_eq!(
            normalize_txt("\"v=DKIM1; k=rsa; \" \"p=AB\""),
            "v=DKIM1; k=rsa; p=AB"
        );
        assert_eq!(normalize_txt("v=spf1 -all"), "v=spf1 -all");
        assert_eq!(normalize_txt("\"say \\\"hi\\\"\""), "say \"hi\"");
    }

    #[test]
    fn spf_is_merged_not_duplicated() {
        let ours = server().spf_mechanisms();
        assert_eq!(
            merge_spf("v=spf1 include:_spf.google.com ~all", &ours).unwrap(),
            "v=spf1 include:_spf.google.com ip4:203.0.113.7 ip6:2001:db8::7 ~all"
        );
        assert_eq!(
            merge_spf("v=spf1 mx redirect=_spf.example.net", &ours[..1]).unwrap(),
            "v=spf1 mx ip4:203.0.113.7 redirect=_spf.example.net"
        );
        assert_eq!(
            merge_spf("v=spf1 ip4:203.0.113.7 ip6:2001:db8::7 -all", &ours),
            None
        );
        assert!(
            is_spf("V=SPF1 -all") && !is_spf("v=spf10") && !is_spf("google-site-verification=x")
        );
    }

    #[test]
    fn spf_satisfaction_is_by_mechanism() {
        let planned = "v=spf1 ip4:203.0.113.7 -all";
        assert!(spf_satisfies(
            "v=spf1 include:x.example +ip4:203.0.113.7 ~all",
            planned
        ));
        assert!(!spf_satisfies("v=spf1 include:x.example ~all", planned));
        assert!(!spf_satisfies(
            "google-site-verification=ip4:203.0.113.7",
            planned
        ));
    }
}
