//! Where the certificate bundles are (`tls_dir`, the layout of
//! [`crate::tls`]) and whether the public listener serves HTTPS with them
//! (`public_tls`); and the certificate configured by hand (`tls_cert`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Clone, Args)]
pub struct CertArgs {
    /// The certificate bundles (certificates.json, live/<id>/…) the ACME
    /// client writes and KumoMTA, Dovecot and the public listener read
    /// [default: <data-dir>/certs]
    #[arg(long, env = "INBOXGROVE_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// HTTPS on the public listener: `acme` serves the bundle covering the
    /// name asked for (a self-signed pair until one is issued) [default: none]
    #[arg(long, env = "INBOXGROVE_PUBLIC_TLS")]
    pub public_tls: Option<PublicTls>,
}

/// What the public listener (admin UI and API) speaks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PublicTls {
    /// Plain HTTP, for a reverse proxy in front or a loopback listener.
    #[default]
    None,
    /// HTTPS with the ACME bundles of `tls_dir`.
    Acme,
}

/// `tls_dir` from the flag, the file, else `<data_dir>/certs`. Absolute,
/// since KumoMTA and Dovecot are handed paths inside it and each reads
/// them from its own working directory.
pub fn resolve_tls_dir(
    args: &CertArgs,
    file: Option<PathBuf>,
    data_dir: &Path,
) -> Result<PathBuf, ConfigError> {
    let dir = args
        .tls_dir
        .clone()
        .or(file)
        .unwrap_or_else(|| data_dir.join("certs"));
    if dir.as_os_str().is_empty() {
        return Err(ConfigError::Invalid {
            setting: "tls_dir",
            message: "give a directory".into(),
        });
    }
    std::path::absolute(&dir).map_err(|e| ConfigError::Invalid {
        setting: "tls_dir",
        message: format!("{}: {e}", dir.display()),
    })
}

/// A certificate configured by hand, presented by KumoMTA and Dovecot while
/// `tls_dir` holds no bundle.
#[derive(Debug, Default, Clone, Args)]
pub struct TlsArgs {
    /// PEM certificate chain for the mail host [default: a self-signed one
    /// made in <tls-dir>/self-signed/]
    #[arg(long, env = "INBOXGROVE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "INBOXGROVE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// `tls_cert` and `tls_key`: both or neither.
pub fn resolve_tls_pair(
    args: &TlsArgs,
    file_cert: Option<PathBuf>,
    file_key: Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    match (
        args.tls_cert.clone().or(file_cert),
        args.tls_key.clone().or(file_key),
    ) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        _ => Err(ConfigError::Invalid {
            setting: "tls_cert",
            message: "give both tls_cert and tls_key, or neither".into(),
        }),
    }
}
