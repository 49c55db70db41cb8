//! Access tokens: HS256 JWTs, 15 minutes, signed with a key generated once
//! and kept sealed in the store's `settings` table.
//!
//! Expiry is checked against the injected clock, not by the jsonwebtoken
//! crate (which reads the wall clock), so tests can move time.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ACCESS_TTL: Duration = Duration::minutes(15);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The session (refresh-token family) this token belongs to; revoking
    /// the session ends the token before it expires.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, user: Uuid, session: Uuid, now: DateTime<Utc>) -> String {
        self.issue_for(user, session, now, ACCESS_TTL)
    }

    /// A token living `ttl`: the browser UI's session cookie lives longer
    /// than an API access token, as it cannot be refreshed by a script.
    pub fn issue_for(
        &self,
        user: Uuid,
        session: Uuid,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> String {
        let claims = Claims {
            sub: user,
            sid: session,
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        // Encoding a plain struct with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The claims of a well-signed, unexpired token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp > now.timestamp()).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_verifies_and_expires_on_the_given_clock() {
        let keys = JwtKeys::from_secret(&[7u8; 32]);
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(user, session, now);
        let claims = keys.verify(&token, now + Duration::minutes(14)).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));
        assert!(keys.verify(&token, now + ACCESS_TTL).is_none());
        assert!(
            JwtKeys::from_secret(&[8u8; 32])
                .verify(&token, now)
                .is_none()
        );
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(keys.verify(&forged, now).is_none());
    }
}
