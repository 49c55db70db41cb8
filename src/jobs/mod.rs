//! The durable in-process job scheduler (it replaces the spec's Celery and
//! Redis). Jobs live in SQLite, so they survive restarts; tokio workers run
//! them; a failed attempt is retried with exponential backoff and jitter up
//! to its kind's limit, then kept as failed with its last error.
//!
//! Time comes from the injected [`Clock`](crate::clock::Clock): tests move a
//! `ManualClock` and call [`Scheduler::run_due`] instead of sleeping.

pub mod maintenance;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::store::{self, Store, StoreError, jobs::NewJob};

/// What a job handler returns: `Err` carries a message kept in `last_error`
/// (never put secrets in it) and counts as a failed attempt.
pub type JobResult = Result<Next, String>;

/// What happens after a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Done,
    /// Run the same job again at this time, e.g. to poll DNS until a
    /// record appears. This is not a failure: attempts start over.
    At(DateTime<Utc>),
}

/// Lets code outside the scheduler that inserted jobs in its own
/// transaction wake the workers.
#[derive(Clone)]
pub struct Waker(Arc<Notify>);

impl Waker {
    /// A waker with no workers behind it, for processes that only enqueue
    /// (CLI commands): the server's workers find the jobs on their own.
    pub fn detached() -> Self {
        Self(Arc::new(Notify::new()))
    }

    pub fn wake(&self) {
        // notify_one keeps a permit when no worker is waiting yet, so a job
        // enqueued while the workers are busy is not left for the idle tick.
        self.0.notify_one();
    }
}
type JobFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;
type Handler = Arc<dyn Fn(Value) -> JobFuture + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job kind '{0}' is registered")]
    UnknownKind(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Kind {
    max_attempts: u32,
    /// Periodic kinds are enqueued again this long after each run ends.
    every: Option<Duration>,
    handler: Handler,
}

/// Retry delays: `base · 2^(attempt-1)`, capped, then scaled by a random
/// factor in [0.5, 1] so jobs that failed together do not retry together.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::seconds(5),
            cap: Duration::hours(1),
        }
    }
}

pub struct Scheduler {
    store: Store,
    clock: SharedClock,
    kinds: HashMap<&'static str, Kind>,
    worker_id: String,
    backoff: Backoff,
    rng: Arc<Mutex<StdRng>>,
    wake: Arc<Notify>,
}

impl Scheduler {
    pub fn new(store: Store, clock: SharedClock, rng: StdRng) -> Self {
        Self {
            store,
            clock,
            kinds: HashMap::new(),
            worker_id: format!("pid{}-{}", std::process::id(), Uuid::new_v4().simple()),
            backoff: Backoff::default(),
            rng: Arc::new(Mutex::new(rng)),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// The seeded RNG the retry jitter draws from, for jitter of job
    /// handlers' own (certificate renewal times).
    pub fn rng(&self) -> Arc<Mutex<StdRng>> {
        self.rng.clone()
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Registers the handler for `kind`, tried at most `max_attempts` times.
    pub fn register<F, Fut>(&mut self, kind: &'static str, max_attempts: u32, handler: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.insert_kind(kind, max_attempts, None, handler);
    }

    /// Registers a kind that runs every `every`, starting when the workers
    /// start.
    pub fn register_periodic<F, Fut>(&mut self, kind: &'static str, every: Duration, handler: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.insert_kind(kind, 3, Some(every), handler);
    }

    fn insert_kind<F, Fut>(
        &mut self,
        kind: &'static str,
        max_attempts: u32,
        every: Option<Duration>,
        handler: F,
    ) where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |payload| Box::pin(handler(payload)));
        self.kinds.insert(
            kind,
            Kind {
                max_attempts: max_attempts.max(1),
                every,
                handler,
            },
        );
    }

    /// Persists a job; it runs once `run_at` has passed. With a `unique_key`
    /// that a queued or running job already has, that job's id is returned.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: Value,
        run_at: DateTime<Utc>,
        unique_key: Option<&str>,
    ) -> Result<Uuid, JobError> {
        let max_attempts = self
            .kinds
            .get(kind)
            .ok_or_else(|| JobError::UnknownKind(kind.to_owned()))?
            .max_attempts;
        let (kind, key, now) = (
            kind.to_owned(),
            unique_key.map(str::to_owned),
            self.clock.now(),
        );
        let id = self
            .store
            .write(move |tx| {
                store::jobs::insert(
                    tx,
                    &NewJob {
                        kind: &kind,
                        payload: &payload,
                        run_at,
                        max_attempts,
                        unique_key: key.as_deref(),
                    },
                    now,
                )
            })
            .await?;
        self.waker().wake();
        Ok(id)
    }

