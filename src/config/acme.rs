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
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
    /// Flags (with their environment) over the file, over the defaults.
    /// Where the certificates go is `tls_dir` (`super::certs`).
    pub fn resolve(args: &AcmeArgs, file: &FileConfig) -> Result<Self, ConfigError> {
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
        Ok(mode)
    }

    pub fn acme(&self) -> Option<&AcmeSettings> {
        match self {
            Self::Acme(a) => Some(a),
            Self::SelfSigned => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: &str, args: AcmeArgs) -> Result<Certificates, ConfigError> {
        let file: FileConfig = toml::from_str(file).unwrap();
        Certificates::resolve(&args, &file)
    }

    fn acme(file: &str) -> AcmeSettings {
        match resolve(file, AcmeArgs::default()).unwrap() {
            Certificates::Acme(a) => a,
            other => panic!("{file}: {other:?}"),
        }
    }

    #[test]
    fn self_signed_by_default_and_letsencrypt_for_acme() {
        let mode = resolve("", AcmeArgs::default()).unwrap();
        assert_eq!(mode, Certificates::SelfSigned);
        let args = AcmeArgs {
            certificates: Some("acme".into()),
            ..Default::default()
        };
        let mode = resolve("certificates = \"self-signed\"", args).unwrap();
        let a = mode.acme().unwrap();
        assert_eq!(a.directory_url, LETSENCRYPT);
        assert_eq!(a.http_listen, "[::]:80".parse().unwrap());
        assert_eq!((a.contact.as_deref(), a.ca_file.as_deref()), (None, None));
    }

    #[test]
    fn acme_settings_come_from_the_file_with_the_letsencrypt_words() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let root = rcgen::CertificateParams::new(Vec::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(ca.path(), root.pem()).unwrap();
        let a = acme(&format!(
            "certificates = \"acme\"\nacme_directory_url = \"letsencrypt-staging\"\n\
             acme_email = \"Ops@Example.com\"\nacme_ca_file = \"{}\"\n\
             acme_http_listen = \"127.0.0.1:5002\"",
            ca.path().display()
        ));
        assert_eq!(a.directory_url, LETSENCRYPT_STAGING);
        assert_eq!(a.contact.as_deref(), Some("mailto:ops@example.com"));
        assert_eq!(a.ca_file.as_deref(), Some(ca.path()));
        assert_eq!(a.http_listen.port(), 5002);
        let own = "https://ca.internal:14000/dir";
        let a = acme(&format!(
            "certificates = \"acme\"\nacme_directory_url = \"{own}\""
        ));
        assert_eq!(a.directory_url, own);
        assert_eq!(
            acme("certificates = \"acme\"\nacme_directory_url = \"letsencrypt\"").directory_url,
            LETSENCRYPT
        );
    }

    #[test]
    fn bad_certificate_settings_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("roots.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let missing = dir.path().join("missing.pem");
        for (file, setting, says) in [
            ("certificates = \"letsencrypt\"", "certificates", "neither"),
            (
                "acme_directory_url = \"http://ca.test/dir\"",
                "acme_directory_url",
                "https",
            ),
            (
                "acme_directory_url = \"staging\"",
                "acme_directory_url",
                "https",
            ),
            ("acme_email = \"not-an-address\"", "acme_email", ""),
            (
                &format!("acme_ca_file = \"{}\"", not_pem.display()),
                "acme_ca_file",
                "no CERTIFICATE",
            ),
            (
                &format!("acme_ca_file = \"{}\"", missing.display()),
                "acme_ca_file",
                "cannot read",
            ),
        ] {
            match resolve(file, AcmeArgs::default()) {
                Err(ConfigError::Invalid {
                    setting: s,
                    message,
                }) => {
                    assert_eq!(s, setting, "{file}");
                    assert!(message.contains(says), "{file}: {message}");
                }
                Err(other) => panic!("{file}: {other}"),
                Ok(r) => panic!("{file}: accepted as {r:?}"),
            }
        }
        let typo: Result<FileConfig, _> = toml::from_str("acme_http_listen = \"port 80\"");
        assert!(typo.is_err(), "a listen address is parsed when read");
    }
}
