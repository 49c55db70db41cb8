//! The warmup engine's rows: `warmup_mailboxes` (settings and ramp state)
//! and the `warmup_campaigns` day rows here, `warmup_messages` in
//! [`messages`], `warmup_peers` in [`peers`], what send-check and the log
//! hook count in [`sends`] (migration 0013).

pub mod messages;
pub mod peers;
pub mod sends;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, StoreError, uuid_at};
use crate::warmup::settings::Settings;

/// A mailbox's warmup state.
#[derive(Debug, Clone)]
pub struct State {
    pub mailbox_id: Uuid,
    pub enabled: bool,
    pub paused: bool,
    pub settings: Settings,
    pub seed: u64,
    pub started_on: NaiveDate,
    pub ramp_step: u32,
    pub frozen_until: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
}

const STATE: &str = "w.mailbox_id, w.enabled, w.paused, w.settings, w.seed, w.started_on,
    w.ramp_step, w.frozen_until, w.ready_at";

fn date_at(r: &Row<'_>, i: usize) -> rusqlite::Result<NaiveDate> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn state_at(r: &Row<'_>, at: usize) -> rusqlite::Result<State> {
    let json: String = r.get(at + 3)?;
    // Written only after validation; a row that no longer parses (a newer
    // binary's settings) warms with the defaults rather than not at all.
    let settings = serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| Settings::from_json(v).ok())
        .unwrap_or_default();
    let seed: i64 = r.get(at + 4)?;
    Ok(State {
        mailbox_id: uuid_at(r, at)?,
        enabled: r.get(at + 1)?,
        paused: r.get(at + 2)?,
        settings,
        seed: seed as u64,
        started_on: date_at(r, at + 5)?,
        ramp_step: r.get(at + 6)?,
        frozen_until: r.get(at + 7)?,
        ready_at: r.get(at + 8)?,
    })
}

/// Enrols a mailbox (a no-op when it already is).
pub fn enrol(
    c: &Connection,
    mailbox: Uuid,
    settings: &Settings,
    seed: u64,
    started_on: NaiveDate,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "INSERT INTO warmup_mailboxes (mailbox_id, settings, seed, started_on, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (mailbox_id) DO NOTHING",
        params![
            mailbox.to_string(),
            settings_json(settings),
            seed as i64,
            started_on.to_string(),
            now
        ],
    )?;
    Ok(())
}

fn settings_json(s: &Settings) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

pub fn get(c: &Connection, mailbox: Uuid) -> Result<Option<State>> {
    Ok(c.query_row(
        &format!("SELECT {STATE} FROM warmup_mailboxes w WHERE w.mailbox_id = ?1"),
        [mailbox.to_string()],
        |r| state_at(r, 0),
    )
    .optional()?)
}

fn changed(n: usize) -> Result<()> {
    if n == 0 {
        return Err(StoreError::NotFound("mailbox warmup"));
    }
    Ok(())
}

pub fn set_settings(c: &Connection, mailbox: Uuid, s: &Settings, now: DateTime<Utc>) -> Result<()> {
    let n = c.execute(
        "UPDATE warmup_mailboxes SET settings = ?2, updated_at = ?3 WHERE mailbox_id = ?1",
        params![mailbox.to_string(), settings_json(s), now],
    )?;
    changed(n)
}

/// Pauses or resumes one mailbox's warmup; planned sends of a paused one
/// are skipped when their time comes.
pub fn set_paused(c: &Connection, mailbox: Uuid, paused: bool, now: DateTime<Utc>) -> Result<()> {
    let n = c.execute(
        "UPDATE warmup_mailboxes SET paused = ?2, updated_at = ?3 WHERE mailbox_id = ?1",
        params![mailbox.to_string(), paused, now],
    )?;
    changed(n)
}

/// The same for every enrolled mailbox of a domain; returns how many.
pub fn set_paused_domain(
    c: &Connection,
    domain: Uuid,
    paused: bool,
    now: DateTime<Utc>,
) -> Result<usize> {
    Ok(c.execute(
        "UPDATE warmup_mailboxes SET paused = ?2, updated_at = ?3
         WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = ?1)",
        params![domain.to_string(), paused, now],
    )?)
}

pub fn set_enabled(c: &Connection, mailbox: Uuid, enabled: bool, now: DateTime<Utc>) -> Result<()> {
    let n = c.execute(
        "UPDATE warmup_mailboxes SET enabled = ?2, updated_at = ?3 WHERE mailbox_id = ?1",
        params![mailbox.to_string(), enabled, now],
    )?;
    changed(n)
}

