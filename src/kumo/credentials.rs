//! One control credential per client of the control listener (issue 13),
//! so that no client holds more than it needs: KumoMTA's policy calls
//! everything it signs, limits and routes with; Dovecot's checkpassword
//! helper only checks IMAP logins and looks mailboxes up; the console (CLI
//! commands telling a running server to resync) only asks for a resync.
//! Before, Dovecot's auth process held the one secret that also served
//! every DKIM private key and accepted events.
//!
//! Each credential is its own file in the data dir (mode 0600; the
//! installer copies KumoMTA's and Dovecot's with their service's group,
//! 0640): `kumo.secret`, `dovecot.secret`, `console.secret`. A rotated
//! credential's predecessor stays valid until its grace period ends, in
//! `<file>.previous`: the old secret on the first line, the RFC 3339 end of
//! its grace on the second. It is a file rather than a sealed settings row
//! because it is exactly as secret as the current file beside it (same
//! directory, same mode), and because the server notices both the same way:
//! before each check it compares the files' identity (device, inode, size,
//! modification time) with what it last read, and reads them again when
//! one differs. Rotation replaces files by rename, so a new inode is a new
//! file and a check never sees half a write; a stat per file is cheap next
//! to the HTTP request it guards.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::logins::Service;
use crate::clock::SharedClock;
use crate::vault::{VaultError, new_key_text, secret_file};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} must hold the previous secret's 64 hex characters and the RFC 3339 end of its grace period, one per line; delete it to end the grace period now"
    )]
    Malformed(PathBuf),
}

/// Who calls the control listener; the bearer token says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Kumo,
    Dovecot,
    Console,
}

impl Client {
    pub const ALL: [Client; 3] = [Client::Kumo, Client::Dovecot, Client::Console];

    /// The credential's file in the data dir.
    pub fn file_name(self) -> &'static str {
        match self {
            Client::Kumo => "kumo.secret",
            Client::Dovecot => "dovecot.secret",
            Client::Console => "console.secret",
        }
    }

    /// The name `rotate-control-secret --client` takes.
    pub fn name(self) -> &'static str {
        match self {
            Client::Kumo => "kumo",
            Client::Dovecot => "dovecot",
            Client::Console => "console",
        }
    }

    /// How an error message names the credential, with its file.
    pub fn describe(self) -> String {
        let who = match self {
            Client::Kumo => "KumoMTA",
            Client::Dovecot => "Dovecot",
            Client::Console => "console",
        };
        format!("the {who} credential ({})", self.file_name())
    }

    /// Whose logins this credential may check: Dovecot serves IMAP only,
    /// so its credential cannot be used to test passwords as SMTP would.
    pub fn may_check(self, service: Service) -> bool {
        self != Client::Dovecot || service == Service::Imap
    }
}

pub fn secret_path(data_dir: &Path, client: Client) -> PathBuf {
    data_dir.join(client.file_name())
}

fn previous_path(data_dir: &Path, client: Client) -> PathBuf {
    data_dir.join(format!("{}.previous", client.file_name()))
}

/// `client`'s current secret, the file created 0600 on first use (so an
/// existing data dir gains the credentials it lacks at the next start).
pub fn load(data_dir: &Path, client: Client) -> Result<SecretString, CredentialError> {
    let (bytes, _) = secret_file(&secret_path(data_dir, client))?;
    Ok(SecretString::from(hex::encode(bytes.expose_secret())))
}

/// Creates the credential files a data dir lacks: an older data dir gains
/// them at its next start.
pub fn create_missing(data_dir: &Path) -> Result<(), CredentialError> {
    for client in Client::ALL {
        load(data_dir, client)?;
    }
    Ok(())
}

/// The credentials the running server accepts, read again whenever one of
/// their files changes.
pub struct Credentials {
    data_dir: PathBuf,
    clock: SharedClock,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    stamps: Vec<Option<Stamp>>,
    accepted: Vec<Accepted>,
}

struct Accepted {
    client: Client,
    secret: SecretString,
    /// The end of a replaced secret's grace period; None for current ones.
    until: Option<DateTime<Utc>>,
}

