//! The `jobs` table behind the durable scheduler (see [`crate::jobs`]).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, uuid_at};

#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub state: String,
    pub run_at: DateTime<Utc>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, kind, payload, state, run_at, attempts, max_attempts, last_error";

fn from_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    let payload: String = row.get(2)?;
    Ok(JobRow {
        id: uuid_at(row, 0)?,
        kind: row.get(1)?,
        payload: serde_json::from_str(&payload).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        state: row.get(3)?,
        run_at: row.get(4)?,
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        last_error: row.get(7)?,
    })
}

pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
    /// At most one queued or running job has a given key.
    pub unique_key: Option<&'a str>,
}

/// Inserts a job; with a unique key that is already live, returns the live
/// job's id instead of adding a second one.
pub fn insert(conn: &Connection, job: &NewJob<'_>, now: DateTime<Utc>) -> Result<Uuid> {
    if let Some(key) = job.unique_key {
        let live: Option<Uuid> = conn
            .query_row(
                "SELECT id FROM jobs WHERE unique_key = ?1 AND state IN ('queued', 'running')",
                [key],
                |r| uuid_at(r, 0),
            )
            .optional()?;
        if let Some(id) = live {
            return Ok(id);
        }
    }
    let id = Uuid::new_v4();
    conn.execute(
        "INSERT INTO jobs (id, kind, payload, unique_key, run_at, max_attempts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            id.to_string(),
            job.kind,
            job.payload.to_string(),
            job.unique_key,
            job.run_at,
            job.max_attempts,
            now
        ],
    )?;
    Ok(id)
}

/// Claims the earliest due queued job for `worker`, counting the attempt.
pub fn claim_due(conn: &Connection, worker: &str, now: DateTime<Utc>) -> Result<Option<JobRow>> {
    let sql = format!(
        "UPDATE jobs SET state = 'running', locked_by = ?1, attempts = attempts + 1, updated_at = ?2
         WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ?2
                     ORDER BY run_at LIMIT 1)
         RETURNING {COLUMNS}"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![worker, now], from_row)
        .optional()?)
}

pub fn succeed(conn: &Connection, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET state = 'succeeded', locked_by = NULL, updated_at = ?2, finished_at = ?2
         WHERE id = ?1",
        params![id.to_string(), now],
    )?;
    Ok(())
}

/// Queues a job that asked to run again at `at`, with a fresh count of
/// attempts.
pub fn reschedule(
    conn: &Connection,
    id: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', run_at = ?2, attempts = 0, last_error = NULL,
            locked_by = NULL, updated_at = ?3
         WHERE id = ?1",
        params![id.to_string(), at, now],
    )?;
    Ok(())
}

/// Records a failed attempt: queued again at `retry_at`, or failed for good
/// when there is none.
pub fn fail(
    conn: &Connection,
    id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET state = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'queued' END,
            run_at = coalesce(?3, run_at), last_error = ?2, locked_by = NULL, updated_at = ?4,
            finished_at = CASE WHEN ?3 IS NULL THEN ?4 END
         WHERE id = ?1",
        params![id.to_string(), error, retry_at, now],
    )?;
    Ok(())
}

/// Puts back every job left running by a process that is gone. Only one
/// server runs on a data dir (it holds the data dir lock), so at start every
/// running job is an orphan; its attempt still counts.
pub fn requeue_orphans(conn: &Connection, now: DateTime<Utc>) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE jobs SET state = 'queued', locked_by = NULL, updated_at = ?1,
            last_error = coalesce(last_error, 'interrupted: the server stopped while it ran')
         WHERE state = 'running'",
        params![now],
    )?)
}

pub fn by_id(conn: &Connection, id: Uuid) -> Result<Option<JobRow>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id.to_string()], from_row)
        .optional()?)
}

/// The earliest time a queued job becomes due, so workers sleep until then.
pub fn next_run_at(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    Ok(conn.query_row(
        "SELECT min(run_at) FROM jobs WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?)
}

/// Deletes finished jobs older than `before`.
pub fn purge_finished(conn: &Connection, before: DateTime<Utc>) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < ?1",
        params![before],
    )?)
}
