//! Login throttling per account and per client IP. A few failures are free;
//! after that each further attempt must wait twice as long as the last
//! (2 s, 4 s, 8 s … up to 15 minutes) after the latest failure. Waiting is
//! enforced by refusing early with a Retry-After, never by holding a
//! connection open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::clock::SharedClock;
use crate::types::EmailAddress;

const ACCOUNT_FREE: u32 = 5;
const IP_FREE: u32 = 20;
const MAX_DELAY_SECS: i64 = 15 * 60;
/// Bound on remembered keys; stale ones are dropped first when it is hit.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::Account(_) => ACCOUNT_FREE,
            Key::Ip(_) => IP_FREE,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: DateTime<Utc>,
}

impl Failures {
    fn open_at(&self, free: u32) -> Option<DateTime<Utc>> {
        let over = self.count.checked_sub(free).filter(|o| *o > 0)?;
        let secs = 1i64.checked_shl(over.min(20)).unwrap_or(MAX_DELAY_SECS);
        Some(self.last + Duration::seconds(secs.min(MAX_DELAY_SECS)))
    }
}

pub struct LoginThrottle {
    clock: SharedClock,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl LoginThrottle {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &EmailAddress, ip: IpAddr) -> [Key; 2] {
        [Key::Account(email.as_str().to_owned()), Key::Ip(ip)]
    }

    /// `Err(seconds)` when this account or IP must wait before trying again.
    pub fn check(&self, email: &EmailAddress, ip: IpAddr) -> Result<(), u64> {
        let now = self.clock.now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = Self::keys(email, ip)
            .iter()
            .filter_map(|k| map.get(k)?.open_at(k.free()))
            .filter(|open| *open > now)
            .map(|open| (open - now).num_milliseconds())
            .max();
        match wait {
            Some(ms) => Err(((ms + 999) / 1000).max(1) as u64),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &EmailAddress, ip: IpAddr) {
        let now = self.clock.now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            let stale = now - Duration::seconds(MAX_DELAY_SECS);
            map.retain(|_, f| f.last > stale);
        }
        for key in Self::keys(email, ip) {
            let f = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// A successful login clears the account's failures (not the IP's: one
    /// good password must not unlock guessing at other accounts).
    pub fn record_success(&self, email: &EmailAddress) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Key::Account(email.as_str().to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn delays_double_after_the_free_failures_and_expire() {
        let clock = Arc::new(ManualClock::new(DateTime::UNIX_EPOCH));
        let t = LoginThrottle::new(clock.clone());
        let email = EmailAddress::parse("a@example.com").unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..ACCOUNT_FREE {
            assert!(t.check(&email, ip).is_ok());
            t.record_failure(&email, ip);
        }
        // Exactly the free failures: still open.
        assert!(t.check(&email, ip).is_ok());
        t.record_failure(&email, ip);
        assert_eq!(t.check(&email, ip), Err(2));
        clock.advance(Duration::seconds(2));
        assert!(t.check(&email, ip).is_ok());
        t.record_failure(&email, ip);
        assert_eq!(t.check(&email, ip), Err(4));

        // Another account from another IP is unaffected.
        let other = EmailAddress::parse("b@example.com").unwrap();
        assert!(t.check(&other, "192.0.2.2".parse().unwrap()).is_ok());

        t.record_success(&email);
        assert!(t.check(&email, ip).is_ok());
    }

    #[test]
    fn an_ip_guessing_across_accounts_is_slowed() {
        let clock = Arc::new(ManualClock::new(DateTime::UNIX_EPOCH));
        let t = LoginThrottle::new(clock);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for i in 0..=IP_FREE {
            let e = EmailAddress::parse(&format!("u{i}@example.com")).unwrap();
            t.record_failure(&e, ip);
        }
        let fresh = EmailAddress::parse("fresh@example.com").unwrap();
        assert_eq!(t.check(&fresh, ip), Err(2));
    }
}
