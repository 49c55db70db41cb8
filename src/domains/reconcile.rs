//! Publishing as a reconcile: the difference between the plan and what the
//! zone holds, as one change set. Applying the plan to a zone that already
//! matches it yields an empty set, so publishing twice changes nothing.
//!
//! Records that are not ours are left alone: other apex TXT records (site
//! verifications), other MX hosts, CAA/HTTPS records. An existing SPF record
//! is merged into rather than duplicated (RFC 7208 §4.5).

use super::plan::{self, PlannedRecord, Purpose, RecordType};
use super::provider::{ChangeSet, ExistingRecord, NewRecord};

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn new(p: &PlannedRecord, content: String) -> NewRecord {
    NewRecord {
        record_type: p.record_type,
        name: p.name.clone(),
        content,
        priority: p.priority,
    }
}

/// Whether an existing record already serves what `p` plans.
pub fn matches(p: &PlannedRecord, e: &ExistingRecord) -> bool {
    if !same_name(&p.name, &e.name) || e.record_type != p.record_type.as_str() {
        return false;
    }
    match p.record_type {
        RecordType::MX => same_name(&e.content, &p.content) && e.priority == p.priority,
        RecordType::CNAME => same_name(&e.content, &p.content),
        RecordType::A | RecordType::AAAA => e.content.trim() == p.content,
        RecordType::TXT => {
            let txt = plan::normalize_txt(&e.content);
            match p.purpose {
                Purpose::Spf => plan::spf_satisfies(&txt, &p.content),
                _ => txt == p.content,
            }
        }
    }
}

/// The records at `p.name` that `p` takes the place of when they differ:
/// the same kind of record (our A at the mail host, the DKIM TXT at its
/// selector, the DMARC TXT) and anything that cannot coexist with it.
fn replaceable<'e>(p: &PlannedRecord, existing: &'e [ExistingRecord]) -> Vec<&'e ExistingRecord> {
    existing
        .iter()
        .filter(|e| same_name(&p.name, &e.name))
        .filter(|e| match p.purpose {
            Purpose::MailHost | Purpose::MailHostV6 | Purpose::Tracking => {
                // We own these host names: a CNAME cannot sit beside an
                // A record, nor an A beside a CNAME (RFC 1034 §3.6.2).
                e.record_type == p.record_type.as_str()
                    || e.record_type == "CNAME"
                    || (p.record_type == RecordType::CNAME
                        && matches!(e.record_type.as_str(), "A" | "AAAA"))
            }
            Purpose::Dkim => e.record_type == "TXT",
            Purpose::Dmarc => {
                e.record_type == "TXT"
                    && plan::normalize_txt(&e.content)
                        .to_ascii_lowercase()
                        .starts_with("v=dmarc1")
            }
            // Never replace anyone's MX or other apex TXT records.
            Purpose::Mx | Purpose::Spf => false,
        })
        .collect()
}

