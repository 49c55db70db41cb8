//! Where the certificates come from (issue 13, point 4): self-signed, as
//! before, or an ACME CA (RFC 8555), and where they are written.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{ConfigError, FileConfig};
use crate::types::EmailAddress;

pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

#[derive(Debug, Default, Clone, Args)]
pub struct AcmeArgs {
    /// `self-signed` (nothing contacts a CA) or `acme` [default: self-signed]
    #[arg(long, env = "INBOXGROVE_CERTIFICATES")]
    pub certificates: Option<String>,
    /// The ACME directory: an https URL, or `letsencrypt` /
    /// `letsencrypt-staging` [default: letsencrypt]
    #[arg(long, env = "INBOXGROVE_ACME_DIRECTORY_URL")]
    pub acme_directory_url: Option<String>,
    /// Contact address given to the CA for expiry notices [default: none]
    #[arg(long, env = "INBOXGROVE_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// PEM root certificate the ACME client trusts for the directory's
    /// HTTPS, for a private CA [default: the system's roots]
    #[arg(long, env = "INBOXGROVE_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// Where the HTTP-01 responder listens [default: [::]:80]
    #[arg(long, env = "INBOXGROVE_ACME_HTTP_LISTEN")]
    pub acme_http_listen: Option<SocketAddr>,
    /// Where certificates are written for KumoMTA, Dovecot and the public
    /// listener [default: <data-dir>/certs]
    #[arg(long, env = "INBOXGROVE_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
}

/// How certificates are obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificates {
    SelfSigned,
    Acme(AcmeSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub directory_url: String,
    /// `mailto:` URL (RFC 8555 §7.3: contact URLs).
    pub contact: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub http_listen: SocketAddr,
}

fn invalid(setting: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { setting, message }
}

/// `letsencrypt`, `letsencrypt-staging` or an https URL.
pub fn directory_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match raw {
        "letsencrypt" => return Ok(LETSENCRYPT.to_owned()),
        "letsencrypt-staging" => return Ok(LETSENCRYPT_STAGING.to_owned()),
        _ => {}
    }
    match reqwest::Url::parse(raw) {
        // RFC 8555 §6.1: all ACME communication is over HTTPS.
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(raw.to_owned()),
        _ => Err(format!(
            "'{raw}' is not an https URL; give the CA's directory URL (like {LETSENCRYPT}), or letsencrypt or letsencrypt-staging"
        )),
    }
}

/// A readable PEM file with at least one certificate.
fn ca_file(path: &Path) -> Result<PathBuf, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = pem::parse_many(&bytes)
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .count();
    if certs == 0 {
        return Err(format!(
            "{} holds no CERTIFICATE block; give the PEM root certificate of the CA",
            path.display()
        ));
    }
    Ok(path.to_owned())
}

impl Certificates {
    /// Flags (with their environment) over the file, over the defaults;
    /// returns the mode and `tls_dir`.
    pub fn resolve(
        args: &AcmeArgs,
        file: &FileConfig,
        data_dir: &Path,
    ) -> Result<(Self, PathBuf), ConfigError> {
        let tls_dir = args
            .tls_dir
            .clone()
            .or(file.tls_dir.clone())
            .unwrap_or_else(|| data_dir.join("certs"));
        if tls_dir.as_os_str().is_empty() {
            return Err(invalid("tls_dir", "give a directory".into()));
        }
        let directory = args
            .acme_directory_url
            .clone()
            .or(file.acme_directory_url.clone())
            .map(|raw| directory_url(&raw).map_err(|m| invalid("acme_directory_url", m)))
            .transpose()?;
        let contact = args
            .acme_email
            .clone()
            .or(file.acme_email.clone())
            .map(|raw| {
                EmailAddress::parse(&raw)
                    .map(|e| format!("mailto:{}", e.as_str()))
                    .map_err(|e| invalid("acme_email", e.0))
            })
            .transpose()?;
        let ca = args
            .acme_ca_file
            .clone()
            .or(file.acme_ca_file.clone())
            .map(|p| ca_file(&p).map_err(|m| invalid("acme_ca_file", m)))
            .transpose()?;
        let http_listen = args
            .acme_http_listen
            .or(file.acme_http_listen)
            // Dual-stack on Linux: IPv4 validation arrives here too.
            .unwrap_or((Ipv6Addr::UNSPECIFIED, 80).into());
        let mode = args.certificates.clone().or(file.certificates.clone());
        let mode = match mode.as_deref().map(str::trim) {
            None | Some("self-signed") => Self::SelfSigned,
            Some("acme") => Self::Acme(AcmeSettings {
                directory_url: directory.unwrap_or_else(|| LETSENCRYPT.to_owned()),
                contact,
                ca_file: ca,
                http_listen,
            }),
            Some(other) => {
                return Err(invalid(
                    "certificates",
                    format!("'{other}' is neither self-signed nor acme"),
                ));
            }
        };
        Ok((mode, tls_dir))
    }

    pub fn acme(&self) -> Option<&AcmeSettings> {
        match self {
            Self::Acme(a) => Some(a),
            Self::SelfSigned => None,
        }
    }
}