/// A file's identity: a rename gives a new inode, an edit in place a new
/// size or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Credentials {
    /// Creates the credentials a data dir lacks and reads them all.
    pub fn open(data_dir: &Path, clock: SharedClock) -> Result<Self, CredentialError> {
        create_missing(data_dir)?;
        let credentials = Self {
            data_dir: data_dir.to_owned(),
            clock,
            cache: Mutex::new(Cache::default()),
        };
        drop(credentials.fresh()?);
        Ok(credentials)
    }

    /// Whose credential `token` is, or None. A file that cannot be read is
    /// an error (a fault, answered 503), not "nobody's".
    pub fn identify(&self, token: &str) -> Result<Option<Client>, CredentialError> {
        let cache = self.fresh()?;
        let now = self.clock.now();
        // Every candidate is compared, in constant time, so neither the
        // answer's timing nor which file matched gives anything away.
        let mut found = None;
        for a in &cache.accepted {
            let live = a.until.is_none_or(|end| now < end);
            if same(token.as_bytes(), a.secret.expose_secret().as_bytes()) && live {
                found = found.or(Some(a.client));
            }
        }
        Ok(found)
    }

    /// The cache, read again first if a file changed since.
    fn fresh(&self) -> Result<std::sync::MutexGuard<'_, Cache>, CredentialError> {
        let stamps = self.stamps()?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.stamps != stamps || cache.accepted.is_empty() {
            // Stamps are taken before the contents are read, so a change in
            // between is seen again on the next check.
            *cache = Cache {
                accepted: self.read_all()?,
                stamps,
            };
        }
        Ok(cache)
    }

    fn stamps(&self) -> Result<Vec<Option<Stamp>>, CredentialError> {
        Client::ALL
            .into_iter()
            .flat_map(|c| {
                [
                    secret_path(&self.data_dir, c),
                    previous_path(&self.data_dir, c),
                ]
            })
            .map(|path| match fs::metadata(&path) {
                Ok(m) => Ok(Some(Stamp {
                    dev: m.dev(),
                    ino: m.ino(),
                    len: m.len(),
                    mtime: m.mtime(),
                    mtime_nsec: m.mtime_nsec(),
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(CredentialError::Io { path, source }),
            })
            .collect()
    }

    fn read_all(&self) -> Result<Vec<Accepted>, CredentialError> {
        let mut accepted = Vec::new();
        for client in Client::ALL {
            accepted.push(Accepted {
                client,
                secret: load(&self.data_dir, client)?,
                until: None,
            });
            if let Some((secret, until)) = read_previous(&previous_path(&self.data_dir, client))? {
                accepted.push(Accepted {
                    client,
                    secret,
                    until: Some(until),
                });
            }
        }
        Ok(accepted)
    }
}

/// Constant-time comparison, so a secret cannot be found byte by byte
/// from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_previous(path: &Path) -> Result<Option<(SecretString, DateTime<Utc>)>, CredentialError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut lines = text.lines().map(str::trim);
    let secret = lines
        .next()
        .filter(|s| hex::decode(s).is_ok_and(|b| b.len() == 32));
    let until = lines
        .next()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    match (secret, until) {
        (Some(s), Some(u)) => Ok(Some((SecretString::from(s.to_owned()), u.to_utc()))),
        _ => Err(CredentialError::Malformed(path.to_owned())),
    }
}

/// What a rotation did, for the command to report (no secret in it).
#[derive(Debug)]
pub struct Rotated {
    pub file: PathBuf,
    /// Until when the replaced secret is still accepted; None with no grace.
    pub previous_until: Option<DateTime<Utc>>,
}

/// Gives `client` a new secret. The one it replaces stays accepted until
/// `now + grace` (not at all if `grace` is zero); a secret replaced by an
/// earlier rotation whose grace has not ended is dropped now. The previous
/// file is written first, so at no moment is the old secret refused early.
/// Both keep the current file's owner (root running the command must not
/// leave a file the server's user cannot read) and its mode.
pub fn rotate(
    data_dir: &Path,
    client: Client,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<Rotated, CredentialError> {
    let old = load(data_dir, client)?;
    let file = secret_path(data_dir, client);
    let meta = fs::metadata(&file).map_err(|source| CredentialError::Io {
        path: file.clone(),
        source,
    })?;
    let (mode, owner) = (meta.mode() & 0o7777, (meta.uid(), meta.gid()));
    let previous = previous_path(data_dir, client);
    let previous_until = (grace > Duration::zero()).then(|| now + grace);
    match previous_until {
        Some(until) => replace_file(
            &previous,
            &format!("{}\n{}\n", old.expose_secret(), until.to_rfc3339()),
            mode,
            owner,
        )?,
        None => match fs::remove_file(&previous) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CredentialError::Io {
                    path: previous,
                    source: e,
                });
            }
            _ => {}
        },
    }
    replace_file(&file, &new_key_text(), mode, owner)?;
    Ok(Rotated {
        file,
        previous_until,
    })
}

/// Replaces `path` with `text` through a temporary file and a rename, so
/// readers see the old file or the new one, never a part, with `mode` and
/// `owner` (uid, gid) (`rotate-control-secret` keeps an installed copy's,
/// e.g. `root:kumod` 0640). The temporary file is 0600 until its
/// owner and mode are set.
pub fn replace_file(
    path: &Path,
    text: &str,
    mode: u32,
    (uid, gid): (u32, u32),
) -> Result<(), CredentialError> {
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(name);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}
