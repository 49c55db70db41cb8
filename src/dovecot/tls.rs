//! The certificate IMAP and KumoMTA serve when none is configured or
//! issued: a self-signed one made once in `<tls_dir>/self-signed/` (where
//! kumod can read it through group inboxgrove-tls; the data dir is private
//! to InboxGrove), so a first
//! run and the tests have TLS without an ACME client. Sequencers accept
//! only a valid certificate for the mail host, so a real one must be
//! configured (`--tls-cert`/`--tls-key`) before mailboxes are handed out.

use std::path::{Path, PathBuf};

use super::DovecotError;

pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The names of the self-signed pair: the loopback name and address the
/// appliance's own clients (the warmup engine, tests) reach IMAP and
/// submission by.
pub const SELF_SIGNED_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

pub fn default_paths(tls_dir: &Path) -> CertPaths {
    let dir = tls_dir.join("self-signed");
    CertPaths {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// Makes the self-signed pair at `paths` unless both files exist; returns
/// whether it made them. `names` become the subject alternative names (DNS
/// names or IP addresses).
pub fn ensure_self_signed(paths: &CertPaths, names: &[String]) -> Result<bool, DovecotError> {
    if paths.cert.exists() && paths.key.exists() {
        return Ok(false);
    }
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| DovecotError::Invalid(format!("cannot make a certificate: {e}")))?;
    if let Some(dir) = paths.cert.parent() {
        crate::tls::shared_dir(dir).map_err(|e| DovecotError::Invalid(e.to_string()))?;
    }
    // The group of tls_dir (inboxgrove-tls when packaged) may read it.
    write(&paths.key, made.key_pair.serialize_pem().as_bytes(), 0o640)?;
    write(&paths.cert, made.cert.pem().as_bytes(), 0o644)?;
    Ok(true)
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DovecotError> {
    crate::tls::replace(path, bytes, mode).map_err(|e| DovecotError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_pair_is_made_once_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let paths = default_paths(dir.path());
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        assert!(ensure_self_signed(&paths, &names).unwrap());
        let cert = std::fs::read_to_string(&paths.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "readable by the tls group only");
        assert!(!ensure_self_signed(&paths, &names).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(&paths.cert).unwrap(), cert);
    }
}
