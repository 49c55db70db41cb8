//! Login sessions: password login, refresh-token rotation with reuse
//! detection, and logout.
//!
//! Refresh tokens rotate on every use. Presenting a token that was already
//! spent means two parties hold it, one of them likely a thief, so the whole
//! session (every refresh token of the family and every access token that
//! names it) is revoked (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

use std::net::IpAddr;

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::{Auth, AuthError, Credential, Principal, jwt, new_secret, secret_hash};
use crate::store::users::User;
use crate::store::{self, StoreError};
use crate::types::{EmailAddress, Password};

pub const REFRESH_TTL: Duration = Duration::days(7);
const REFRESH_PREFIX: &str = "igr_";
/// How long a browser session lasts before the person signs in again.
pub const WEB_TTL: Duration = Duration::hours(12);

/// A browser session just started: the cookie value and its CSRF token.
pub struct WebSession {
    pub cookie: SecretString,
    pub csrf: String,
}

/// What a successful login or refresh returns; shown to the caller once.
#[derive(Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Auth {
    /// Checks a password login. Returns the account's id whenever the email
    /// names one, so the audit row of a failed attempt lands on that user.
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: SecretString,
        ip: IpAddr,
    ) -> (Option<Uuid>, Result<TokenPair, AuthError>) {
        let (user_id, checked) = self.check_password(email, password, ip).await;
        let outcome = match checked {
            Ok(user) => self
                .start_session(user)
                .await
                .map(|(session, refresh)| self.pair(user, session, refresh)),
            Err(e) => Err(e),
        };
        (user_id, outcome)
    }

    /// A password login from the browser UI: the same account checks,
    /// throttling and session row as [`Auth::login`], carried in a cookie
    /// that lives [`WEB_TTL`]. Logout and every revocation end it at once.
    pub async fn web_login(
        &self,
        email: &EmailAddress,
        password: SecretString,
        ip: IpAddr,
    ) -> (Option<Uuid>, Result<WebSession, AuthError>) {
        let (user_id, checked) = self.check_password(email, password, ip).await;
        let outcome = match checked {
            // The session's refresh token is never handed out; it bounds the
            // session's life for the purge like any other.
            Ok(user) => self.start_session(user).await.map(|(session, _)| {
                let cookie = self.jwt.issue_for(user, session, self.clock.now(), WEB_TTL);
                WebSession {
                    cookie: SecretString::from(cookie),
                    csrf: self.csrf_token(session),
                }
            }),
            Err(e) => Err(e),
        };
        (user_id, outcome)
    }

    /// The CSRF token of a session: an HMAC of its id, so it needs no
    /// storage and is worthless in another session.
    pub fn csrf_token(&self, session: Uuid) -> String {
        hex::encode(super::keyed_hash(&self.csrf_key, session.as_bytes()))
    }

    /// The password check of every login: a throttle slot is reserved
    /// before the hash is verified and settled after, so concurrent wrong
    /// guesses cannot outrun the throttle.
    async fn check_password(
        &self,
        email: &EmailAddress,
        password: SecretString,
        ip: IpAddr,
    ) -> (Option<Uuid>, Result<Uuid, AuthError>) {
        let attempt = match self.throttle.reserve(email.as_str(), ip).await {
            Ok(a) => a,
            Err(wait) => return (None, Err(AuthError::Throttled(wait))),
        };
        let lookup = email.clone();
        let found = match self
            .store
            .read(move |c| store::users::credentials(c, &lookup))
            .await
        {
            Ok(found) => found,
            Err(e) => {
                attempt.abandoned();
                return (None, Err(e.into()));
            }
        };
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), Some(h)),
            None => (None, None),
        };
        let user_id = user.as_ref().map(|u| u.id);
        let verified = self.accounts.hasher.verify(hash, password).await;
        let Some(user) = user.filter(|_| verified) else {
            attempt.failed();
            return (user_id, Err(AuthError::InvalidCredentials));
        };
        // The right password, even of a disabled account, is no guess.
        attempt.succeeded();
        if user.disabled {
            return (user_id, Err(AuthError::Disabled));
        }
        (user_id, Ok(user.id))
    }

    /// A person changes their own password from `ip`: the check of the
    /// current one is throttled like a login of the same account.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: SecretString,
        new: Password,
        revoke_api_tokens: bool,
        ip: IpAddr,
    ) -> Result<User, AuthError> {
        let attempt = self
            .throttle
            .reserve(&user.email, ip)
            .await
            .map_err(AuthError::Throttled)?;
        let changed = self
            .accounts
            .change_own_password(user, current, new, revoke_api_tokens)
            .await;
        match &changed {
            Ok(_) => attempt.succeeded(),
            Err(AuthError::Invalid {
                field: "current_password",
                ..
            }) => attempt.failed(),
            // The new password was not stored, but the current one was
            // right or never checked: no guess either way.
            Err(_) => attempt.abandoned(),
        }
        changed
    }

    async fn start_session(&self, user_id: Uuid) -> Result<(Uuid, SecretString), AuthError> {
        let now = self.clock.now();
        let (refresh, hash) = new_secret(REFRESH_PREFIX);
        let session = self
            .store
            .write(move |tx| {
                let session = store::sessions::create(tx, user_id, now)?;
                store::sessions::add_refresh_token(tx, session, &hash, now + REFRESH_TTL, now)?;
                Ok::<_, StoreError>(session)
            })
            .await?;
        Ok((session, refresh))
    }

    fn pair(&self, user_id: Uuid, session: Uuid, refresh: SecretString) -> TokenPair {
        TokenPair {
            access_token: self.jwt.issue(user_id, session, self.clock.now()),
            refresh_token: refresh.expose_secret().to_owned(),
            token_type: "Bearer",
            expires_in: jwt::ACCESS_TTL.num_seconds(),
        }
    }

    /// Trades a live refresh token for a new pair; the old one is spent.
    pub async fn refresh(&self, presented: &SecretString) -> Result<TokenPair, AuthError> {
        let now = self.clock.now();
        let hash = secret_hash(presented.expose_secret());
        let (new_refresh, new_hash) = new_secret(REFRESH_PREFIX);
        let outcome = self
            .store
            .write(move |tx| {
                let Some(t) = store::sessions::refresh_token(tx, &hash)? else {
                    return Ok(Err(AuthError::InvalidRefresh));
                };
                if t.session_revoked || t.user_disabled || t.expires_at <= now {
                    return Ok(Err(AuthError::InvalidRefresh));
                }
                if t.spent || !store::sessions::spend_refresh_token(tx, t.id, now)? {
                    store::sessions::revoke(tx, t.session_id, "refresh token reused", now)?;
                    return Ok(Err(AuthError::RefreshReused));
                }
                store::sessions::add_refresh_token(
                    tx,
                    t.session_id,
                    &new_hash,
                    now + REFRESH_TTL,
                    now,
                )?;
                Ok::<_, StoreError>(Ok((t.user_id, t.session_id)))
            })
            .await?;
        let (user_id, session) = outcome?;
        Ok(self.pair(user_id, session, new_refresh))
    }

    /// Revokes the caller's session: its refresh tokens stop working and so
    /// do its access tokens, at once.
    pub async fn logout(&self, principal: &Principal) -> Result<Uuid, AuthError> {
        let Credential::Session(session) = principal.credential else {
            return Err(AuthError::NotASession);
        };
        let now = self.clock.now();
        self.store
            .write(move |tx| store::sessions::revoke(tx, session, "logout", now))
            .await?;
        Ok(session)
    }
}
