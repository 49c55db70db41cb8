//! User accounts: creation, changes by an admin, and the first-start
//! bootstrap admin. The API, the CLI and the bootstrap all call these.

use std::path::PathBuf;
use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::AuthError;
use super::initial_password;
use super::password::Hasher;
use crate::clock::SharedClock;
use crate::inboxes::sync::{MailboxSync, Refresh};
use crate::store::users::{Changes, NewUser, User};
use crate::store::{self, Store, StoreError};
use crate::types::{EmailAddress, Password, Role, SubscriptionTier};

/// Changes an admin asks for; fields left out stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub subscription_tier: Option<SubscriptionTier>,
    pub disabled: Option<bool>,
    pub password: Option<Password>,
    /// Lets a member's domains be published with the server's Cloudflare
    /// token (admins always may).
    pub may_use_server_token: Option<bool>,
}

/// How the first admin came to be.
pub enum Bootstrap {
    /// Users already existed; nothing was done.
    NotNeeded,
    /// Created from the configured email and password.
    Configured(EmailAddress),
    /// Created with a generated password, to be shown once.
    Generated(EmailAddress, SecretString),
}

const DEFAULT_ADMIN: &str = "admin@localhost";

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    pub(super) hasher: Hasher,
    /// Disabling a user revokes their mailboxes' logins; enabling gives
    /// them back.
    mailboxes: Arc<MailboxSync>,
    /// Where a generated first admin password may wait to be read.
    data_dir: PathBuf,
}

impl Accounts {
    pub fn new(
        store: Store,
        clock: SharedClock,
        hasher: Hasher,
        mailboxes: Arc<MailboxSync>,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            store,
            clock,
            hasher,
            mailboxes,
            data_dir,
        }
    }

    pub async fn create(
        &self,
        email: EmailAddress,
        password: Password,
        role: Role,
        subscription_tier: SubscriptionTier,
    ) -> Result<User, AuthError> {
        let hash = self.hasher.hash(password.secret().clone()).await?;
        let now = self.clock.now();
        Ok(self
            .store
            .write(move |tx| {
                let new = NewUser {
                    email: &email,
                    password_hash: &hash,
                    role,
                    subscription_tier,
                };
                store::users::insert(tx, &new, now)
            })
            .await?)
    }

    pub async fn list(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.read(store::users::list).await?)
    }

    pub async fn find(&self, email: &EmailAddress) -> Result<User, AuthError> {
        let email = email.clone();
        self.store
            .read(move |c| store::users::by_email(c, &email))
            .await?
            .ok_or(AuthError::Store(StoreError::NotFound("user")))
    }

    /// Applies an admin's changes in one transaction. Disabling a user or
    /// resetting their password ends all their sessions and deletes their
    /// API tokens (a reset is for an account someone else may hold; a token
    /// made by them must not outlive it); the last active admin cannot be
    /// disabled or demoted, or nobody could manage users. Disabling also
    /// stops their mailboxes logging in (SMTP and IMAP) at once; enabling
    /// lets them again.
    pub async fn update(&self, id: Uuid, patch: UserPatch) -> Result<User, AuthError> {
        let revoke_tokens = patch.disabled == Some(true) || patch.password.is_some();
        self.apply(id, patch, revoke_tokens).await
    }

    async fn apply(
        &self,
        id: Uuid,
        patch: UserPatch,
        revoke_tokens: bool,
    ) -> Result<User, AuthError> {
        let password_hash = match &patch.password {
            Some(p) => Some(self.hasher.hash(p.secret().clone()).await?),
            None => None,
        };
        let now = self.clock.now();
        let ends_sessions = patch.disabled == Some(true) || password_hash.is_some();
        let changes_password = password_hash.is_some();
        let access_changes = patch.disabled.is_some();
        let changes = Changes {
            role: patch.role,
            subscription_tier: patch.subscription_tier,
            disabled: patch.disabled,
            password_hash,
            may_use_server_token: patch.may_use_server_token,
        };
        let user = self
            .store
            .write(move |tx| {
                let user = store::users::update(tx, id, &changes, now)?;
                if store::users::count_active_admins(tx)? == 0 {
                    // Returning an error rolls the update back.
                    return Err(AuthError::LastAdmin);
                }
                if ends_sessions {
                    store::sessions::revoke_all_of_user(tx, id, "account changed by admin", now)?;
                }
                if revoke_tokens {
                    store::api_tokens::delete_all_of_user(tx, id)?;
                }
                Ok::<_, AuthError>(user)
            })
            .await?;
        if access_changes {
            self.mailboxes.refresh(Refresh::User(id)).await?;
        }
        if changes_password {
            initial_password::forget(&self.data_dir, &user.email);
        }
        Ok(user)
    }

    /// A person changes their own password, proving the current one. Like
    /// an admin's reset it ends all their sessions, so they sign in again;
    /// their API tokens go too when they ask (`revoke_api_tokens`), e.g.
    /// because the old password leaked.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: SecretString,
        new: Password,
        revoke_api_tokens: bool,
    ) -> Result<User, AuthError> {
        let email = EmailAddress::parse(&user.email).map_err(|e| AuthError::Invalid {
            field: "email",
            message: e.0,
        })?;
        let hash = self
            .store
            .read(move |c| store::users::credentials(c, &email))
            .await?
            .map(|(_, h)| h);
        if !self.hasher.verify(hash, current).await {
            return Err(AuthError::Invalid {
                field: "current_password",
                message: "is not your current password".into(),
            });
        }
        let patch = UserPatch {
            password: Some(new),
            ..Default::default()
        };
        self.apply(user.id, patch, revoke_api_tokens).await
    }

    /// Creates the first admin when there is no user at all: from the
    /// configured email and password when given, otherwise
    /// `admin@localhost` with a generated password for the caller to show
    /// once.
    pub async fn bootstrap(
        &self,
        email: Option<EmailAddress>,
        password: Option<Password>,
    ) -> Result<Bootstrap, AuthError> {
        if self.store.read(store::users::count).await? > 0 {
            return Ok(Bootstrap::NotNeeded);
        }
        let email = match email {
            Some(e) => e,
            None => EmailAddress::parse(DEFAULT_ADMIN).map_err(|e| AuthError::Invalid {
                field: "admin_email",
                message: e.0,
            })?,
        };
        let (secret, generated) = match password {
            Some(p) => (p.secret().clone(), false),
            None => (
                SecretString::from(Alphanumeric.sample_string(&mut OsRng, 24)),
                true,
            ),
        };
        let hash = self.hasher.hash(secret.clone()).await?;
        let now = self.clock.now();
        let admin = email.clone();
        let created = self
            .store
            .write(move |tx| {
                // Checked again inside the write lock: two processes
                // starting together must not both create an admin.
                if store::users::count(tx)? > 0 {
                    return Ok::<_, StoreError>(false);
                }
                let new = NewUser {
                    email: &admin,
                    password_hash: &hash,
                    role: Role::Admin,
                    subscription_tier: SubscriptionTier::Enterprise,
                };
                store::users::insert(tx, &new, now)?;
                Ok(true)
            })
            .await?;
        Ok(match (created, generated) {
            (false, _) => Bootstrap::NotNeeded,
            (true, false) => Bootstrap::Configured(email),
            (true, true) => Bootstrap::Generated(email, secret),
        })
    }
}
