//! Request rate limits: per bearer token, or per client IP for requests
//! without one (spec: 1000 requests/minute, bursts to 2000). Limiting runs
//! before authentication so a flood costs one hash and one map lookup.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::error::ApiError;
use super::extract::{bearer, client_ip};
use crate::auth::secret_hash;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A prefix of the token's SHA-256: the token itself is never kept.
    Token([u8; 16]),
    Ip(IpAddr),
}

pub type Limiter = DefaultKeyedRateLimiter<Key>;

pub fn limiter(per_minute: NonZeroU32, burst: NonZeroU32) -> Limiter {
    RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let key = match bearer(&parts) {
        Some(token) => {
            let mut prefix = [0u8; 16];
            prefix.copy_from_slice(&secret_hash(token)[..16]);
            Key::Token(prefix)
        }
        None => Key::Ip(client_ip(&parts)),
    };
    match state.limiter.check_key(&key) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::too_many(
                secs.max(1),
                "rate_limited",
                format!("too many requests; retry after {} seconds", secs.max(1)),
            )
            .into_response()
        }
    }
}
