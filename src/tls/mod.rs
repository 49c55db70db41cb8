//! The certificates the appliance's listeners, KumoMTA and Dovecot present,
//! as files in one directory (`tls_dir`, `/var/lib/inboxgrove-tls` when
//! packaged: group `inboxgrove-tls`, which kumod keeps across its privilege
//! drop through the kumomta.service drop-in; Dovecot reads as root).
//!
//! The ACME client (`crate::acme`) writes them; the public listener, the
//! rendered KumoMTA and Dovecot configurations and `doctor` read them. The
//! layout is the contract between the two sides:
//!
//! ```text
//! <tls_dir>/certificates.json          the manifest: every bundle, its names
//! <tls_dir>/live/<id>/fullchain.pem    leaf first, then the issuer chain
//! <tls_dir>/live/<id>/privkey.pem      0640, group of <tls_dir>
//! ```
//!
//! A bundle is one certificate for up to [`MAX_NAMES`] names. Files are
//! replaced by rename, so a reader never sees half a chain or a key that
//! does not match its certificate (the key is renamed first, then the
//! chain, then the manifest; a reader goes by the manifest).

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod listener;
pub mod mail;
pub mod reload;
pub mod resolver;
pub mod x509;

/// Let's Encrypt's limit of names on one certificate.
pub const MAX_NAMES: usize = 100;

const MANIFEST: &str = "certificates.json";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a certificate manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("bundle id {0:?} must be 1–64 characters of a-z, 0-9 and '-'")]
    BadId(String),
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
}

/// One certificate and its key, for the names it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub id: String,
    /// Lower-case DNS names, the certificate's subject alternative names.
    pub names: Vec<String>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
}

impl Bundle {
    pub fn chain_path(&self, dir: &Path) -> PathBuf {
        dir.join("live").join(&self.id).join("fullchain.pem")
    }

    pub fn key_path(&self, dir: &Path) -> PathBuf {
        dir.join("live").join(&self.id).join("privkey.pem")
    }

    /// Whether this certificate is valid for `host` (an exact name; the
    /// appliance asks for no wildcards).
    pub fn covers(&self, host: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// Every bundle in a `tls_dir`, in the order they were first issued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub bundles: Vec<Bundle>,
}

impl Manifest {
    /// The manifest of `dir`; empty when nothing was issued yet.
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TlsError::Manifest {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TlsError::Io { path, source }),
        }
    }

    /// The bundle that covers `host`, if any.
    pub fn for_host(&self, host: &str) -> Option<&Bundle> {
        self.bundles.iter().find(|b| b.covers(host))
    }

    /// Writes `bundle`'s key and chain, then the manifest with it in place
    /// of any bundle of the same id.
    pub fn install(
        &mut self,
        dir: &Path,
        bundle: Bundle,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<(), TlsError> {
        let valid = !bundle.id.is_empty()
            && bundle.id.len() <= 64
            && bundle
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(TlsError::BadId(bundle.id));
        }
        let live = dir.join("live").join(&bundle.id);
        shared_dir(&dir.join("live"))?;
        shared_dir(&live)?;
        replace(&bundle.key_path(dir), key_pem.as_bytes(), 0o640)?;
        replace(&bundle.chain_path(dir), chain_pem.as_bytes(), 0o644)?;
        match self.bundles.iter_mut().find(|b| b.id == bundle.id) {
            Some(old) => *old = bundle,
            None => self.bundles.push(bundle),
        }
        let json = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        replace(&dir.join(MANIFEST), &json, 0o644)
    }
}

/// Told after [`Manifest::install`] changed certificates on disk, so that
/// whatever serves them (the public listener, KumoMTA, Dovecot) takes the
/// new ones. An `Err` is logged and retried by the caller's job; its text
/// must hold no secret.
pub trait Reload: Send + Sync {
    fn reload<'a>(
        &'a self,
        changed: &'a [Bundle],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// Makes `dir` (and its parents) and gives it mode 2750, whatever the
/// umask (the service runs with 0077): the group of `tls_dir` must be able
/// to reach the keys, and the setgid bit keeps that group on what is made
/// inside.
pub fn shared_dir(dir: &Path) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2750)).map_err(io)
}

/// Writes `bytes` to a temporary file beside `path` with exactly `mode`
/// (the umask does not apply), syncs it and renames it over `path`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn bundle(id: &str, names: &[&str]) -> Bundle {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Bundle {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_after: at,
            issued_at: at,
        }
    }

    #[test]
    fn a_bundle_is_installed_found_by_host_and_replaced_by_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        let mut manifest = Manifest::default();
        let first = bundle("mail-1", &["mail.a.test", "mail.b.test"]);
        manifest
            .install(dir.path(), first.clone(), "CHAIN1", "KEY1")
            .unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.for_host("MAIL.B.test"), Some(&first));
        assert_eq!(loaded.for_host("mail.c.test"), None);
        let key = first.key_path(dir.path());
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY1");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "readable by the tls group only");

        let renewed = bundle("mail-1", &["mail.a.test", "mail.b.test", "mail.c.test"]);
        manifest
            .install(dir.path(), renewed.clone(), "CHAIN2", "KEY2")
            .unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.bundles, vec![renewed.clone()]);
        let chain = std::fs::read_to_string(renewed.chain_path(dir.path())).unwrap();
        assert_eq!(chain, "CHAIN2");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("live/mail-1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_bad_id_or_manifest_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = Manifest::default()
            .install(dir.path(), bundle("../etc", &["a.test"]), "C", "K")
            .unwrap_err();
        assert!(matches!(err, TlsError::BadId(_)), "{err}");
        std::fs::write(dir.path().join(MANIFEST), "{").unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("certificates.json"), "{err}");
    }
}
