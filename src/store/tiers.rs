//! The `tiers` table (the limits of each subscription tier) and the
//! per-user day counter of `user_daily_sends`.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Result, StoreError, enum_at};
use crate::types::{Role, SubscriptionTier};

/// What a tier allows; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub domains: Option<u32>,
    pub mailboxes: Option<u32>,
    pub daily_volume: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tier {
    pub tier: SubscriptionTier,
    #[serde(flatten)]
    pub limits: Limits,
    /// When an admin last changed it (`None`: the shipped defaults).
    pub updated_at: Option<DateTime<Utc>>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Tier> {
    Ok(Tier {
        tier: enum_at(row, 0, SubscriptionTier::parse)?,
        limits: Limits {
            domains: row.get(1)?,
            mailboxes: row.get(2)?,
            daily_volume: row.get(3)?,
        },
        updated_at: row.get(4)?,
    })
}

const COLUMNS: &str = "tier, domains, mailboxes, daily_volume, updated_at";

pub fn list(conn: &Connection) -> Result<Vec<Tier>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tiers
         ORDER BY CASE tier WHEN 'free' THEN 0 WHEN 'pro' THEN 1 ELSE 2 END"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Which limits a change sets; `Some(None)` makes one unlimited.
#[derive(Debug, Default, Clone, Copy)]
pub struct LimitChanges {
    pub domains: Option<Option<u32>>,
    pub mailboxes: Option<Option<u32>>,
    pub daily_volume: Option<Option<u32>>,
}

pub fn update(
    conn: &Connection,
    tier: SubscriptionTier,
    c: &LimitChanges,
    now: DateTime<Utc>,
) -> Result<Tier> {
    // A flag per field tells "leave it" from "set it to NULL".
    conn.execute(
        "UPDATE tiers SET
            domains = CASE WHEN ?2 THEN ?3 ELSE domains END,
            mailboxes = CASE WHEN ?4 THEN ?5 ELSE mailboxes END,
            daily_volume = CASE WHEN ?6 THEN ?7 ELSE daily_volume END,
            updated_at = ?8
         WHERE tier = ?1",
        params![
            tier.as_str(),
            c.domains.is_some(),
            c.domains.flatten(),
            c.mailboxes.is_some(),
            c.mailboxes.flatten(),
            c.daily_volume.is_some(),
            c.daily_volume.flatten(),
            now
        ],
    )?;
    let sql = format!("SELECT {COLUMNS} FROM tiers WHERE tier = ?1");
    conn.query_row(&sql, [tier.as_str()], from_row)
        .optional()?
        .ok_or(StoreError::NotFound("tier"))
}

/// The tier of `user` and its limits, or `None` for an admin, whom no
/// limit binds.
pub fn binding(conn: &Connection, user: Uuid) -> Result<Option<(SubscriptionTier, Limits)>> {
    let row = conn
        .prepare_cached(
            "SELECT u.role, t.tier, t.domains, t.mailboxes, t.daily_volume
             FROM users u JOIN tiers t ON t.tier = u.subscription_tier WHERE u.id = ?1",
        )?
        .query_row([user.to_string()], |r| {
            Ok((
                enum_at(r, 0, Role::parse)?,
                enum_at(r, 1, SubscriptionTier::parse)?,
                Limits {
                    domains: r.get(2)?,
                    mailboxes: r.get(3)?,
                    daily_volume: r.get(4)?,
                },
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound("user"))?;
    Ok(match row {
        (Role::Admin, _, _) => None,
        (Role::Member, tier, limits) => Some((tier, limits)),
    })
}

/// For send-check, in one read: the tier of `user` with its daily volume
/// and what their mailboxes sent on `today`, or `None` for an admin.
pub fn volume_today(
    conn: &Connection,
    user: Uuid,
    today: NaiveDate,
) -> Result<Option<(SubscriptionTier, Option<u32>, u32)>> {
    let row = conn
        .prepare_cached(
            "SELECT u.role, t.tier, t.daily_volume, coalesce(s.sent, 0)
             FROM users u JOIN tiers t ON t.tier = u.subscription_tier
             LEFT JOIN user_daily_sends s ON s.user_id = u.id AND s.day = ?2
             WHERE u.id = ?1",
        )?
        .query_row(params![user.to_string(), today.to_string()], |r| {
            Ok((
                enum_at(r, 0, Role::parse)?,
                enum_at(r, 1, SubscriptionTier::parse)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound("user"))?;
    Ok(match row {
        (Role::Admin, ..) => None,
        (Role::Member, tier, volume, sent) => Some((tier, volume, sent)),
    })
}

/// What a user holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub domains: u32,
    pub mailboxes: u32,
    pub sent_today: u32,
}

pub fn usage(conn: &Connection, user: Uuid, today: NaiveDate) -> Result<Usage> {
    Ok(Usage {
        domains: domains_held(conn, user)?,
        mailboxes: mailboxes_held(conn, user)?,
        sent_today: sent_today(conn, user, today)?,
    })
}

pub fn domains_held(conn: &Connection, user: Uuid) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM domains WHERE user_id = ?1")?
        .query_row([user.to_string()], |r| r.get(0))?)
}

pub fn mailboxes_held(conn: &Connection, user: Uuid) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM mailboxes WHERE user_id = ?1")?
        .query_row([user.to_string()], |r| r.get(0))?)
}

/// Messages `user`'s mailboxes were allowed on `today`.
pub fn sent_today(conn: &Connection, user: Uuid, today: NaiveDate) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT sent FROM user_daily_sends WHERE user_id = ?1 AND day = ?2")?
        .query_row(params![user.to_string(), today.to_string()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Counts one message for `user` on `today` (the first of a new day
/// starts the count again). The caller checked the limit in the same
/// transaction.
pub fn count_send(conn: &Connection, user: Uuid, today: NaiveDate) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO user_daily_sends (user_id, day, sent) VALUES (?1, ?2, 1)
         ON CONFLICT (user_id) DO UPDATE SET
            sent = CASE WHEN day = ?2 THEN sent + 1 ELSE 1 END, day = ?2",
    )?
    .execute(params![user.to_string(), today.to_string()])?;
    Ok(())
}

/// Gives back one message counted for `user` on `today`, never below zero.
pub fn release_send(conn: &Connection, user: Uuid, today: NaiveDate) -> Result<()> {
    conn.prepare_cached(
        "UPDATE user_daily_sends SET sent = sent - 1
         WHERE user_id = ?1 AND day = ?2 AND sent > 0",
    )?
    .execute(params![user.to_string(), today.to_string()])?;
    Ok(())
}
