//! The SQLite store: one file `<data-dir>/inboxgrove.db` in WAL mode.
//!
//! All SQL lives in this module's repositories; handlers call plain
//! functions. SQLite calls block, so every call runs on tokio's blocking
//! pool: writes through the one writer connection (SQLite has a single
//! writer anyway, and queueing here beats SQLITE_BUSY), reads through a small
//! pool of reader connections that WAL lets run beside the writer.

mod migrations;

pub mod api_tokens;
pub mod audit;
pub mod jobs;
pub mod sessions;
pub mod settings;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use uuid::Uuid;

pub use migrations::SCHEMA_VERSION;

const DB_FILE: &str = "inboxgrove.db";
const MAX_IDLE_READERS: usize = 8;

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

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` on a reader connection.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match lock(&inner.readers).pop() {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let out = f(&conn);
            let mut idle = lock(&inner.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::Worker)?
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
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::from)?;
            let out = f(&tx)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(out)
        })
        .await
        .map_err(|_| StoreError::Worker)?
    }

    /// Readiness: the file is there and answers a query.
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a connection cannot leave SQLite inconsistent
    // (the transaction rolls back on drop), so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
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

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
