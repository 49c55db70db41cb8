//! Who is calling: passwords, login sessions with rotating refresh tokens,
//! JWT access tokens, long-lived API tokens, and user management.

pub mod api_tokens;
mod cache;
pub mod initial_password;
pub mod jwt;
pub mod password;
pub mod session;
pub mod throttle;
pub mod users;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::inboxes::sync::{MailboxSync, SyncError};
use crate::store::users::User;
use crate::store::{self, Store, StoreError};
use crate::types::Role;
use crate::vault::{Slot, Vault, VaultError};
use cache::{Key as CacheKey, PrincipalCache};
use jwt::JwtKeys;
use password::Hasher;
use throttle::LoginThrottle;
pub use users::Accounts;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("this account is disabled; ask an administrator to enable it")]
    Disabled,
    #[error("too many failed logins; wait {0} seconds before trying again")]
    Throttled(u64),
    #[error("this endpoint needs a token: send 'Authorization: Bearer <token>'")]
    MissingToken,
    #[error("the token is invalid, expired or revoked; log in again or refresh")]
    InvalidToken,
    #[error("the refresh token is invalid, expired or revoked; log in again")]
    InvalidRefresh,
    #[error(
        "this refresh token was already used, so the session may be stolen and has been revoked; log in again"
    )]
    RefreshReused,
    #[error(
        "only a login session can be logged out; delete an API token with DELETE /api/v1/tokens/{{id}}"
    )]
    NotASession,
    #[error("this needs the admin role")]
    AdminOnly,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the last active admin cannot be disabled or demoted; make another admin first")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// The authenticated caller of a request, with their user record as it is
/// now (read in the same query that checked the credential is live).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Session(Uuid),
    ApiToken(Uuid),
}

impl Principal {
    /// Whose resources this caller sees: `None` (everyone's) for admins,
    /// their own otherwise.
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }

    pub fn scope(&self) -> Option<Uuid> {
        (self.user.role != Role::Admin).then_some(self.user.id)
    }

    pub fn require_admin(&self) -> Result<(), AuthError> {
        match self.user.role {
            Role::Admin => Ok(()),
            Role::Member => Err(AuthError::AdminOnly),
        }
    }
}

/// A fresh random bearer secret with a recognisable prefix (`igt_` API
/// token, `igr_` refresh token) and the hash it is stored under.
pub(crate) fn new_secret(prefix: &str) -> (SecretString, [u8; 32]) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = secret_hash(&token);
    (SecretString::from(token), hash)
}

/// Bearer secrets carry 256 random bits, so a plain SHA-256 suffices to
/// store them (no need for a slow hash as with passwords).
pub(crate) fn secret_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn keyed_hash(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

const JWT_KEY_SETTING: &str = "jwt_signing_key";

pub struct Auth {
    store: Store,
    clock: SharedClock,
    jwt: JwtKeys,
    /// Keys the browser UI's per-session CSRF tokens (derived from the JWT
    /// secret, so it survives restarts without a setting of its own).
    csrf_key: [u8; 32],
    throttle: LoginThrottle,
    verified: PrincipalCache,
    pub accounts: Accounts,
}

impl Auth {
    /// Loads the JWT signing key from the store (creating it on first start)
    /// and opens it with the vault.
    pub async fn load(
        store: Store,
        clock: SharedClock,
        vault: Arc<Vault>,
        hasher: Hasher,
        mailboxes: Arc<MailboxSync>,
        data_dir: std::path::PathBuf,
    ) -> Result<Self, AuthError> {
        let slot = || Slot {
            table: "settings",
            column: "value",
            row_id: JWT_KEY_SETTING,
        };
        let mut fresh = [0u8; 32];
        OsRng.fill_bytes(&mut fresh);
        let candidate = vault.seal(slot(), &fresh);
        let now = clock.now();
        let sealed = store
            .write(move |tx| store::settings::get_or_insert(tx, JWT_KEY_SETTING, &candidate, now))
            .await?;
        let secret = vault.open(slot(), &sealed)?;
        Ok(Self {
            jwt: JwtKeys::from_secret(secret.expose_secret()),
            csrf_key: keyed_hash(secret.expose_secret(), b"inboxgrove csrf key"),
            throttle: LoginThrottle::new(clock.clone()),
            verified: PrincipalCache::default(),
            accounts: Accounts::new(store.clone(), clock.clone(), hasher, mailboxes, data_dir),
            store,
            clock,
        })
    }

    /// Resolves a bearer token (an `igt_` API token or a JWT access token)
    /// to its live principal.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        // Read before the store is, see `cache`.
        let generation = self.store.auth_generation();
        if bearer.starts_with(api_tokens::PREFIX) {
            let hash = secret_hash(bearer);
            let key = CacheKey::Token(hash);
            if let Some(p) = self.verified.get(&key, generation, now) {
                return Ok(p);
            }
            let (token, user) = self
                .store
                .read(move |c| store::api_tokens::owner_by_hash(c, &hash))
                .await?
                .filter(|(t, _)| t.expires_at.is_none_or(|e| e > now))
                .ok_or(AuthError::InvalidToken)?;
            let principal = Principal {
                user,
                credential: Credential::ApiToken(token.id),
            };
            self.verified
                .put(key, generation, principal.clone(), token.expires_at);
            return Ok(principal);
        }
        let claims = self
            .jwt
            .verify(bearer, now)
            .ok_or(AuthError::InvalidToken)?;
        let (sid, sub) = (claims.sid, claims.sub);
        let key = CacheKey::Session(sid, sub);
        if let Some(p) = self.verified.get(&key, generation, now) {
            return Ok(p);
        }
        let user = self
            .store
            .read(move |c| store::sessions::active_user(c, sid, sub))
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let principal = Principal {
            user,
            credential: Credential::Session(sid),
        };
        // The JWT's own expiry is checked above on every request.
        self.verified.put(key, generation, principal.clone(), None);
        Ok(principal)
    }
}