/// Records the ramp step a new day planned.
pub fn set_step(c: &Connection, mailbox: Uuid, step: u32, now: DateTime<Utc>) -> Result<()> {
    c.execute(
        "UPDATE warmup_mailboxes SET ramp_step = ?2, updated_at = ?3 WHERE mailbox_id = ?1",
        params![mailbox.to_string(), step, now],
    )?;
    Ok(())
}

/// A spam placement: the ramp holds until `until`.
pub fn freeze(
    c: &Connection,
    mailbox: Uuid,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "UPDATE warmup_mailboxes SET frozen_until = max(coalesce(frozen_until, ''), ?2),
                updated_at = ?3
         WHERE mailbox_id = ?1",
        params![mailbox.to_string(), until, now],
    )?;
    Ok(())
}

/// The ramp is done and placement is good: the mailbox is ready for
/// campaigns (`warming` → `active`, its status changed by the caller
/// through the mailbox service so the datasource follows).
pub fn mark_ready(c: &Connection, mailbox: Uuid, now: DateTime<Utc>) -> Result<()> {
    c.execute(
        "UPDATE warmup_mailboxes SET ready_at = coalesce(ready_at, ?2), updated_at = ?2
         WHERE mailbox_id = ?1",
        params![mailbox.to_string(), now],
    )?;
    Ok(())
}

/// An enrolled mailbox with what the engine needs of it to plan and send.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub state: State,
    pub user_id: Uuid,
    pub domain_id: Uuid,
    pub email: String,
    pub domain: String,
    pub first_name: String,
    pub last_name: String,
    /// The mailbox's own status (`warming`, `active`, `paused`, …).
    pub status: String,
    pub daily_limit: u32,
    /// The domain is verified (`active`): it may send.
    pub domain_active: bool,
}

/// Every enrolled mailbox, or one.
pub fn enrolled(c: &Connection, only: Option<Uuid>) -> Result<Vec<Enrolled>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {STATE}, m.user_id, m.domain_id, m.username || '@' || d.domain_name,
                d.domain_name, m.first_name, m.last_name, m.status, m.daily_limit,
                d.status = 'active'
         FROM warmup_mailboxes w
         JOIN mailboxes m ON m.id = w.mailbox_id
         JOIN domains d ON d.id = m.domain_id
         WHERE ?1 IS NULL OR w.mailbox_id = ?1
         ORDER BY w.mailbox_id"
    ))?;
    let rows = stmt.query_map([only.map(|u| u.to_string())], |r| {
        Ok(Enrolled {
            state: state_at(r, 0)?,
            user_id: uuid_at(r, 9)?,
            domain_id: uuid_at(r, 10)?,
            email: r.get::<_, String>(11)?.to_ascii_lowercase(),
            domain: r.get(12)?,
            first_name: r.get(13)?,
            last_name: r.get(14)?,
            status: r.get(15)?,
            daily_limit: r.get(16)?,
            domain_active: r.get(17)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Enrolled {
    /// Takes part in warmup now: enrolled, not paused, its mailbox able to
    /// send and receive, its domain verified.
    pub fn available(&self) -> bool {
        self.state.enabled
            && !self.state.paused
            && self.domain_active
            && matches!(self.status.as_str(), "warming" | "active")
    }
}

/// One day of one mailbox's warmup (the spec's `warmup_campaigns`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Day {
    pub day: NaiveDate,
    pub campaign_day: u32,
    pub ramp_step: u32,
    pub scheduled_sends: u32,
    pub actual_sends: u32,
    pub opens: u32,
    pub replies: u32,
    pub bounces: u32,
    pub complaints: u32,
    pub landed_inbox: u32,
    pub landed_spam: u32,
    pub landed_other: u32,
    pub missing: u32,
    pub rescued: u32,
    pub failed: u32,
    pub status: String,
    pub note: Option<String>,
}

const DAY: &str = "day, campaign_day, ramp_step, scheduled_sends, actual_sends, opens, replies,
    bounces, complaints, landed_inbox, landed_spam, landed_other, missing, rescued, failed,
    status, note";

fn day_at(r: &Row<'_>) -> rusqlite::Result<Day> {
    Ok(Day {
        day: date_at(r, 0)?,
        campaign_day: r.get(1)?,
        ramp_step: r.get(2)?,
        scheduled_sends: r.get(3)?,
        actual_sends: r.get(4)?,
        opens: r.get(5)?,
        replies: r.get(6)?,
        bounces: r.get(7)?,
        complaints: r.get(8)?,
        landed_inbox: r.get(9)?,
        landed_spam: r.get(10)?,
        landed_other: r.get(11)?,
        missing: r.get(12)?,
        rescued: r.get(13)?,
        failed: r.get(14)?,
        status: r.get(15)?,
        note: r.get(16)?,
    })
}

pub fn day(c: &Connection, mailbox: Uuid, day: NaiveDate) -> Result<Option<Day>> {
    Ok(c.query_row(
        &format!("SELECT {DAY} FROM warmup_campaigns WHERE mailbox_id = ?1 AND day = ?2"),
        params![mailbox.to_string(), day.to_string()],
        day_at,
    )
    .optional()?)
}

/// The newest `limit` days, newest first.
pub fn days(c: &Connection, mailbox: Uuid, limit: u32) -> Result<Vec<Day>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {DAY} FROM warmup_campaigns WHERE mailbox_id = ?1 AND day != ''
         ORDER BY day DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![mailbox.to_string(), limit], day_at)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Opens a day (`running`) with its plan.
pub fn open_day(
    c: &Connection,
    mailbox: Uuid,
    day: NaiveDate,
    campaign_day: u32,
    ramp_step: u32,
    scheduled: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "INSERT INTO warmup_campaigns
             (id, mailbox_id, campaign_day, day, ramp_step, scheduled_sends, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
        params![
            Uuid::new_v4().to_string(),
            mailbox.to_string(),
            campaign_day,
            day.to_string(),
            ramp_step,
            scheduled,
            now
        ],
    )?;
    Ok(())
}

/// A counter of a day row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    ActualSends,
    Opens,
    Replies,
    LandedInbox,
    LandedSpam,
    LandedOther,
    Missing,
    Rescued,
    Failed,
}

impl Counter {
    fn column(self) -> &'static str {
        match self {
            Self::ActualSends => "actual_sends",
            Self::Opens => "opens",
            Self::Replies => "replies",
            Self::LandedInbox => "landed_inbox",
            Self::LandedSpam => "landed_spam",
            Self::LandedOther => "landed_other",
            Self::Missing => "missing",
            Self::Rescued => "rescued",
            Self::Failed => "failed",
        }
    }
}