    /// Start-up: requeues jobs a dead process left running and makes sure
    /// every periodic kind has its next run queued.
    pub async fn recover(&self) -> Result<usize, JobError> {
        let now = self.clock.now();
        let orphans = self
            .store
            .write(move |tx| store::jobs::requeue_orphans(tx, now))
            .await?;
        if orphans > 0 {
            tracing::warn!(orphans, "requeued jobs interrupted by the last shutdown");
        }
        for (kind, k) in &self.kinds {
            if k.every.is_some() {
                self.enqueue(kind, Value::Null, now, Some(kind)).await?;
            }
        }
        Ok(orphans)
    }

    /// Runs every job that is due now, one after another; returns how many
    /// ran.
    pub async fn run_due(&self) -> Result<usize, JobError> {
        let mut ran = 0;
        loop {
            let (worker, now) = (self.worker_id.clone(), self.clock.now());
            let claimed = self
                .store
                .write(move |tx| store::jobs::claim_due(tx, &worker, now))
                .await?;
            let Some(job) = claimed else { return Ok(ran) };
            self.run_claimed(job).await?;
            ran += 1;
        }
    }

    async fn run_claimed(&self, job: store::jobs::JobRow) -> Result<(), JobError> {
        let kind = self.kinds.get(job.kind.as_str());
        let outcome = match kind {
            None => Err(format!(
                "no handler for job kind '{}' in this version",
                job.kind
            )),
            // A spawned task turns a panicking handler into an error
            // instead of taking the worker down.
            Some(k) => tokio::spawn((k.handler)(job.payload.clone()))
                .await
                .unwrap_or_else(|e| Err(format!("job panicked: {e}"))),
        };
        let now = self.clock.now();
        let id = job.id;
        match outcome {
            Ok(Next::Done) => {
                self.store
                    .write(move |tx| store::jobs::succeed(tx, id, now))
                    .await?;
            }
            Ok(Next::At(at)) => {
                self.store
                    .write(move |tx| store::jobs::reschedule(tx, id, at, now))
                    .await?;
                return Ok(());
            }
            Err(error) => {
                let limit = kind.map_or(job.max_attempts, |k| k.max_attempts);
                let retry_at = (kind.is_some() && job.attempts < limit)
                    .then(|| now + self.retry_delay(job.attempts));
                tracing::warn!(job = %id, kind = %job.kind, attempt = job.attempts, %error, "job failed");
                self.store
                    .write(move |tx| store::jobs::fail(tx, id, &error, retry_at, now))
                    .await?;
            }
        }
        if let Some(every) = kind.and_then(|k| k.every) {
            self.enqueue(&job.kind, Value::Null, now + every, Some(&job.kind))
                .await?;
        }
        Ok(())
    }

    pub fn retry_delay(&self, attempt: u32) -> Duration {
        // 2^20 · base is past any sensible cap; stopping there avoids overflow.
        let exp = attempt.saturating_sub(1).min(20);
        let full = (self.backoff.base * 2i32.pow(exp)).min(self.backoff.cap);
        let factor: f64 = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .gen_range(0.5..=1.0);
        Duration::milliseconds((full.num_milliseconds() as f64 * factor) as i64)
    }

    /// The worker loop: runs due jobs, then sleeps until the next one is
    /// due, a new job is enqueued, or `shutdown` turns true. A job in
    /// progress finishes before the loop returns.
    pub async fn work(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        const IDLE: std::time::Duration = std::time::Duration::from_secs(30);
        while !*shutdown.borrow() {
            if let Err(e) = self.run_due().await {
                tracing::error!(error = %e, "job scheduler could not reach the store");
            }
            let next = self
                .store
                .read(store::jobs::next_run_at)
                .await
                .ok()
                .flatten();
            let wait = next
                .and_then(|t| (t - self.clock.now()).to_std().ok())
                .map_or(IDLE, |d| d.min(IDLE));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
