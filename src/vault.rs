//! The vault: one 32-byte master key in `<data-dir>/master.key` (mode 0600)
//! seals every secret column with XChaCha20-Poly1305.
//!
//! Each sealed value is `version (1) || nonce (24) || ciphertext+tag`. The
//! nonce is random per value (192 bits, so random nonces are safe at any
//! volume we will see), and the associated data binds the value to its
//! table, column and row id: a sealed value copied into another row fails to
//! open instead of decrypting under the wrong owner.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};

const KEY_FILE: &str = "master.key";
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot read or write the master key at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not 64 hex characters; restore it from your backup")]
    MalformedKey(PathBuf),
    #[error(
        "a sealed {0} could not be opened: it was written under another master key, moved from another row, or altered"
    )]
    CannotOpen(String),
}

/// Where a sealed value lives; its bytes are the associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl Slot<'_> {
    fn aad(&self) -> Vec<u8> {
        // NUL cannot occur in our table, column or id names, so the
        // encoding is unambiguous.
        [self.table, self.column, self.row_id]
            .join("\0")
            .into_bytes()
    }

    fn describe(&self) -> String {
        format!("{}.{} (row {})", self.table, self.column, self.row_id)
    }
}

pub struct Vault {
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256 key derived from the master key for [`Vault::mac`]:
    /// the master key itself never keys two algorithms.
    mac_key: SecretBox<[u8]>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault([REDACTED])")
    }
}

impl Vault {
    pub fn key_path(data_dir: &Path) -> PathBuf {
        data_dir.join(KEY_FILE)
    }

    /// Opens the vault of `data_dir`, creating its master key on first use.
    /// Returns whether the key was created now.
    pub fn load_or_create(data_dir: &Path) -> Result<(Self, bool), VaultError> {
        let path = Self::key_path(data_dir);
        let (key, created) = secret_file(&path)?;
        let cipher = XChaCha20Poly1305::new_from_slice(key.expose_secret())
            .map_err(|_| VaultError::MalformedKey(path.clone()))?;
        let mac_key = hmac_sha256(key.expose_secret(), &[b"inboxgrove/mac/v1"]);
        let mac_key = SecretBox::new(Box::from(&mac_key[..]));
        Ok((Self { cipher, mac_key }, created))
    }

    /// A MAC of `parts` for `purpose` (such as the warmup marker of a
    /// message id): a value only this appliance can make or check. Each
    /// purpose has its own key, so a MAC made for one never passes as
    /// another.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let key = hmac_sha256(self.mac_key.expose_secret(), &[purpose.as_bytes()]);
        hmac_sha256(&key, parts)
    }

    pub fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = slot.aad();
        // Encryption with a valid key and an in-memory buffer cannot fail.
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<SecretBox<[u8]>, VaultError> {
        let fail = || VaultError::CannotOpen(slot.describe());
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != FORMAT_V1 {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let aad = slot.aad();
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(|p| SecretBox::new(p.into_boxed_slice()))
            .map_err(|_| fail())
    }
}

/// HMAC-SHA256 over `parts`, each prefixed with its length so two
/// different splits of the same bytes never collide.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC accepts keys of every length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A 32-byte secret kept as hex in a mode-0600 file, created on first use
/// (the master key; the KumoMTA control secret). Returns whether it was
/// created now.
pub(crate) fn secret_file(path: &Path) -> Result<(SecretBox<[u8]>, bool), VaultError> {
    let io = |source| VaultError::Io {
        path: path.to_owned(),
        source,
    };
    let created = if path.exists() {
        false
    } else {
        write_new_key(path).map_err(io)?;
        true
    };
    let text = fs::read_to_string(path).map_err(io)?;
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "secret file is readable by other users; run chmod 600 on it"
        );
    }
    let bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .map(|b| SecretBox::new(b.into_boxed_slice()))
        .ok_or_else(|| VaultError::MalformedKey(path.to_owned()))?;
    Ok((bytes, created))
}

/// A fresh random 32-byte key as the secret files hold it: hex and a
/// newline.
pub(crate) fn new_key_text() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut OsRng, &mut key);
    format!("{}\n", hex::encode(key))
}

/// Writes a fresh key to a temporary file with mode 0600 and links it into
/// place, so a crash never leaves a half-written key and two processes
/// starting at once cannot both win.
fn write_new_key(path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(new_key_text().as_bytes())?;
    f.sync_all()?;
    let linked = fs::hard_link(&tmp, path);
    fs::remove_file(&tmp)?;
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row_id: &str) -> Slot<'_> {
        Slot {
            table: "domains",
            column: "cloudflare_api_token",
            row_id,
        }
    }

    #[test]
    fn seals_and_opens_in_place_only() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, created) = Vault::load_or_create(dir.path()).unwrap();
        assert!(created);
        let sealed = vault.seal(slot("row-1"), b"cf-token-123");
        assert!(!sealed.windows(12).any(|w| w == b"cf-token-123"));
        assert_eq!(
            vault.open(slot("row-1"), &sealed).unwrap().expose_secret(),
            b"cf-token-123"
        );
        let moved = vault.open(slot("row-2"), &sealed).unwrap_err();
        assert!(matches!(moved, VaultError::CannotOpen(_)));
        assert!(!moved.to_string().contains("cf-token"));

        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(vault.open(slot("row-1"), &tampered).is_err());
        assert!(vault.open(slot("row-1"), &[]).is_err());
    }

    #[test]
    fn key_is_private_stable_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Vault::load_or_create(dir.path()).unwrap();
        let sealed = first.seal(slot("r"), b"x");
        let path = Vault::key_path(dir.path());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, created) = Vault::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(
            again.open(slot("r"), &sealed).unwrap().expose_secret(),
            b"x"
        );
        assert_eq!(format!("{again:?}"), "Vault([REDACTED])");

        fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Vault::load_or_create(dir.path()),
            Err(VaultError::MalformedKey(_))
        ));
    }
}
