//! Login throttling, keyed so that a stranger cannot lock anyone out:
//!
//! - per (account, source): a few failures are free; after that each
//!   further attempt must wait twice as long as the last (2 s, 4 s, 8 s … up
//!   to 15 minutes) after the latest failure. The right password from
//!   another source is never refused because of them.
//! - per source, across accounts: the same with more free failures, so one
//!   address cannot guess at many accounts.
//! - per account, from anywhere: a ceiling of [`ACCOUNT_CEILING`] failures
//!   an hour, far above what a misconfigured client produces, so a
//!   distributed guess is bounded too. Tripping it is logged; it refuses
//!   the right password as well, which is why it is set so high.
//!
//! The check and the failure record are one step: an attempt reserves a
//! slot on every key before the password is verified, and the slot counts
//! as a failure until the attempt settles. So N concurrent wrong guesses
//! cost at most the free number of argon2 verifications (OWASP ASVS 4
//! V2.2.1). An attempt that finds every slot taken by attempts still in
//! flight waits for one of them to settle instead of being refused, so a
//! client's right password is not refused because it logs in in parallel.
//! Waiting for a delay is enforced by refusing early with a Retry-After,
//! never by holding a connection open.
//!
//! IPv6 sources are keyed by their /64, the block one subscriber gets
//! (RFC 6177), so rotating addresses inside it gains nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

use crate::clock::SharedClock;

/// Failures per (account, source) before delays start.
pub const PAIR_FREE: u32 = 5;
/// Failures per source, over all accounts, before delays start.
pub const SOURCE_FREE: u32 = 20;
/// Failures per account an hour, from all sources together.
pub const ACCOUNT_CEILING: u32 = 500;
const CEILING_WINDOW: Duration = Duration::hours(1);
const MAX_DELAY_SECS: i64 = 15 * 60;
/// Bound on remembered keys; settled stale ones are dropped first when it
/// is hit.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Source(IpAddr),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Slots {
    /// Settled failures (for [`Key::Account`]: within the window).
    failures: u32,
    /// Attempts reserved and not yet settled.
    pending: u32,
    /// The latest failure; for [`Key::Account`], the window's start.
    last: DateTime<Utc>,
}

/// What a key says about one more attempt now.
enum Room {
    Free,
    /// Every slot is held by an attempt in flight.
    Full,
    /// Refused; seconds until it opens.
    Closed(u64),
}

fn secs_until(open: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (open - now).num_milliseconds().max(0);
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

impl Key {
    fn room(&self, s: &Slots, now: DateTime<Utc>) -> Room {
        let capacity = match self {
            Key::Account(_) => {
                if now >= s.last + CEILING_WINDOW {
                    ACCOUNT_CEILING
                } else if s.failures >= ACCOUNT_CEILING {
                    return Room::Closed(secs_until(s.last + CEILING_WINDOW, now));
                } else {
                    ACCOUNT_CEILING - s.failures
                }
            }
            Key::Pair(..) | Key::Source(_) => {
                let free = if matches!(self, Key::Pair(..)) {
                    PAIR_FREE
                } else {
                    SOURCE_FREE
                };
                match s.failures.checked_sub(free) {
                    // Below the free failures: the rest are slots.
                    None => free - s.failures,
                    Some(over) => {
                        let secs = 1i64.checked_shl(over.saturating_add(1).min(20));
                        let delay = secs.unwrap_or(MAX_DELAY_SECS).min(MAX_DELAY_SECS);
                        let open = s.last + Duration::seconds(delay);
                        if now < open {
                            return Room::Closed(secs_until(open, now));
                        }
                        // The delay has passed: one more try.
                        1
                    }
                }
            }
        };
        if s.pending >= capacity {
            Room::Full
        } else {
            Room::Free
        }
    }
}

pub struct LoginThrottle {
    clock: SharedClock,
    slots: Mutex<HashMap<Key, Slots>>,
    /// Woken whenever an attempt settles, for attempts waiting on a slot.
    settled: Notify,
}

/// A reserved login attempt. Settle it with [`Attempt::succeeded`],
/// [`Attempt::failed`] or [`Attempt::abandoned`]; one dropped unsettled
/// (its request was cancelled mid-check) counts as a failure.
#[must_use = "settle the attempt once the password is checked"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [Key; 3],
    settled: bool,
}

enum Settle {
    Success,
    Failure,
    /// Nothing counts: the check could not run.
    Release,
}

