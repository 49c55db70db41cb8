//! The SQLite store: one file `<data-dir>/inboxgrove.db` in WAL mode.
//!
//! All SQL lives in this module's repositories; handlers call plain
//! functions. SQLite calls block, so they never run on the async runtime:
//! each connection is owned by a dedicated thread that takes closures from a
//! channel. Writes go to the one writer thread (SQLite has a single writer
//! anyway, and queueing here beats SQLITE_BUSY); reads go to a few reader
//! threads that WAL lets run beside the writer. Under load the threads stay
//! busy draining their queue instead of being woken per query, which is
//! what tokio's blocking pool would cost (measured: half the CPU of an
//! authenticated request went to thread wake-ups).

mod migrations;

pub mod api_tokens;
pub mod audit;
pub mod certificates;
pub mod domains;
pub mod events;
pub mod exports;
pub mod integration_keys;
pub mod jobs;
pub mod mailboxes;
pub mod reports;
pub mod retention;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod tiers;
pub mod users;
pub mod warmup;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use uuid::Uuid;

pub use migrations::SCHEMA_VERSION;

const DB_FILE: &str = "inboxgrove.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the database is at schema version {found}, newer than this binary understands ({known}); run the newer InboxGrove or restore a backup"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the database worker stopped unexpectedly")]
    Worker,
}

pub type Result<T> = std::result::Result<T, StoreError>;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Clone)]
pub struct Store {
    readers: Sender<Job>,
    writer: Sender<Job>,
    auth: Arc<AuthGeneration>,
}

/// How many times who may sign in has changed since this store was opened
/// (the `auth_generation` counter of migration 0010, which triggers raise).
/// Raised after the commit of a write that moved the counter, so whoever
/// sees a new value reads the change; and by [`Store::poll_auth_generation`]
/// for changes another process (a CLI command) made.
#[derive(Default)]
struct AuthGeneration {
    local: AtomicU64,
    /// Set by the writer's update hook when a transaction moves the counter.
    touched: AtomicBool,
    /// The counter as last read, to notice another process's changes.
    stored: AtomicI64,
}

impl Store {
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(DB_FILE)
    }

    /// Opens (creating if needed) the store of `data_dir` and applies every
    /// pending migration.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = Self::path_in(data_dir);
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across application crashes in WAL mode; only a
        // power loss can drop the last transactions (sqlite.org/wal.html).
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        migrations::migrate(&mut writer)?;
        let (readers, jobs) = crossbeam_channel::unbounded();
        for _ in 0..reader_threads() {
            spawn_owner("inboxgrove-db-read", open_reader(&path)?, jobs.clone());
        }
        let auth = Arc::new(AuthGeneration::default());
        auth.stored
            .store(read_auth_counter(&writer)?, Ordering::Relaxed);
        let hook = auth.clone();
        writer.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _| {
                if table == "auth_generation" {
                    hook.touched.store(true, Ordering::Relaxed);
                }
            },
        ));
        let (writer_tx, writer_jobs) = crossbeam_channel::unbounded();
        spawn_owner("inboxgrove-db-write", writer, writer_jobs);
        Ok(Self {
            readers,
            writer: writer_tx,
            auth,
        })
    }

    /// See [`AuthGeneration`]: a cache of verified credentials is good while
    /// this has not changed.
    pub fn auth_generation(&self) -> u64 {
        self.auth.local.load(Ordering::Acquire)
    }

    /// Reads the stored counter and raises the generation if another
    /// process moved it; the server calls this every second.
    pub async fn poll_auth_generation(&self) -> Result<()> {
        let n = self.read(read_auth_counter).await?;
        if self.auth.stored.swap(n, Ordering::Relaxed) != n {
            self.auth.local.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Runs `f` on a reader connection.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Worker)?;
        rx.await.map_err(|_| StoreError::Worker)?
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer: it commits when
    /// `f` returns Ok and rolls back otherwise, so a failure midway leaves no
    /// half-written state. `f` may fail with any error a store error
    /// converts into, so domain checks inside the transaction roll it back.
    pub async fn write<R, E, F>(&self, f: F) -> std::result::Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> std::result::Result<R, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let auth = self.auth.clone();
        self.writer
            .send(Box::new(move |conn| {
                let out = in_transaction(conn, f);
                // After the commit, so a reader that sees the new
                // generation sees the change (a rollback only costs a
                // cache refill).
                if auth.touched.swap(false, Ordering::Relaxed) {
                    auth.local.fetch_add(1, Ordering::Release);
                }
                let _ = tx.send(out);
            }))
            .map_err(|_| StoreError::Worker)?;
        rx.await.map_err(|_| StoreError::Worker)?
    }

    /// Readiness: the file is there and answers a query.
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}