pub fn diff(planned: &[PlannedRecord], existing: &[ExistingRecord]) -> ChangeSet {
    let mut changes = ChangeSet::default();
    for p in planned {
        if existing.iter().any(|e| matches(p, e)) {
            continue;
        }
        if p.purpose == Purpose::Spf {
            let current = existing.iter().find(|e| {
                same_name(&p.name, &e.name)
                    && e.record_type == "TXT"
                    && plan::is_spf(&plan::normalize_txt(&e.content))
            });
            match current {
                Some(e) => {
                    let ours: Vec<String> = plan::spf_terms(&p.content)
                        .into_iter()
                        .filter(|t| t.starts_with("ip4:") || t.starts_with("ip6:"))
                        .collect();
                    if let Some(merged) = plan::merge_spf(&plan::normalize_txt(&e.content), &ours) {
                        changes.patches.push((e.id.clone(), new(p, merged)));
                    }
                }
                None => changes.posts.push(new(p, p.content.clone())),
            }
            continue;
        }
        let mut olds = replaceable(p, existing).into_iter();
        match olds.next() {
            // Patching in place keeps the record id, unless the type
            // changes: Cloudflare no longer allows that (deprecated
            // 2026-06-30), so such a record is deleted and posted anew.
            Some(first) if first.record_type == p.record_type.as_str() => {
                changes
                    .patches
                    .push((first.id.clone(), new(p, p.content.clone())));
            }
            Some(first) => {
                changes.deletes.push(first.id.clone());
                changes.posts.push(new(p, p.content.clone()));
            }
            None => changes.posts.push(new(p, p.content.clone())),
        }
        changes.deletes.extend(olds.map(|e| e.id.clone()));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::name::DomainName;
    use crate::domains::plan::{DmarcPolicy, Inputs, Server};

    fn planned() -> Vec<PlannedRecord> {
        let server = Server {
            ipv4: "203.0.113.7".parse().unwrap(),
            ipv6: None,
            mail_host_pattern: "mail.{domain}".into(),
            tracking_target: None,
        };
        let d = DomainName::parse("acme.example").unwrap();
        plan::plan(
            &server,
            &Inputs {
                domain: &d,
                selector: "ig202611",
                dkim_public_b64: "KEY",
                dmarc: DmarcPolicy::None,
                tracking_domain: None,
            },
        )
    }

    fn rec(id: &str, t: &str, name: &str, content: &str) -> ExistingRecord {
        ExistingRecord {
            id: id.into(),
            record_type: t.into(),
            name: name.into(),
            content: content.into(),
            priority: None,
            comment: None,
        }
    }

    /// The zone as it is after `changes` are applied (ids are made up).
    fn apply(mut zone: Vec<ExistingRecord>, changes: &ChangeSet) -> Vec<ExistingRecord> {
        zone.retain(|e| !changes.deletes.contains(&e.id));
        for (id, n) in &changes.patches {
            let e = zone.iter_mut().find(|e| &e.id == id).unwrap();
            e.content = n.content.clone();
        }
        for (i, n) in changes.posts.iter().enumerate() {
            // Cloudflare echoes TXT content quoted.
            let content = match n.record_type {
                RecordType::TXT => format!("\"{}\"", n.content),
                _ => n.content.clone(),
            };
            zone.push(ExistingRecord {
                priority: n.priority,
                ..rec(
                    &format!("new{i}"),
                    n.record_type.as_str(),
                    &n.name,
                    &content,
                )
            });
        }
        zone
    }

    #[test]
    fn an_empty_zone_gets_every_record_once_and_then_nothing() {
        let plan = planned();
        let changes = diff(&plan, &[]);
        assert_eq!(changes.posts.len(), plan.len());
        assert!(changes.patches.is_empty() && changes.deletes.is_empty());
        let zone = apply(Vec::new(), &changes);
        assert!(diff(&plan, &zone).is_empty(), "{:?}", diff(&plan, &zone));
    }

    #[test]
    fn foreign_records_are_kept_and_spf_is_merged() {
        let zone = vec![
            rec("caa", "CAA", "acme.example", "0 issue \"letsencrypt.org\""),
            rec("https", "HTTPS", "acme.example", "1 . alpn=h2"),
            rec(
                "verify",
                "TXT",
                "acme.example",
                "\"google-site-verification=abc\"",
            ),
            rec(
                "spf",
                "TXT",
                "acme.example",
                "\"v=spf1 include:_spf.google.com ~all\"",
            ),
            ExistingRecord {
                priority: Some(1),
                ..rec("mx-google", "MX", "acme.example", "aspmx.l.google.com")
            },
            rec(
                "old-dmarc",
                "TXT",
                "_dmarc.acme.example",
                "\"v=DMARC1; p=reject\"",
            ),
            rec("cname", "CNAME", "mail.acme.example", "elsewhere.example"),
        ];
        let changes = diff(&planned(), &zone);
        let touched: Vec<&str> = changes
            .deletes
            .iter()
            .map(String::as_str)
            .chain(changes.patches.iter().map(|(id, _)| id.as_str()))
            .collect();
        for foreign in ["caa", "https", "verify", "mx-google"] {
            assert!(!touched.contains(&foreign), "{foreign} must be left alone");
        }
        let spf = changes.patches.iter().find(|(id, _)| id == "spf").unwrap();
        assert_eq!(
            spf.1.content,
            "v=spf1 include:_spf.google.com ip4:203.0.113.7 ~all"
        );
        assert!(
            !changes.posts.iter().any(|n| plan::is_spf(&n.content)),
            "never a second SPF record"
        );
        assert!(
            changes
                .patches
                .iter()
                .any(|(id, n)| id == "old-dmarc" && n.content.contains("p=none"))
        );
        assert!(changes.deletes.contains(&"cname".to_owned()));
        assert!(changes.posts.iter().any(|n| n.record_type == RecordType::A));
        assert!(diff(&planned(), &apply(zone, &changes)).is_empty());
    }

    #[test]
    fn split_quoted_txt_counts_as_published() {
        let dkim = planned()
            .into_iter()
            .find(|p| p.purpose == Purpose::Dkim)
            .unwrap();
        let split = rec("d", "TXT", &dkim.name, "\"v=DKIM1; k=rsa; \" \"p=KEY\"");
        assert!(matches(&dkim, &split));
        let other = rec("d", "TXT", &dkim.name, "\"v=DKIM1; k=rsa; p=OLD\"");
        assert!(!matches(&dkim, &other));
    }
}
