//! Password hashing with argon2id at OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1; OWASP Password Storage Cheat Sheet).
//!
//! Each hash costs ~20 ms of CPU and 19 MiB of memory, so hashing runs on
//! the blocking pool behind a semaphore: a burst of logins queues instead of
//! exhausting memory or starving the async runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl From<tokio::task::JoinError> for HashError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self(e.to_string())
    }
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's documented bounds.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Password verifications run since start, over every clone: what a
    /// login throttle must bound, so tests count them.
    verifications: Arc<AtomicU64>,
}

impl Hasher {
    /// At most `parallel` hashes at once (one per core is the useful most).
    pub fn new(parallel: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            verifications: Arc::default(),
        }
    }

    /// How many passwords were verified (argon2 run) since start.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.blocking(move || hash_now(&password)).await?
    }

    /// Checks `candidate` against `stored`; with no stored hash (unknown
    /// account) it checks against a dummy hash, so the answer takes as long
    /// either way and does not reveal which emails have accounts.
    pub async fn verify(&self, stored: Option<String>, candidate: SecretString) -> bool {
        let count = self.verifications.clone();
        self.blocking(move || {
            count.fetch_add(1, Ordering::Relaxed);
            let known = stored.is_some();
            let stored = stored.as_deref().unwrap_or_else(|| dummy_hash());
            let ok = PasswordHash::new(stored)
                .map(|h| {
                    argon2()
                        .verify_password(candidate.expose_secret().as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false);
            ok && known
        })
        .await
        .unwrap_or(false)
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| HashError(e.to_string()))
    }
}

fn hash_now(password: &SecretString) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_now(&SecretString::from("inboxgrove-timing-equaliser")).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let h = Hasher::new(2);
        let pw = || SecretString::from("correct horse battery".to_owned());
        let a = h.hash(pw()).await.unwrap();
        let b = h.hash(pw()).await.unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(h.verify(Some(a.clone()), pw()).await);
        assert!(
            !h.verify(Some(a), SecretString::from("wrong".to_owned()))
                .await
        );
        assert!(
            !h.verify(
                None,
                SecretString::from("inboxgrove-timing-equaliser".to_owned())
            )
            .await
        );
    }
}