/// One reader per core beyond the first, up to four. Measured on two cores
/// (`cargo bench --bench api`): one reader gave p99 9.4 ms at 200
/// concurrent requests, two gave 12.4 ms, since every extra thread competes
/// with the async workers for the same cores.
fn reader_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    cores.saturating_sub(1).clamp(1, 4)
}

fn in_transaction<R, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> std::result::Result<R, E>,
) -> std::result::Result<R, E> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let out = f(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(out)
}

/// A thread that owns `conn` and runs jobs on it until every sender is
/// dropped. A panicking job drops its reply (the caller sees `Worker`) and
/// rolls back its transaction; the thread goes on.
fn spawn_owner(name: &str, mut conn: Connection, jobs: Receiver<Job>) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            for job in jobs {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
            }
        });
    if let Err(e) = spawned {
        // Without the thread its queue has no consumer: callers get Worker.
        tracing::error!(error = %e, "cannot start a database thread");
    }
}

fn read_auth_counter(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT n FROM auth_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Reads a UUID stored as TEXT.
pub(crate) fn uuid_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reads one of the closed TEXT enums of [`crate::types`].
pub(crate) fn enum_at<T>(
    row: &rusqlite::Row<'_>,
    idx: usize,
    parse: fn(&str) -> std::result::Result<T, crate::types::ParseError>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A UNIQUE violation becomes a `Conflict` saying `what` (a message for
/// the person); any other error stays a database error.
pub(crate) fn unique_or(
    what: impl FnOnce() -> String,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what())
        } else {
            e.into()
        }
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_row(tx: &Transaction<'_>, email: &str) -> Result<usize> {
        Ok(tx.execute(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES (?1, ?2, 'x', 'member', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            [Uuid::new_v4().to_string(), email.to_owned()],
        )?)
    }

    #[tokio::test]
    async fn a_change_to_who_may_sign_in_moves_the_generation_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let start = store.auth_generation();
        // A new user changes nothing already verified.
        store
            .write(|tx| user_row(tx, "a@example.com"))
            .await
            .unwrap();
        assert_eq!(store.auth_generation(), start);
        store
            .write(|tx| {
                Ok::<_, StoreError>(
                    tx.execute("UPDATE users SET disabled_at = '2026-01-02T00:00:00Z'", [])?,
                )
            })
            .await
            .unwrap();
        let disabled = store.auth_generation();
        assert!(disabled > start);
        // A rolled-back change may cost a refill, never a missed change.
        let failed: Result<()> = store
            .write(|tx| {
                tx.execute("DELETE FROM users", [])?;
                Err(StoreError::Conflict("undo".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(store.auth_generation() >= disabled);
    }

    #[tokio::test]
    async fn another_process_s_change_is_seen_at_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| user_row(tx, "a@example.com"))
            .await
            .unwrap();
        store.poll_auth_generation().await.unwrap();
        let before = store.auth_generation();
        store.poll_auth_generation().await.unwrap();
        assert_eq!(store.auth_generation(), before, "nothing changed");
        // As a CLI command would: its own connection to the same file.
        let other = Connection::open(Store::path_in(dir.path())).unwrap();
        other
            .execute("UPDATE users SET role = 'admin'", [])
            .unwrap();
        assert_eq!(store.auth_generation(), before);
        store.poll_auth_generation().await.unwrap();
        assert!(store.auth_generation() > before);
    }
}