/// The part of a source address that identifies one client.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            IpAddr::V6(Ipv6Addr::new(seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl LoginThrottle {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            slots: Mutex::new(HashMap::new()),
            settled: Notify::new(),
        }
    }

    fn keys(account: &str, source: IpAddr) -> [Key; 3] {
        let account = account.to_ascii_lowercase();
        let source = source_key(source);
        [
            Key::Pair(account.clone(), source),
            Key::Source(source),
            Key::Account(account),
        ]
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Slots>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn room(map: &HashMap<Key, Slots>, keys: &[Key], now: DateTime<Utc>) -> Room {
        let mut room = Room::Free;
        for k in keys {
            match map.get(k).map_or(Room::Free, |s| k.room(s, now)) {
                Room::Closed(w) => match room {
                    Room::Closed(v) if v >= w => {}
                    _ => room = Room::Closed(w),
                },
                Room::Full if matches!(room, Room::Free) => room = Room::Full,
                _ => {}
            }
        }
        room
    }

    /// `Err(seconds)` when `account` from `source` must wait before trying
    /// again. Reserves nothing: for a check that costs no verification.
    pub fn check(&self, account: &str, source: IpAddr) -> Result<(), u64> {
        match Self::room(&self.lock(), &Self::keys(account, source), self.clock.now()) {
            Room::Closed(wait) => Err(wait),
            Room::Free | Room::Full => Ok(()),
        }
    }

    /// Reserves an attempt for `account` from `source` before its password
    /// is verified, waiting while every slot is held by attempts in flight;
    /// `Err(seconds)` when it must wait before trying again.
    pub async fn reserve(&self, account: &str, source: IpAddr) -> Result<Attempt<'_>, u64> {
        let keys = Self::keys(account, source);
        loop {
            let wake = self.settled.notified();
            tokio::pin!(wake);
            // Registered before the check, so a settle in between is seen.
            wake.as_mut().enable();
            {
                let now = self.clock.now();
                let mut map = self.lock();
                match Self::room(&map, &keys, now) {
                    Room::Closed(wait) => return Err(wait),
                    Room::Full => {}
                    Room::Free => {
                        Self::prune(&mut map, now);
                        for k in &keys {
                            let s = map.entry(k.clone()).or_insert(Slots {
                                failures: 0,
                                pending: 0,
                                last: now,
                            });
                            if matches!(k, Key::Account(_)) && now >= s.last + CEILING_WINDOW {
                                s.failures = 0;
                                s.last = now;
                            }
                            s.pending += 1;
                        }
                        return Ok(Attempt {
                            throttle: self,
                            keys,
                            settled: false,
                        });
                    }
                }
            }
            wake.await;
        }
    }

    fn prune(map: &mut HashMap<Key, Slots>, now: DateTime<Utc>) {
        if map.len() >= MAX_KEYS {
            let stale = now - Duration::seconds(MAX_DELAY_SECS).max(CEILING_WINDOW);
            map.retain(|_, s| s.pending > 0 || s.last > stale);
        }
    }

    fn settle(&self, keys: &[Key], how: Settle) {
        let now = self.clock.now();
        let mut map = self.lock();
        for k in keys {
            let Some(s) = map.get_mut(k) else { continue };
            s.pending = s.pending.saturating_sub(1);
            match how {
                Settle::Failure => {
                    s.failures = s.failures.saturating_add(1);
                    match k {
                        Key::Account(account) => {
                            if s.failures == ACCOUNT_CEILING {
                                tracing::warn!(
                                    account = %account,
                                    failures = ACCOUNT_CEILING,
                                    "failed logins from all sources reached the per-account ceiling; the account's logins are refused until the hour is over"
                                );
                            }
                        }
                        _ => s.last = now,
                    }
                }
                // A right password clears its own source's failures, not
                // the source's or the account's: one good password must
                // not unlock guessing at other accounts.
                Settle::Success if matches!(k, Key::Pair(..)) => s.failures = 0,
                Settle::Success | Settle::Release => {}
            }
            if s.pending == 0 && s.failures == 0 {
                map.remove(k);
            }
        }
        drop(map);
        self.settled.notify_waiters();
    }
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.finish(Settle::Success);
    }

    pub fn failed(mut self) {
        self.finish(Settle::Failure);
    }

    /// The check could not run (a store or datasource fault): nothing
    /// counts either way.
    pub fn abandoned(mut self) {
        self.finish(Settle::Release);
    }

    fn finish(&mut self, how: Settle) {
        self.settled = true;
        self.throttle.settle(&self.keys, how);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.finish(Settle::Failure);
        }
    }
}

#[cfg(test)]
mod tests;
