//! Verified credentials kept in memory, so an authenticated request does
//! not read the store when nothing changed: the store's reader threads were
//! most of what `GET /api/v1/me` cost (README "Performance").
//!
//! The cache is good for one [`Store::auth_generation`]; every committed
//! change to users, sessions or API tokens moves it (SQL triggers, so no
//! code path can forget), and the first request after sees an empty cache.
//! So a logout, a revocation or a disable takes effect on the next request,
//! as without the cache. What is checked per request without the store
//! stays per request: the JWT's signature and expiry, an API token's
//! expiry. Only successes are kept: random bearer tokens never fill it.
//!
//! [`Store::auth_generation`]: crate::store::Store::auth_generation

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Principal;

/// Far above the sessions and tokens an appliance has in use at once; past
/// it the cache starts again rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// The SHA-256 of an API token, as the store keeps it.
    Token([u8; 32]),
    /// A session id and its user, from a verified JWT.
    Session(Uuid, Uuid),
}

#[derive(Clone)]
struct Cached {
    principal: Principal,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    map: HashMap<Key, Cached>,
}

#[derive(Default)]
pub struct PrincipalCache(RwLock<Inner>);

impl PrincipalCache {
    /// The principal verified for `key` in `generation`, if still valid at
    /// `now`.
    pub fn get(&self, key: &Key, generation: u64, now: DateTime<Utc>) -> Option<Principal> {
        let inner = self.0.read().unwrap_or_else(|p| p.into_inner());
        if inner.generation != generation {
            return None;
        }
        let hit = inner.map.get(key)?;
        hit.expires_at
            .is_none_or(|e| e > now)
            .then(|| hit.principal.clone())
    }

    /// Keeps what the store said for `key`. `generation` must have been
    /// read before the store was, so a change committed in between makes
    /// the entry stale rather than wrong.
    pub fn put(
        &self,
        key: Key,
        generation: u64,
        principal: Principal,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let mut inner = self.0.write().unwrap_or_else(|p| p.into_inner());
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation || inner.map.len() >= MAX_ENTRIES {
            inner.map.clear();
            inner.generation = generation;
        }
        inner.map.insert(
            key,
            Cached {
                principal,
                expires_at,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use crate::clock::{Clock, SystemClock};
    use crate::store::users::User;
    use crate::types::{Role, SubscriptionTier};

    fn principal() -> Principal {
        let now = SystemClock.now();
        Principal {
            user: User {
                id: Uuid::new_v4(),
                email: "a@example.com".into(),
                role: Role::Member,
                subscription_tier: SubscriptionTier::Free,
                disabled: false,
                may_use_server_token: false,
                created_at: now,
                updated_at: now,
            },
            credential: Credential::ApiToken(Uuid::new_v4()),
        }
    }

    #[test]
    fn a_new_generation_empties_the_cache_and_an_older_one_is_not_kept() {
        let cache = PrincipalCache::default();
        let now = SystemClock.now();
        let key = Key::Token([7; 32]);
        cache.put(key, 3, principal(), None);
        assert!(cache.get(&key, 3, now).is_some());
        assert!(cache.get(&key, 4, now).is_none());
        // A reader that read generation 3 before a change, then the store,
        // must not put its stale answer back once 4 is in use.
        cache.put(Key::Token([8; 32]), 4, principal(), None);
        cache.put(key, 3, principal(), None);
        assert!(cache.get(&key, 4, now).is_none());
        assert!(cache.get(&Key::Token([8; 32]), 4, now).is_some());
    }

    #[test]
    fn an_expired_token_is_not_served_from_the_cache() {
        let cache = PrincipalCache::default();
        let now = SystemClock.now();
        let key = Key::Token([1; 32]);
        cache.put(
            key,
            0,
            principal(),
            Some(now + chrono::Duration::seconds(5)),
        );
        assert!(cache.get(&key, 0, now).is_some());
        assert!(
            cache
                .get(&key, 0, now + chrono::Duration::seconds(5))
                .is_none()
        );
    }

    #[test]
    fn it_starts_again_rather_than_grow_past_its_bound() {
        let cache = PrincipalCache::default();
        let now = SystemClock.now();
        for i in 0..MAX_ENTRIES as u32 + 1 {
            cache.put(
                Key::Session(Uuid::from_u128(i.into()), Uuid::nil()),
                0,
                principal(),
                None,
            );
        }
        let first = Key::Session(Uuid::from_u128(0), Uuid::nil());
        let last = Key::Session(Uuid::from_u128(MAX_ENTRIES as u128), Uuid::nil());
        assert!(cache.get(&first, 0, now).is_none());
        assert!(cache.get(&last, 0, now).is_some());
    }
}
