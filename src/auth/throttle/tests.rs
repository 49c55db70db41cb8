use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration};
use futures_util::FutureExt;

use super::*;
use crate::clock::ManualClock;

const A: &str = "a@example.com";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn throttle() -> (Arc<ManualClock>, LoginThrottle) {
    let clock = Arc::new(ManualClock::new(DateTime::UNIX_EPOCH));
    (clock.clone(), LoginThrottle::new(clock))
}

/// Reserves and fails at once.
async fn fail(t: &LoginThrottle, account: &str, source: IpAddr) {
    t.reserve(account, source).await.unwrap().failed();
}

#[tokio::test]
async fn delays_double_after_the_free_failures_and_expire() {
    let (clock, t) = throttle();
    let here = ip("192.0.2.1");
    for _ in 0..PAIR_FREE {
        fail(&t, A, here).await;
    }
    assert_eq!(t.check(A, here), Err(2));
    assert_eq!(t.reserve(A, here).await.err(), Some(2));
    clock.advance(Duration::seconds(2));
    fail(&t, A, here).await;
    assert_eq!(t.reserve(A, here).await.err(), Some(4));

    // The same account from another source is not refused at all.
    let there = ip("198.51.100.9");
    t.reserve(A, there).await.unwrap().succeeded();

    // The right password from the first source, once allowed, clears it.
    clock.advance(Duration::seconds(4));
    t.reserve(A, here).await.unwrap().succeeded();
    for _ in 0..PAIR_FREE {
        fail(&t, A, here).await;
    }
    assert_eq!(t.check(A, here), Err(2));
}

#[tokio::test]
async fn a_source_guessing_across_accounts_is_slowed() {
    let (_, t) = throttle();
    let here = ip("198.51.100.7");
    for i in 0..SOURCE_FREE {
        fail(&t, &format!("u{i}@example.com"), here).await;
    }
    assert_eq!(t.check("fresh@example.com", here), Err(2));
    assert!(t.check("fresh@example.com", ip("198.51.100.8")).is_ok());
}

#[tokio::test]
async fn ipv6_sources_are_one_client_per_64() {
    let (_, t) = throttle();
    for i in 0..PAIR_FREE {
        fail(&t, A, ip(&format!("2001:db8:1:2::{i}"))).await;
    }
    assert_eq!(t.check(A, ip("2001:db8:1:2:ffff::1")), Err(2));
    assert!(t.check(A, ip("2001:db8:1:3::1")).is_ok());
}

#[tokio::test]
async fn the_per_account_ceiling_holds_for_an_hour() {
    let (clock, t) = throttle();
    let sources = ACCOUNT_CEILING / PAIR_FREE;
    for s in 0..sources {
        let source = IpAddr::from([10, 0, (s / 256) as u8, (s % 256) as u8]);
        for _ in 0..PAIR_FREE {
            fail(&t, A, source).await;
        }
    }
    let fresh = ip("203.0.113.1");
    assert_eq!(t.reserve(A, fresh).await.err(), Some(3600));
    assert!(t.check("b@example.com", fresh).is_ok());
    clock.advance(Duration::hours(1));
    t.reserve(A, fresh).await.unwrap().succeeded();
}

#[tokio::test]
async fn attempts_in_flight_hold_their_slots() {
    let (_, t) = throttle();
    let here = ip("192.0.2.1");
    let mut held = Vec::new();
    for _ in 0..PAIR_FREE {
        held.push(t.reserve(A, here).await.unwrap());
    }
    // Every slot is in flight: the next waits instead of verifying.
    let waiting = t.reserve(A, here);
    tokio::pin!(waiting);
    assert!(waiting.as_mut().now_or_never().is_none());
    // One settles right: its slot is free again for the waiting one.
    held.pop().unwrap().succeeded();
    held.push(waiting.as_mut().now_or_never().unwrap().unwrap());
    // The next waits; all in flight fail, so it is refused, not verified.
    let waiting = t.reserve(A, here);
    tokio::pin!(waiting);
    assert!(waiting.as_mut().now_or_never().is_none());
    for a in held {
        a.failed();
    }
    assert_eq!(waiting.as_mut().now_or_never().unwrap().err(), Some(2));
}

#[tokio::test]
async fn a_dropped_attempt_counts_and_an_abandoned_one_does_not() {
    let (_, t) = throttle();
    let here = ip("192.0.2.1");
    for _ in 0..PAIR_FREE * 2 {
        t.reserve(A, here).await.unwrap().abandoned();
    }
    assert!(t.check(A, here).is_ok());
    for _ in 0..PAIR_FREE {
        drop(t.reserve(A, here).await.unwrap());
    }
    assert_eq!(t.check(A, here), Err(2));
}
