//! The certificates the mail services present: read from the files the
//! configuration names (today the `tls_cert` setting or the self-signed
//! pair of `src/dovecot/tls.rs`; the ACME certificates later add their
//! files to the same list) and from what ports 587 and 993 serve.

use std::path::Path;

use super::Check;
use crate::tls::x509::parse;
use chrono::{DateTime, Duration, Utc};

/// Certificates are renewed 30 days before expiry (issue 13, point 4); a
/// fortnight left means renewal has failed for two weeks.
const EXPIRY_WARNING: Duration = Duration::days(14);

/// What a validating client sees in a self-signed certificate.
pub const SELF_SIGNED_CONSEQUENCE: &str = "it is self-signed: sequencers (Instantly, Smartlead) refuse it on 587/993, and mail between two hosted mailboxes never arrives because KumoMTA validates the peer certificate when it delivers to mail.<domain> on this host";

/// The first certificate of a PEM file: the leaf of a chain.
pub fn load_leaf(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    pem::parse_many(&text)
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .ok_or_else(|| format!("{} holds no certificate", path.display()))
}

/// The check of one configured certificate file.
pub fn file_check(name: &str, path: &Path, now: DateTime<Utc>) -> Check {
    let leaf = match load_leaf(path) {
        Ok(der) => der,
        Err(e) => {
            return Check::fail(
                name,
                e,
                "Set tls_cert and tls_key to the mail host's certificate, or run `inboxgrove dovecot-config` once to make the self-signed pair.",
            );
        }
    };
    judge(name, &path.display().to_string(), &leaf, now)
}

/// Expiry and self-signature of a certificate, `what` naming where it
/// came from.
pub fn judge(name: &str, what: &str, der: &[u8], now: DateTime<Utc>) -> Check {
    let info = match parse(der) {
        Ok(i) => i,
        Err(e) => {
            return Check::fail(
                name,
                format!("{what}: {e}"),
                "Replace it with a PEM certificate chain for the mail hosts.",
            );
        }
    };
    let left = info.not_after - now;
    let expiry = info.not_after.format("%Y-%m-%d %H:%M UTC");
    if left <= Duration::zero() {
        return Check::fail(
            name,
            format!("{what} expired on {expiry}"),
            "Renew the certificate and reload KumoMTA and Dovecot.",
        );
    }
    if info.self_signed {
        return Check::warn(
            name,
            format!("{what} expires {expiry}, but {SELF_SIGNED_CONSEQUENCE}"),
            "Install a certificate from a public CA (ACME) for the admin host and every mail.<domain>.",
        );
    }
    if left < EXPIRY_WARNING {
        return Check::warn(
            name,
            format!("{what} expires in {} days ({expiry})", left.num_days()),
            "Renew the certificate now; automatic renewal has not happened.",
        );
    }
    Check::ok(
        name,
        format!("{what} expires {expiry} ({} days)", left.num_days()),
    )
}

/// Whether a port serves the configured certificate.
pub fn served_check(
    name: &str,
    served: &[u8],
    configured: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Check {
    match configured {
        Some(want) if want != served => Check::warn(
            name,
            "the certificate served is not the configured one".to_owned(),
            "Point the service's TLS settings at the configured certificate and reload it.",
        ),
        _ => judge(name, "the certificate served", served, now),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rcgen::{CertificateParams, KeyPair};

    use super::*;
    use crate::doctor::Status;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn params(until: DateTime<Utc>) -> CertificateParams {
        let mut p = CertificateParams::new(vec!["mail.acme.example".to_owned()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2026, 1, 1);
        p.not_after = rcgen::date_time_ymd(
            until.format("%Y").to_string().parse().unwrap(),
            until.format("%m").to_string().parse().unwrap(),
            until.format("%d").to_string().parse().unwrap(),
        );
        p
    }

    fn self_signed(until: DateTime<Utc>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        params(until).self_signed(&key).unwrap().der().to_vec()
    }

    fn ca_signed(until: DateTime<Utc>) -> Vec<u8> {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = params(until);
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "mail.acme.example");
        leaf.signed_by(&key, &ca, &ca_key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_expiry_and_self_signature() {
        let info = parse(&self_signed(at(2027, 3, 4))).unwrap();
        assert_eq!(info.not_after, at(2027, 3, 4));
        assert!(info.self_signed);
        assert!(!parse(&ca_signed(at(2027, 3, 4))).unwrap().self_signed);
        assert!(parse(b"not a certificate").is_err());

        let mut numbered = params(at(2027, 3, 4));
        numbered.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x04, 0xa1, 0xf3]));
        let der = numbered.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(parse(der.der()).unwrap().serial, "4a1f3");
    }

    #[test]
    fn each_path_of_the_certificate_check() {
        let now = at(2026, 12, 1);
        let ok = judge("c", "x", &ca_signed(at(2027, 3, 1)), now);
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(ok.fix.is_none());
        let soon = judge("c", "x", &ca_signed(at(2026, 12, 8)), now);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.detail.contains("in 7 days"), "{soon:?}");
        let expired = judge("c", "x", &ca_signed(at(2026, 11, 30)), now);
        assert_eq!(expired.status, Status::Fail);
        // The self-signed warning names what it breaks (issue 13, [kumod]).
        let own = judge("c", "x", &self_signed(at(2027, 3, 1)), now);
        assert_eq!(own.status, Status::Warn);
        assert!(
            own.detail
                .contains("mail between two hosted mailboxes never arrives"),
            "{own:?}"
        );
    }

    #[test]
    fn a_missing_or_foreign_file_fails_and_another_served_certificate_warns() {
        let dir = tempfile::tempdir().unwrap();
        let now = at(2026, 12, 1);
        let gone = file_check("c", &dir.path().join("none.pem"), now);
        assert_eq!(gone.status, Status::Fail);
        assert!(gone.fix.is_some());
        let der = ca_signed(at(2027, 3, 1));
        let path = dir.path().join("cert.pem");
        std::fs::write(
            &path,
            pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())),
        )
        .unwrap();
        assert_eq!(file_check("c", &path, now).status, Status::Ok);
        assert_eq!(load_leaf(&path).unwrap(), der);
        let other = ca_signed(at(2027, 3, 1));
        assert_eq!(
            served_check("s", &other, Some(&der), now).status,
            Status::Warn
        );
        assert_eq!(served_check("s", &der, Some(&der), now).status, Status::Ok);
    }
}
