//! Request rate limits (spec: 1000 requests/minute, bursts to 2000), keyed
//! so that they cannot be dodged:
//!
//! - a request whose bearer verifies counts against its user, however many
//!   tokens the user holds;
//! - a request without a bearer, or whose bearer does not verify, counts
//!   against its source address (the client named by `trusted_proxies`),
//!   so random tokens from one address are limited like any anonymous
//!   flood;
//! - the routes whose secret is in the request itself (`/login`, the
//!   `/api/v1/auth/*` logins, `/u/{token}`, the export download) always
//!   count against the source address.
//!
//! The bearer is verified here once and the result handed to the
//! [`Principal`] extractor, so limiting adds no second lookup.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{bearer, client_ip};
use crate::auth::{AuthError, Principal};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    User(Uuid),
    Ip(IpAddr),
}

/// What this layer found of the request's bearer, for the extractor.
#[derive(Clone)]
pub(super) enum Checked {
    Verified(Box<Principal>),
    /// Invalid, expired or revoked.
    Rejected,
}

pub type Limiter = DefaultKeyedRateLimiter<Key>;

pub fn limiter(per_minute: NonZeroU32, burst: NonZeroU32) -> Limiter {
    RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
}

/// Limits per verified user, else per source address.
pub async fn per_caller(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ip = client_ip(&parts, &state.trusted_proxies);
    let checked = match bearer(&parts) {
        Some(token) => Some(state.auth.authenticate(token).await),
        None => None,
    };
    let key = match checked {
        Some(Ok(principal)) => {
            let key = Key::User(principal.user_id());
            parts
                .extensions
                .insert(Checked::Verified(Box::new(principal)));
            key
        }
        Some(Err(AuthError::InvalidToken)) => {
            parts.extensions.insert(Checked::Rejected);
            Key::Ip(ip)
        }
        // No bearer, or a fault (the extractor tries again and answers
        // 503 if it persists).
        Some(Err(_)) | None => Key::Ip(ip),
    };
    admit(&state, &key, Request::from_parts(parts, body), next).await
}

/// Limits per source address, whatever the request carries.
pub async fn per_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let key = Key::Ip(client_ip(&parts, &state.trusted_proxies));
    admit(&state, &key, Request::from_parts(parts, body), next).await
}

/// The request if `key` has room, else 429 with Retry-After.
async fn admit(state: &AppState, key: &Key, req: Request, next: Next) -> Response {
    match state.limiter.check_key(key) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            ApiError::too_many(
                secs,
                "rate_limited",
                format!("too many requests; retry after {secs} seconds"),
            )
            .into_response()
        }
    }
}
