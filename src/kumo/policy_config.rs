//! `inboxgrove.json`, the settings file `kumo-policy/init.lua` reads,
//! rendered from the settings the server itself runs on, so the two cannot
//! disagree: the control URL is the control listener, the mail root is the
//! one deliveries and Dovecot use, the certificate is the server's, and
//! KumoMTA's HTTP listener is the one `kumo_http_url` bumps the config
//! epoch at. Keys and defaults: `kumo-policy/README.md`, "Settings".

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::Settings;
use crate::domains::name::DomainName;
use crate::tls::Manifest;
use crate::tls::mail;

/// What the settings do not say: where KumoMTA's own files are, and its
/// SMTP listeners.
#[derive(Debug, Clone)]
pub struct PolicyFiles {
    /// The copy of the control secret KumoMTA reads (group `kumod`, 0640).
    pub secret_file: PathBuf,
    pub inbound_listen: SocketAddr,
    pub submission_listen: SocketAddr,
    pub spool_dir: PathBuf,
    pub log_dir: PathBuf,
    pub shaping_file: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyConfigError {
    #[error(
        "kumo_http_url is empty, so mailbox changes would reach KumoMTA only when its caches expire; set it to KumoMTA's HTTP listener (e.g. http://127.0.0.1:8000)"
    )]
    NoHttpListener,
    #[error(
        "kumo_http_url must be http://<loopback address>:<port> (KumoMTA's admin API must not listen beyond this machine), not '{0}'"
    )]
    BadHttpListener(String),
    #[error(
        "'{0}' is not a host name for KumoMTA's banner; pass --hostname with the name this server's address resolves back to, like mail.example.com"
    )]
    BadHostname(String),
    #[error("cannot read the certificates: {0}")]
    Certificates(String),
}

/// The JSON `init.lua` loads, for `settings` and `files`.
pub fn render(settings: &Settings, files: &PolicyFiles) -> Result<Value, PolicyConfigError> {
    let hostname = hostname(settings)?;
    let manifest = Manifest::load(&settings.tls_dir)
        .map_err(|e| PolicyConfigError::Certificates(e.to_string()))?;
    // One certificate for both listeners: KumoMTA cannot choose by name
    // (see `mail::default_cert`). A renewal keeps the bundle's paths, which
    // kumod reads again within five minutes (`crate::tls::reload`).
    let cert = mail::default_cert(settings, &manifest, &hostname);
    Ok(json!({
        "control_url": format!("{}/kumo/v1", settings.control_url()),
        "control_secret_file": files.secret_file,
        "control_timeout": "5s",
        "hostname": hostname,
        "mail_root": absolute(&settings.mail.root),
        "tls_certificate": absolute(&cert.cert),
        "tls_private_key": absolute(&cert.key),
        "inbound_listen": files.inbound_listen.to_string(),
        "submission_listen": files.submission_listen.to_string(),
        "http_listen": http_listen(settings.kumo_http_url.as_deref())?.to_string(),
        "spool_dir": files.spool_dir,
        "log_dir": files.log_dir,
        "shaping_file": files.shaping_file,
    }))
}

/// KumoMTA reads these paths from its own working directory.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The address of `kumo_http_url`, which must be a loopback one.
fn http_listen(url: Option<&str>) -> Result<SocketAddr, PolicyConfigError> {
    let url = url
        .filter(|u| !u.is_empty())
        .ok_or(PolicyConfigError::NoHttpListener)?;
    let bad = || PolicyConfigError::BadHttpListener(url.to_owned());
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .ok_or_else(bad)?;
    let addr: SocketAddr = authority.parse().map_err(|_| bad())?;
    if !addr.ip().is_loopback() {
        return Err(bad());
    }
    Ok(addr)
}

/// The same name `doctor` expects in the banner and the PTR.
fn hostname(settings: &Settings) -> Result<String, PolicyConfigError> {
    let name = settings.doctor.mail_hostname();
    DomainName::parse(&name)
        .map(|d| d.as_str().to_owned())
        .map_err(|_| PolicyConfigError::BadHostname(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_listener_is_the_loopback_address_kumo_http_url_names() {
        assert_eq!(
            http_listen(Some("http://127.0.0.1:8000")),
            Ok("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            http_listen(Some("http://[::1]:8001/")),
            Ok("[::1]:8001".parse().unwrap())
        );
        assert_eq!(
            http_listen(Some("")),
            Err(PolicyConfigError::NoHttpListener)
        );
        assert_eq!(http_listen(None), Err(PolicyConfigError::NoHttpListener));
        for bad in [
            "http://0.0.0.0:8000",
            "http://203.0.113.5:8000",
            "https://127.0.0.1:8000",
            "http://localhost:8000",
            "127.0.0.1:8000",
        ] {
            assert_eq!(
                http_listen(Some(bad)),
                Err(PolicyConfigError::BadHttpListener(bad.into())),
                "{bad}"
            );
        }
    }
}