/// Adds one to a counter of a day row, if the row exists.
pub fn bump(c: &Connection, mailbox: Uuid, day: NaiveDate, counter: Counter) -> Result<()> {
    // The column comes from the closed enum above, never from input.
    c.execute(
        &format!(
            "UPDATE warmup_campaigns SET {col} = {col} + 1 WHERE mailbox_id = ?1 AND day = ?2",
            col = counter.column()
        ),
        params![mailbox.to_string(), day.to_string()],
    )?;
    Ok(())
}

/// The day's plan shrinks (a spam placement): `scheduled` and a note why.
pub fn replan(
    c: &Connection,
    mailbox: Uuid,
    day: NaiveDate,
    scheduled: u32,
    note: &str,
) -> Result<()> {
    c.execute(
        "UPDATE warmup_campaigns SET scheduled_sends = ?3, note = ?4
         WHERE mailbox_id = ?1 AND day = ?2",
        params![mailbox.to_string(), day.to_string(), scheduled, note],
    )?;
    Ok(())
}

/// Closes every day row before `today` that is still running.
pub fn close_days_before(c: &Connection, mailbox: Uuid, today: NaiveDate) -> Result<usize> {
    Ok(c.execute(
        "UPDATE warmup_campaigns SET status = 'completed'
         WHERE mailbox_id = ?1 AND day != '' AND day < ?2 AND status != 'completed'",
        params![mailbox.to_string(), today.to_string()],
    )?)
}

/// Placement over the days from `since` on: (inbox, all placed or
/// missing).
pub fn placement_since(c: &Connection, mailbox: Uuid, since: NaiveDate) -> Result<(u32, u32)> {
    Ok(c.query_row(
        "SELECT coalesce(sum(landed_inbox), 0),
                coalesce(sum(landed_inbox + landed_spam + landed_other + missing), 0)
         FROM warmup_campaigns WHERE mailbox_id = ?1 AND day >= ?2",
        params![mailbox.to_string(), since.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
