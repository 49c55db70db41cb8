//! The mailbox datasource KumoMTA's questions are answered from: an
//! embedded sled store (design card) with one entry per mailbox under
//! `kumo:mailbox:{domain}:{username}`, holding only what the control
//! plane's hot path needs.
//!
//! SQLite stays the source of truth. Every change to a mailbox is written
//! there first and then here; at start the datasource is compared with
//! SQLite and repaired, so a crash between the two writes, or a deleted
//! sled directory, heals on restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

const DIR: &str = "datasource";
const PREFIX: &str = "kumo:mailbox:";

#[derive(Debug, thiserror::Error)]
pub enum DatasourceError {
    #[error("the mailbox datasource at {path} failed: {source}")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("a datasource entry could not be read: {0}")]
    Corrupt(String),
    #[error("the running server did not take the change: {0}; restart it to resync")]
    Server(String),
}

/// Where mailbox changes go after SQLite: the datasource itself, or, when
/// the running server holds it (sled allows one process), a request that
/// the server resync it. A server that is not running needs nothing: it
/// resyncs when it starts.
pub enum Sink {
    Local(Datasource),
    Server {
        control_url: String,
        secret: secrecy::SecretString,
    },
}

impl Sink {
    pub async fn changed(
        &self,
        entries: &[Entry],
        removed: &[(String, String)],
    ) -> Result<(), DatasourceError> {
        match self {
            Sink::Local(ds) => {
                ds.put(entries)?;
                for (domain, username) in removed {
                    ds.remove(domain, username)?;
                }
                Ok(())
            }
            Sink::Server {
                control_url,
                secret,
            } => {
                use secrecy::ExposeSecret;
                let sent = reqwest::Client::new()
                    .post(format!("{control_url}/kumo/v1/sync"))
                    .bearer_auth(secret.expose_secret())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(DatasourceError::Server(format!("HTTP {}", r.status()))),
                    // Not running: it resyncs at start.
                    Err(e) if e.is_connect() => Ok(()),
                    Err(e) => Err(DatasourceError::Server(e.to_string())),
                }
            }
        }
    }
}

/// What KumoMTA's hot path needs about one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub mailbox_id: Uuid,
    pub user_id: Uuid,
    pub domain_id: Uuid,
    pub domain: String,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub daily_limit: u32,
    pub status: String,
}

impl Entry {
    pub fn key(&self) -> String {
        key(&self.domain, &self.username)
    }

    pub fn email(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }

    /// Whether it may send and receive (warming mailboxes send too, at
    /// their warmup volume).
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "active" | "warming")
    }
}

pub fn key(domain: &str, username: &str) -> String {
    format!(
        "{PREFIX}{}:{}",
        domain.to_ascii_lowercase(),
        username.to_ascii_lowercase()
    )
}

#[derive(Clone)]
pub struct Datasource {
    db: sled::Db,
    path: PathBuf,
}

impl Datasource {
    pub fn open(data_dir: &Path) -> Result<Self, DatasourceError> {
        let path = data_dir.join(DIR);
        let db = sled::open(&path).map_err(|source| DatasourceError::Sled {
            path: path.clone(),
            source,
        })?;
        Ok(Self { db, path })
    }

    fn err(&self, source: sled::Error) -> DatasourceError {
        DatasourceError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    pub fn get(&self, domain: &str, username: &str) -> Result<Option<Entry>, DatasourceError> {
        let Some(bytes) = self
            .db
            .get(key(domain, username))
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DatasourceError::Corrupt(e.to_string()))
    }

    /// Writes entries (a whole bulk request at once, atomically).
    pub fn put(&self, entries: &[Entry]) -> Result<(), DatasourceError> {
        let mut batch = sled::Batch::default();
        for e in entries {
            let value =
                serde_json::to_vec(e).map_err(|e| DatasourceError::Corrupt(e.to_string()))?;
            batch.insert(e.key().as_bytes(), value);
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove(&self, domain: &str, username: &str) -> Result<(), DatasourceError> {
        self.db
            .remove(key(domain, username))
            .map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes the datasource hold exactly `truth` (from SQLite): missing or
    /// different entries are written, stale ones removed. Returns how many
    /// entries had to change.
    pub fn reconcile(&self, truth: &[Entry]) -> Result<usize, DatasourceError> {
        let wanted: std::collections::HashMap<String, &Entry> =
            truth.iter().map(|e| (e.key(), e)).collect();
        let mut batch = sled::Batch::default();
        let mut changed = 0;
        for item in self.db.scan_prefix(PREFIX) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            if !wanted.contains_key(String::from_utf8_lossy(&k).as_ref()) {
                batch.remove(k);
                changed += 1;
            }
        }
        for (k, e) in &wanted {
            let current = self.db.get(k).map_err(|e| self.err(e))?;
            let same = current
                .and_then(|v| serde_json::from_slice::<Entry>(&v).ok())
                .is_some_and(|c| &c == *e);
            if !same {
                let value =
                    serde_json::to_vec(e).map_err(|e| DatasourceError::Corrupt(e.to_string()))?;
                batch.insert(k.as_bytes(), value);
                changed += 1;
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    pub fn len(&self) -> usize {
        self.db.scan_prefix(PREFIX).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(username: &str, limit: u32) -> Entry {
        Entry {
            mailbox_id: Uuid::new_v4(),
            user_id: Uuid::nil(),
            domain_id: Uuid::nil(),
            domain: "acme.test".into(),
            username: username.into(),
            password_hash: "$argon2id$x".into(),
            daily_limit: limit,
            status: "active".into(),
        }
    }

    #[test]
    fn reconcile_repairs_missing_changed_and_stale_entries() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datasource::open(dir.path()).unwrap();
        let (a, b, c) = (entry("ada", 40), entry("bob", 40), entry("cy", 40));
        ds.put(&[a.clone(), b.clone(), entry("stale", 1)]).unwrap();
        let b2 = Entry {
            daily_limit: 10,
            ..b
        };
        assert_eq!(
            ds.reconcile(&[a.clone(), b2.clone(), c.clone()]).unwrap(),
            3
        );
        assert_eq!(ds.get("ACME.test", "Bob").unwrap(), Some(b2.clone()));
        assert_eq!(ds.get("acme.test", "cy").unwrap(), Some(c.clone()));
        assert_eq!(ds.get("acme.test", "stale").unwrap(), None);
        assert_eq!(ds.reconcile(&[a, b2, c]).unwrap(), 0, "nothing left to fix");
        assert_eq!(ds.len(), 3);
    }
}
