//! Long-lived API tokens for automation (`igt_…`): shown once at creation,
//! stored as a SHA-256 hash, usable wherever an access token is.

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::{Auth, AuthError, Principal, new_secret};
use crate::store::{self, api_tokens::ApiToken};
use crate::types::TokenName;

pub const PREFIX: &str = "igt_";
/// How much of a token is kept in clear to tell tokens apart.
const SHOWN_PREFIX_CHARS: usize = 12;
pub const MAX_DAYS: u32 = 3650;

/// A token just created: the only time its secret is shown.
#[derive(Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    #[serde(rename = "token", serialize_with = "expose")]
    pub secret: SecretString,
}

fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl Auth {
    pub async fn create_api_token(
        &self,
        owner: &Principal,
        name: TokenName,
        expires_in_days: Option<u32>,
    ) -> Result<CreatedToken, AuthError> {
        let expires_in_days = match expires_in_days {
            Some(d) if d == 0 || d > MAX_DAYS => {
                return Err(AuthError::Invalid {
                    field: "expires_in_days",
                    message: format!("must be between 1 and {MAX_DAYS}, or left out for no expiry"),
                });
            }
            other => other,
        };
        let now = self.clock.now();
        let (secret, hash) = new_secret(PREFIX);
        let token = ApiToken {
            id: Uuid::new_v4(),
            user_id: owner.user_id(),
            name: name.as_str().to_owned(),
            prefix: secret.expose_secret()[..SHOWN_PREFIX_CHARS].to_owned(),
            expires_at: expires_in_days.map(|d| now + Duration::days(d.into())),
            created_at: now,
        };
        let row = token.clone();
        self.store
            .write(move |tx| store::api_tokens::insert(tx, &row, &hash))
            .await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn list_api_tokens(&self, caller: &Principal) -> Result<Vec<ApiToken>, AuthError> {
        let scope = caller.scope();
        Ok(self
            .store
            .read(move |c| store::api_tokens::list(c, scope))
            .await?)
    }

    pub async fn delete_api_token(&self, caller: &Principal, id: Uuid) -> Result<(), AuthError> {
        let scope = caller.scope();
        Ok(self
            .store
            .write(move |tx| store::api_tokens::delete(tx, id, scope))
            .await?)
    }
}
