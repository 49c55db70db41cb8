use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use super::*;
use crate::clock::{Clock, ManualClock};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    Fixture {
        _dir: dir,
        store,
        clock: Arc::new(ManualClock::new(start)),
    }
}

fn scheduler(f: &Fixture) -> Scheduler {
    Scheduler::new(f.store.clone(), f.clock.clone(), StdRng::seed_from_u64(7))
}

async fn job(f: &Fixture, id: Uuid) -> store::jobs::JobRow {
    f.store
        .read(move |c| store::jobs::by_id(c, id))
        .await
        .unwrap()
        .unwrap()
}

/// A handler that counts its calls and fails the first `fail_first`.
fn flaky(fail_first: u32) -> (Arc<AtomicU32>, impl Fn(Value) -> JobFuture + Send + Sync) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = move |_payload: Value| -> JobFuture {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            if n <= fail_first {
                Err(format!("upstream said no (call {n})"))
            } else {
                Ok(Next::Done)
            }
        })
    };
    (calls, handler)
}

#[tokio::test]
async fn a_job_waits_for_its_time_then_runs_once() {
    let f = fixture();
    let mut s = scheduler(&f);
    let (calls, handler) = flaky(0);
    s.register("dns.check", 3, handler);
    let at = f.clock.now() + Duration::minutes(10);
    let id = s
        .enqueue("dns.check", json!({"d": 1}), at, None)
        .await
        .unwrap();

    assert_eq!(s.run_due().await.unwrap(), 0);
    f.clock.advance(Duration::minutes(10));
    assert_eq!(s.run_due().await.unwrap(), 1);
    assert_eq!(s.run_due().await.unwrap(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let row = job(&f, id).await;
    assert_eq!((row.state.as_str(), row.attempts), ("succeeded", 1));
    assert_eq!(row.payload, json!({"d": 1}));
}

#[tokio::test]
async fn failures_back_off_then_fail_for_good_keeping_the_error() {
    let f = fixture();
    let mut s = scheduler(&f).with_backoff(Backoff {
        base: Duration::seconds(10),
        cap: Duration::seconds(25),
    });
    let (calls, handler) = flaky(u32::MAX);
    s.register("cf.push", 3, handler);
    let id = s
        .enqueue("cf.push", Value::Null, f.clock.now(), None)
        .await
        .unwrap();

    let mut expected_max = [10, 20];
    for (attempt, max_delay) in expected_max.iter_mut().enumerate() {
        let before = f.clock.now();
        assert_eq!(s.run_due().await.unwrap(), 1);
        let row = job(&f, id).await;
        assert_eq!(row.state, "queued");
        assert_eq!(row.attempts, attempt as u32 + 1);
        let delay = (row.run_at - before).num_milliseconds();
        let max_ms = *max_delay * 1000;
        assert!(
            (max_ms / 2..=max_ms).contains(&delay),
            "attempt {attempt}: delay {delay} ms outside jittered window up to {max_ms}"
        );
        // Not due yet: nothing runs.
        assert_eq!(s.run_due().await.unwrap(), 0);
        f.clock.advance(Duration::milliseconds(delay));
    }
    assert_eq!(s.run_due().await.unwrap(), 1);
    let row = job(&f, id).await;
    assert_eq!((row.state.as_str(), row.attempts), ("failed", 3));
    assert_eq!(row.last_error.as_deref(), Some("upstream said no (call 3)"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn backoff_is_capped() {
    let f = fixture();
    let s = scheduler(&f);
    for attempt in [1, 5, 12, 40, u32::MAX] {
        let d = s.retry_delay(attempt);
        assert!(
            d <= Duration::hours(1) && d >= Duration::seconds(2),
            "{attempt}: {d}"
        );
    }
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_failed_attempt() {
    let f = fixture();
    let mut s = scheduler(&f);
    s.register("boom", 1, |_| async {
        if true {
            panic!("handler bug");
        }
        Ok(Next::Done)
    });
    let id = s
        .enqueue("boom", Value::Null, f.clock.now(), None)
        .await
        .unwrap();
    assert_eq!(s.run_due().await.unwrap(), 1);
    let row = job(&f, id).await;
    assert_eq!(row.state, "failed");
    assert!(row.last_error.unwrap().contains("panicked"));
}

#[tokio::test]
async fn jobs_left_running_by_a_dead_process_run_again() {
    let f = fixture();
    let (_, handler) = flaky(0);
    let mut first = scheduler(&f);
    first.register("dkim.rotate", 5, handler);
    let id = first
        .enqueue("dkim.rotate", Value::Null, f.clock.now(), None)
        .await
        .unwrap();
    // The first process claims the job and dies before finishing it.
    let now = f.clock.now();
    f.store
        .write(move |tx| store::jobs::claim_due(tx, "dead-worker", now))
        .await
        .unwrap()
        .unwrap();
    drop(first);

    let (calls, handler) = flaky(0);
    let mut second = scheduler(&f);
    second.register("dkim.rotate", 5, handler);
    assert_eq!(second.run_due().await.unwrap(), 0, "still marked running");
    assert_eq!(second.recover().await.unwrap(), 1);
    assert_eq!(second.run_due().await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let row = job(&f, id).await;
    assert_eq!((row.state.as_str(), row.attempts), ("succeeded", 2));
}

#[tokio::test]
async fn unique_keys_and_periodic_kinds() {
    let f = fixture();
    let mut s = scheduler(&f);
    let (calls, handler) = flaky(0);
    s.register_periodic("tick", Duration::hours(1), handler);
    let a = s
        .enqueue("tick", Value::Null, f.clock.now(), Some("tick"))
        .await
        .unwrap();
    let b = s
        .enqueue("tick", Value::Null, f.clock.now(), Some("tick"))
        .await
        .unwrap();
    assert_eq!(a, b, "a live unique key is not queued twice");
    s.recover().await.unwrap();
    assert_eq!(s.run_due().await.unwrap(), 1);
    assert_eq!(s.run_due().await.unwrap(), 0, "next run is an hour away");
    f.clock.advance(Duration::hours(1));
    assert_eq!(s.run_due().await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_kinds_are_refused_or_failed() {
    let f = fixture();
    let s = scheduler(&f);
    assert!(matches!(
        s.enqueue("nope", Value::Null, f.clock.now(), None).await,
        Err(JobError::UnknownKind(_))
    ));
    // A job written by another version whose kind this one lacks.
    let now = f.clock.now();
    let id = f
        .store
        .write(move |tx| {
            store::jobs::insert(
                tx,
                &NewJob {
                    kind: "from.the.future",
                    payload: &Value::Null,
                    run_at: now,
                    max_attempts: 5,
                    unique_key: None,
                },
                now,
            )
        })
        .await
        .unwrap();
    assert_eq!(s.run_due().await.unwrap(), 1);
    let row = job(&f, id).await;
    assert_eq!(row.state, "failed");
    assert!(row.last_error.unwrap().contains("from.the.future"));
}

#[tokio::test]
async fn a_job_can_ask_to_run_again_later() {
    let f = fixture();
    let mut s = scheduler(&f);
    let calls = Arc::new(AtomicU32::new(0));
    let (counter, clock) = (calls.clone(), f.clock.clone());
    s.register("poll", 2, move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let at = clock.now() + Duration::seconds(30);
        async move { Ok(if n < 3 { Next::At(at) } else { Next::Done }) }
    });
    let id = s
        .enqueue("poll", Value::Null, f.clock.now(), None)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(s.run_due().await.unwrap(), 1);
        let row = job(&f, id).await;
        assert_eq!((row.state.as_str(), row.attempts), ("queued", 0));
        assert_eq!(s.run_due().await.unwrap(), 0);
        f.clock.advance(Duration::seconds(30));
    }
    assert_eq!(s.run_due().await.unwrap(), 1);
    assert_eq!(job(&f, id).await.state, "succeeded");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
