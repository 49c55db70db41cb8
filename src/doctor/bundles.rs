//! The ACME certificates of `tls_dir`, as the manifest lists them: each
//! bundle's expiry, and whether every active domain's mail host is covered
//! by a bundle, and by the one KumoMTA presents.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Check, cert};
use crate::tls::mail::{self, UNCOVERED};
use crate::tls::{Bundle, Manifest};

const ISSUE: &str = "Issue certificates for them (the ACME client requests one when a domain becomes active; check its log), then the reload service gives them to KumoMTA and Dovecot.";

/// An active domain and its mail host.
pub struct MailHost {
    pub domain: String,
    pub host: String,
}

/// The checks, and the chain KumoMTA and Dovecot present by default
/// ([`mail::default_bundle`]) when there is a bundle.
pub fn checks(
    tls_dir: &Path,
    hostname: &str,
    hosts: Option<&[MailHost]>,
    now: DateTime<Utc>,
) -> (Vec<Check>, Option<PathBuf>) {
    let manifest = match Manifest::load(tls_dir) {
        Ok(m) => m,
        Err(e) => {
            let check = Check::fail(
                "certificates",
                e.to_string(),
                "Restore certificates.json from a backup or remove it; the ACME client issues every certificate again.",
            );
            return (vec![check], None);
        }
    };
    let mut checks: Vec<Check> = manifest
        .bundles
        .iter()
        .map(|b| {
            let name = format!("certificate_{}", b.id);
            cert::file_check(&name, &b.chain_path(tls_dir), now)
        })
        .collect();
    let default = mail::default_bundle(&manifest, hostname);
    if let Some(hosts) = hosts {
        checks.push(coverage(&manifest, default, hosts));
    }
    (checks, default.map(|b| b.chain_path(tls_dir)))
}

fn coverage(manifest: &Manifest, default: Option<&Bundle>, hosts: &[MailHost]) -> Check {
    const NAME: &str = "certificate_coverage";
    if hosts.is_empty() {
        return Check::ok(NAME, "no domain is active yet".into());
    }
    let missing: Vec<&MailHost> = hosts
        .iter()
        .filter(|h| manifest.for_host(&h.host).is_none())
        .collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|h| format!("{} ({})", h.host, h.domain))
            .collect();
        return Check::warn(
            NAME,
            format!("no certificate covers {}: {UNCOVERED}", names.join(", ")),
            ISSUE,
        );
    }
    // Covered, but KumoMTA presents one bundle for every name.
    let elsewhere: Vec<&str> = hosts
        .iter()
        .filter(|h| !default.is_some_and(|b| b.covers(&h.host)))
        .map(|h| h.host.as_str())
        .collect();
    if let (Some(b), false) = (default, elsewhere.is_empty()) {
        return Check::warn(
            NAME,
            format!(
                "KumoMTA presents one certificate, bundle {}, which does not cover {}: mail to them from other hosted mailboxes fails KumoMTA's certificate check (IMAP is fine)",
                b.id,
                elsewhere.join(", ")
            ),
            "Keep every mail host on one certificate (up to 100 names).",
        );
    }
    Check::ok(
        NAME,
        format!(
            "every active domain's mail host has a certificate ({} hosts)",
            hosts.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::doctor::Status;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    /// Installs a CA-signed bundle as the ACME client does.
    fn install(dir: &Path, id: &str, names: &[&str], until: DateTime<Utc>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names.clone()).unwrap();
        leaf.not_before = rcgen::date_time_ymd(2026, 1, 1);
        let (y, m, d) = (until.format("%Y"), until.format("%m"), until.format("%d"));
        leaf.not_after = rcgen::date_time_ymd(
            y.to_string().parse().unwrap(),
            m.to_string().parse().unwrap(),
            d.to_string().parse().unwrap(),
        );
        let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        let bundle = Bundle {
            id: id.into(),
            names,
            not_after: until,
            issued_at: at(2026, 1, 1),
        };
        let mut manifest = Manifest::load(dir).unwrap();
        manifest
            .install(dir, bundle, &cert.pem(), &key.serialize_pem())
            .unwrap();
    }

    fn host(domain: &str) -> MailHost {
        MailHost {
            domain: domain.into(),
            host: format!("mail.{domain}"),
        }
    }

    fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn each_bundle_is_judged_by_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let now = at(2026, 12, 1);
        install(dir.path(), "fresh", &["mail.a.test"], at(2027, 2, 1));
        install(dir.path(), "soon", &["mail.b.test"], at(2026, 12, 10));
        install(dir.path(), "gone", &["mail.c.test"], at(2026, 11, 20));
        let (checks, default) = checks(dir.path(), "mail.a.test", None, now);
        assert_eq!(by_name(&checks, "certificate_fresh").status, Status::Ok);
        let soon = by_name(&checks, "certificate_soon");
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.detail.contains("in 9 days"), "{soon:?}");
        assert_eq!(by_name(&checks, "certificate_gone").status, Status::Fail);
        assert_eq!(default, Some(dir.path().join("live/fresh/fullchain.pem")));
        assert!(checks.iter().all(|c| c.name != "certificate_coverage"));
    }

    #[test]
    fn uncovered_mail_hosts_are_named_with_what_they_break() {
        let dir = tempfile::tempdir().unwrap();
        let now = at(2026, 12, 1);
        let hosts = [host("a.test"), host("b.test"), host("c.test")];
        let (none, default) = checks(dir.path(), "mail.a.test", Some(&hosts), now);
        assert_eq!(default, None);
        let c = by_name(&none, "certificate_coverage");
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail
                .contains("mail.a.test (a.test), mail.b.test (b.test)"),
            "{c:?}"
        );
        assert!(c.detail.contains("never arrives"), "{c:?}");

        install(
            dir.path(),
            "mail-1",
            &["mail.a.test", "mail.b.test"],
            at(2027, 2, 1),
        );
        let (some, _) = checks(dir.path(), "mail.a.test", Some(&hosts), now);
        let c = by_name(&some, "certificate_coverage");
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("mail.c.test (c.test)"), "{c:?}");
        assert!(!c.detail.contains("mail.a.test"), "{c:?}");

        // All covered, one outside the bundle KumoMTA presents.
        install(dir.path(), "mail-2", &["mail.c.test"], at(2027, 2, 1));
        let (split, _) = checks(dir.path(), "mail.a.test", Some(&hosts), now);
        let c = by_name(&split, "certificate_coverage");
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail.contains("bundle mail-1") && c.detail.contains("mail.c.test"),
            "{c:?}"
        );

        install(
            dir.path(),
            "mail-1",
            &["mail.a.test", "mail.b.test", "mail.c.test"],
            at(2027, 2, 1),
        );
        let (all, _) = checks(dir.path(), "mail.a.test", Some(&hosts), now);
        assert_eq!(by_name(&all, "certificate_coverage").status, Status::Ok);
        let (idle, _) = checks(dir.path(), "mail.a.test", Some(&[]), now);
        assert_eq!(by_name(&idle, "certificate_coverage").status, Status::Ok);
    }

    #[test]
    fn an_unreadable_manifest_fails() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("certificates.json"), "[").unwrap();
        let (checks, default) = checks(dir.path(), "mail.a.test", Some(&[]), at(2026, 12, 1));
        assert_eq!(default, None);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Status::Fail);
        assert!(
            checks[0].detail.contains("certificates.json"),
            "{:?}",
            checks[0]
        );
    }
}
