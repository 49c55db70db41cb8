//! Which certificate files the mail services present: KumoMTA on 25/587
//! and Dovecot on 143/993, as `kumo-config` and `dovecot-config` render
//! them, and as `doctor` and the domain page judge them.
//!
//! A bundle of `tls_dir` wins; without one, the configured `tls_cert`,
//! else the self-signed pair of `<tls_dir>/self-signed/`.
//! (Once the ACME client's `certificates = "acme"` setting is in, it is
//! what selects the bundles here.)

use std::path::{Path, PathBuf};

use super::{Bundle, Manifest};
use crate::config::Settings;
use crate::dovecot::tls as self_signed;

/// Where a mail certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Bundle(Bundle),
    /// `tls_cert`/`tls_key`.
    Configured,
    /// The pair `dovecot-config` makes in `<tls_dir>/self-signed/`.
    SelfSigned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub source: Source,
}

/// What a validating peer makes of a mail host that no bundle covers
/// (issue 13, [kumod]); the domain page and `doctor` say it.
pub const UNCOVERED: &str = "sequencers (Instantly, Smartlead) refuse the self-signed certificate it gets on 587/993, and mail from other hosted mailboxes never arrives, because KumoMTA validates the certificate when it delivers to it";

/// A name served with a certificate of its own (Dovecot's `local_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCert {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The bundle a listener presents when it cannot choose by name.
///
/// KumoMTA's ESMTP listener presents exactly one: it builds its rustls
/// config with `with_single_cert` (`make_server_config`,
/// `crates/kumo-server-common/src/tls_helpers.rs`), and its `via`/`peer`
/// overrides go by IP address, not by the name asked for
/// (`GenericEsmtpListenerParams`, `crates/kumod/src/smtp_server.rs`). So
/// this is the bundle covering the banner name, else the one with the most
/// names (the ACME client puts up to 100 mail hosts on one), so that as
/// many `mail.<domain>` as possible verify for KumoMTA's own egress and
/// the sequencers.
pub fn default_bundle<'a>(manifest: &'a Manifest, hostname: &str) -> Option<&'a Bundle> {
    manifest.for_host(hostname).or_else(|| {
        // The first of the largest: `max_by_key` would take the last.
        let most = manifest.bundles.iter().map(|b| b.names.len()).max()?;
        manifest.bundles.iter().find(|b| b.names.len() == most)
    })
}

/// The certificate of [`default_bundle`], else the configured one, else
/// the self-signed pair.
pub fn default_cert(settings: &Settings, manifest: &Manifest, hostname: &str) -> MailCert {
    if let Some(b) = default_bundle(manifest, hostname) {
        return MailCert {
            cert: b.chain_path(&settings.tls_dir),
            key: b.key_path(&settings.tls_dir),
            source: Source::Bundle(b.clone()),
        };
    }
    match &settings.tls {
        Some((cert, key)) => MailCert {
            cert: cert.clone(),
            key: key.clone(),
            source: Source::Configured,
        },
        None => {
            let pair = self_signed::default_paths(&settings.tls_dir);
            MailCert {
                cert: pair.cert,
                key: pair.key,
                source: Source::SelfSigned,
            }
        }
    }
}

/// Every name a bundle covers that `default` does not, with that
/// bundle's files, for a service that chooses by SNI (Dovecot).
pub fn named_certs(tls_dir: &Path, manifest: &Manifest, default: &MailCert) -> Vec<NamedCert> {
    let covered = |name: &str| match &default.source {
        Source::Bundle(b) => b.covers(name),
        Source::Configured | Source::SelfSigned => false,
    };
    let mut named: Vec<NamedCert> = Vec::new();
    for bundle in &manifest.bundles {
        for name in &bundle.names {
            // The first bundle naming a host serves it, as `for_host` says.
            if covered(name) || named.iter().any(|n| n.name.eq_ignore_ascii_case(name)) {
                continue;
            }
            named.push(NamedCert {
                name: name.clone(),
                cert: bundle.chain_path(tls_dir),
                key: bundle.key_path(tls_dir),
            });
        }
    }
    named
}
