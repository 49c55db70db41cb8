//! SMTP AUTH for KumoMTA: checks a mailbox's password against the
//! datasource.
//!
//! argon2id costs ~20 ms of CPU, and a sequencer opens an SMTP connection
//! per few messages, so verifying every login in full would cap the whole
//! appliance at a few dozen logins a second. After a full verification the
//! password is remembered as a keyed SHA-256 (key random per process, never
//! stored) together with the argon2 hash it matched. A later login is
//! accepted on the fast path only if its keyed digest is equal and the
//! mailbox still has that same argon2 hash, so a wrong password always
//! takes the slow path and fails, and a password reset ends the fast path
//! at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::auth::password::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::clock::SharedClock;
use crate::inboxes::datasource::{Datasource, DatasourceError, Entry};
use crate::types::EmailAddress;

/// Bound on remembered logins; the map is emptied when it is reached.
const MAX_REMEMBERED: usize = 100_000;

pub enum Outcome {
    Ok(Entry),
    Refused,
    Throttled(u64),
    /// The datasource failed: no answer either way, and nothing counts
    /// against the mailbox.
    Unavailable(DatasourceError),
}

pub struct SmtpAuth {
    datasource: Datasource,
    hasher: Hasher,
    throttle: LoginThrottle,
    key: [u8; 32],
    remembered: Mutex<HashMap<String, ([u8; 32], String)>>,
}

impl SmtpAuth {
    pub fn new(datasource: Datasource, hasher: Hasher, clock: SharedClock) -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self {
            datasource,
            hasher,
            throttle: LoginThrottle::new(clock),
            key,
            remembered: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, username: &str, password: &SecretString) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(username.as_bytes());
        h.update([0]);
        h.update(password.expose_secret().as_bytes());
        h.finalize().into()
    }

    /// `authz`, when given, must name the same mailbox (RFC 4616 §2: the
    /// authorization identity; acting as another mailbox is not allowed).
    pub async fn check(
        &self,
        username: &str,
        password: &SecretString,
        authz: Option<&str>,
        source: IpAddr,
    ) -> Outcome {
        let Ok(email) = EmailAddress::parse(username) else {
            return Outcome::Refused;
        };
        if authz.is_some_and(|a| !a.is_empty() && !a.eq_ignore_ascii_case(email.as_str())) {
            return Outcome::Refused;
        }
        // Before the fast path too: it answers only the right password, but
        // answering it while the source is throttled would let a guesser
        // go on testing candidates there.
        if let Err(wait) = self.throttle.check(email.as_str(), source) {
            return Outcome::Throttled(wait);
        }
        let (local, domain) = email.as_str().split_once('@').unwrap_or_default();
        let entry = match self.datasource.get(domain, local) {
            Ok(entry) => entry,
            Err(e) => return Outcome::Unavailable(e),
        };
        let digest = self.digest(email.as_str(), password);
        if let Some(e) = &entry {
            let map = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            let fast = map
                .get(email.as_str())
                .is_some_and(|(d, hash)| *d == digest && *hash == e.password_hash);
            drop(map);
            if fast && e.is_active() {
                return Outcome::Ok(e.clone());
            }
        }
        // Only an attempt that holds a slot may cost a verification.
        let attempt = match self.throttle.reserve(email.as_str(), source).await {
            Ok(a) => a,
            Err(wait) => return Outcome::Throttled(wait),
        };
        // Unknown mailboxes pay the same argon2 cost as known ones, so the
        // answer time does not reveal which exist.
        let stored = entry.as_ref().map(|e| e.password_hash.clone());
        let verified = self.hasher.verify(stored, password.clone()).await;
        match entry {
            Some(e) if verified => {
                attempt.succeeded();
                if !e.is_active() {
                    return Outcome::Refused;
                }
                let mut map = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= MAX_REMEMBERED {
                    map.clear();
                }
                map.insert(email.as_str().to_owned(), (digest, e.password_hash.clone()));
                Outcome::Ok(e)
            }
            _ => {
                attempt.failed();
                Outcome::Refused
            }
        }
    }
}
