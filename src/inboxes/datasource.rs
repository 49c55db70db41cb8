//! The mailbox datasource KumoMTA's questions are answered from: an
//! embedded sled store (design card) with one entry per mailbox under
//! `kumo:mailbox:{domain}:{username}`, holding only what the control
//! plane's hot path needs.
//!
//! SQLite stays the source of truth. Every change to a mailbox, its owner
//! or its domain is written there first; then the entries it touched are
//! reconciled here ([`super::sync`]). At start the whole datasource is
//! compared with SQLite and repaired, so a crash between the two writes,
//! or a deleted sled directory, heals on restart.

use std::collections::{HashMap, HashSet};
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
}

/// Which entries a reconcile is about; entries outside it are left alone.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    /// These keys (see [`key`]), whatever their entries hold.
    Keys(HashSet<String>),
    /// Every entry under this domain name, so a domain removed and added
    /// again never finds an old entry.
    Domain(String),
    /// Every entry whose mailbox belongs to this user.
    User(Uuid),
}

impl Selection {
    /// Whether the entry at `key` (holding `entry`, or bytes that did not
    /// parse) is selected.
    fn holds(&self, key: &str, entry: Option<&Entry>) -> bool {
        match self {
            Selection::All => true,
            Selection::Keys(keys) => keys.contains(key),
            Selection::Domain(name) => key.starts_with(&domain_prefix(name)),
            Selection::User(id) => entry.is_some_and(|e| e.user_id == *id),
        }
    }
}

fn domain_prefix(domain: &str) -> String {
    format!("{PREFIX}{}:", domain.to_ascii_lowercase())
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

    /// Whether it may send and receive. A warming mailbox sends its
    /// warmup mail, and campaign mail only up to its warmup's slow ramp
    /// (`kumo::send`).
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "active" | "warming")
    }

    /// Whether it is still warming up.
    pub fn is_warming(&self) -> bool {
        self.status == "warming"
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

    /// Writes `bytes` at a mailbox's key without checking them: tests use
    /// it to damage the datasource the way a failing disk would.
    pub fn put_raw(
        &self,
        domain: &str,
        username: &str,
        bytes: &[u8],
    ) -> Result<(), DatasourceError> {
        self.db
            .insert(key(domain, username), bytes)
            .map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes the `selected` entries hold exactly `truth` (from SQLite):
    /// missing or different entries are written, selected ones not in
    /// `truth` removed, all in one batch. Returns how many changed.
    pub fn reconcile(
        &self,
        selected: &Selection,
        truth: &[Entry],
    ) -> Result<usize, DatasourceError> {
        let wanted: HashMap<String, &Entry> = truth.iter().map(|e| (e.key(), e)).collect();
        let current = self.current(selected, &wanted)?;
        let mut batch = sled::Batch::default();
        let mut changed = 0;
        for k in current.keys().filter(|k| !wanted.contains_key(*k)) {
            batch.remove(k.as_bytes());
            changed += 1;
        }
        for (k, e) in &wanted {
            if current.get(k).is_some_and(|c| c.as_ref() == Some(*e)) {
                continue;
            }
            let value =
                serde_json::to_vec(e).map_err(|e| DatasourceError::Corrupt(e.to_string()))?;
            batch.insert(k.as_bytes(), value);
            changed += 1;
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(changed)
    }

    /// The stored entries that are selected or wanted, by key (`None`:
    /// bytes that do not parse). Named keys are read one by one; the other
    /// selections scan (a domain only its own prefix).
    fn current(
        &self,
        selected: &Selection,
        wanted: &HashMap<String, &Entry>,
    ) -> Result<HashMap<String, Option<Entry>>, DatasourceError> {
        let parse = |v: &[u8]| serde_json::from_slice::<Entry>(v).ok();
        let mut current = HashMap::new();
        if let Selection::Keys(keys) = selected {
            for k in keys.iter().chain(wanted.keys()) {
                if let Some(v) = self.db.get(k).map_err(|e| self.err(e))? {
                    current.insert(k.clone(), parse(&v));
                }
            }
            return Ok(current);
        }
        let scan = match selected {
            Selection::Domain(name) => self.db.scan_prefix(domain_prefix(name)),
            _ => self.db.scan_prefix(PREFIX),
        };
        for item in scan {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let k = String::from_utf8_lossy(&k).into_owned();
            let entry = parse(&v);
            if selected.holds(&k, entry.as_ref()) || wanted.contains_key(&k) {
                current.insert(k, entry);
            }
        }
        Ok(current)
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

    fn on(domain: &str, username: &str, user: Uuid) -> Entry {
        Entry {
            domain: domain.into(),
            user_id: user,
            ..entry(username, 40)
        }
    }

    #[test]
    fn reconcile_repairs_missing_changed_and_stale_entries() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datasource::open(dir.path()).unwrap();
        let (a, b, c) = (entry("ada", 40), entry("bob", 40), entry("cy", 40));
        let all = Selection::All;
        ds.reconcile(&all, &[a.clone(), b.clone(), entry("stale", 1)])
            .unwrap();
        let b2 = Entry {
            daily_limit: 10,
            ..b
        };
        ds.put_raw("acme.test", "dan", b"not json").unwrap();
        let truth = [a.clone(), b2.clone(), c.clone()];
        assert_eq!(ds.reconcile(&all, &truth).unwrap(), 4);
        assert_eq!(ds.get("ACME.test", "Bob").unwrap(), Some(b2.clone()));
        assert_eq!(ds.get("acme.test", "cy").unwrap(), Some(c.clone()));
        assert_eq!(ds.get("acme.test", "stale").unwrap(), None);
        assert_eq!(ds.get("acme.test", "dan").unwrap(), None);
        assert_eq!(
            ds.reconcile(&all, &truth).unwrap(),
            0,
            "nothing left to fix"
        );
        assert_eq!(ds.len(), 3);
    }

    #[test]
    fn a_selection_touches_only_its_own_entries() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datasource::open(dir.path()).unwrap();
        let (ann, bo) = (Uuid::new_v4(), Uuid::new_v4());
        let entries = [
            on("one.test", "a", ann),
            on("one.test", "b", bo),
            on("two.test", "c", ann),
            on("one.testing", "d", bo),
        ];
        ds.reconcile(&Selection::All, &entries).unwrap();

        // A domain: its entries only, not a longer name sharing its prefix.
        assert_eq!(
            ds.reconcile(&Selection::Domain("ONE.test".into()), &[])
                .unwrap(),
            2
        );
        assert_eq!(ds.get("one.test", "a").unwrap(), None);
        assert!(ds.get("one.testing", "d").unwrap().is_some());
        assert!(ds.get("two.test", "c").unwrap().is_some());

        // A user: whatever domain their mailboxes are on.
        assert_eq!(ds.reconcile(&Selection::User(ann), &[]).unwrap(), 1);
        assert_eq!(ds.get("two.test", "c").unwrap(), None);
        assert!(ds.get("one.testing", "d").unwrap().is_some());

        // Named keys: removed unless in truth, truth written.
        let keys = [key("one.testing", "d")].into_iter().collect();
        let back = on("one.test", "a", ann);
        assert_eq!(
            ds.reconcile(&Selection::Keys(keys), std::slice::from_ref(&back))
                .unwrap(),
            2
        );
        assert_eq!(ds.get("one.test", "a").unwrap(), Some(back));
        assert_eq!(ds.len(), 1);
    }
}
