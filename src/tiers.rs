//! Subscription tiers (spec: users.subscription_tier) and the limits an
//! admin gives each: domains, mailboxes and daily sending volume per user
//! (issue 12, point 8). The domain orchestrator, the inbox generator and
//! send-check ask here inside their own write transaction, so the check
//! and the change it allows are one step: two requests at the limit cannot
//! both pass (the store has one writer, see `store`).
//!
//! Limits bind members only. Admins run the appliance and can raise any
//! limit anyway, so neither their own resources nor what they create for
//! a member are limited. Lowering a limit below what a user holds removes
//! nothing; it only refuses new ones.

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::store::tiers::{self as repo, LimitChanges, Limits, Tier, Usage};
use crate::store::{Store, StoreError};
use crate::types::{SubscriptionTier, name_enum};

/// The largest limit an admin can give; above it, leave the limit out
/// (unlimited). It keeps the figures within SQLite's and u32's range.
pub const MAX_LIMIT: u64 = 100_000_000;

name_enum!(
    /// What a tier limits; the names are the fields of the API.
    Resource { Domains => "domains", Mailboxes => "mailboxes", DailyVolume => "daily_volume" }
);

impl Resource {
    const ALL: [Resource; 3] = [Self::Domains, Self::Mailboxes, Self::DailyVolume];

    fn of(self, limits: &Limits) -> Option<u32> {
        match self {
            Self::Domains => limits.domains,
            Self::Mailboxes => limits.mailboxes,
            Self::DailyVolume => limits.daily_volume,
        }
    }

    fn used(self, usage: &Usage) -> u32 {
        match self {
            Self::Domains => usage.domains,
            Self::Mailboxes => usage.mailboxes,
            Self::DailyVolume => usage.sent_today,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Domains => "domains",
            Self::Mailboxes => "mailboxes",
            Self::DailyVolume => "messages a day",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(
        "{resource}: your plan ({tier}) allows {limit} {noun} and you have {used}; {advice}",
        noun = resource.noun(),
        advice = advice(*limit, *used, *asked)
    )]
    LimitReached {
        resource: Resource,
        tier: SubscriptionTier,
        limit: u32,
        used: u32,
        asked: u32,
    },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// For a request of several (a bulk), how many would still fit.
fn advice(limit: u32, used: u32, asked: u32) -> String {
    let left = limit.saturating_sub(used);
    if asked > 1 && left > 0 {
        format!(
            "{left} more can be created, not {asked}: create fewer or ask an admin to raise the limit"
        )
    } else {
        "ask an admin to raise the limit".to_owned()
    }
}

/// Refuses one more domain for `user` at their tier's limit. Call it in
/// the transaction that then adds it.
pub fn check_domains(conn: &Connection, user: Uuid) -> Result<(), TierError> {
    check_held(conn, user, Resource::Domains, 1, repo::domains_held)
}

/// Refuses `asked` more mailboxes for `user` past their tier's limit,
/// all of them: a bulk is made whole or not at all.
pub fn check_mailboxes(conn: &Connection, user: Uuid, asked: u32) -> Result<(), TierError> {
    check_held(conn, user, Resource::Mailboxes, asked, repo::mailboxes_held)
}

fn check_held(
    conn: &Connection,
    user: Uuid,
    resource: Resource,
    asked: u32,
    held: fn(&Connection, Uuid) -> Result<u32, StoreError>,
) -> Result<(), TierError> {
    let Some((tier, limits)) = repo::binding(conn, user)? else {
        return Ok(());
    };
    let Some(limit) = resource.of(&limits) else {
        return Ok(());
    };
    let used = held(conn, user)?;
    if u64::from(used) + u64::from(asked) > u64::from(limit) {
        return Err(TierError::LimitReached {
            resource,
            tier,
            limit,
            used,
            asked,
        });
    }
    Ok(())
}

/// For a member whose tier caps the daily volume: the tier, the volume
/// and what is left of it on `today`; `None` when nothing caps it.
/// Send-check's hot path: one indexed read.
pub fn volume_left(
    conn: &Connection,
    user: Uuid,
    today: NaiveDate,
) -> Result<Option<(SubscriptionTier, u32, u32)>, StoreError> {
    Ok(match repo::volume_today(conn, user, today)? {
        Some((tier, Some(volume), sent)) => Some((tier, volume, volume.saturating_sub(sent))),
        _ => None,
    })
}

/// A `PATCH /api/v1/tiers/{tier}` body: each field a whole number from 0
/// to [`MAX_LIMIT`], or `null` for unlimited. Any other field or value is
/// refused, naming it, before anything is stored.
pub fn parse_changes(body: Map<String, Value>) -> Result<LimitChanges, TierError> {
    if body.is_empty() {
        return Err(TierError::Invalid {
            field: "body".into(),
            message: format!("give at least one of {}", field_names()),
        });
    }
    let mut changes = LimitChanges::default();
    for (name, raw) in body {
        let Ok(resource) = Resource::parse(&name) else {
            return Err(TierError::Invalid {
                message: format!("not a tier limit; the limits are {}", field_names()),
                field: name,
            });
        };
        let value = match &raw {
            Value::Null => None,
            Value::Number(n) => match n.as_u64().filter(|v| *v <= MAX_LIMIT) {
                // Within u32 by MAX_LIMIT.
                Some(v) => Some(v as u32),
                None => return Err(not_a_limit(name)),
            },
            _ => return Err(not_a_limit(name)),
        };
        let slot = match resource {
            Resource::Domains => &mut changes.domains,
            Resource::Mailboxes => &mut changes.mailboxes,
            Resource::DailyVolume => &mut changes.daily_volume,
        };
        *slot = Some(value);
    }
    Ok(changes)
}

fn field_names() -> String {
    Resource::ALL.map(Resource::as_str).join(", ")
}

fn not_a_limit(field: String) -> TierError {
    TierError::Invalid {
        field,
        message: format!("must be a whole number from 0 to {MAX_LIMIT}, or null for unlimited"),
    }
}

/// A tier name from a path or a form.
pub fn parse_tier(raw: &str) -> Result<SubscriptionTier, TierError> {
    SubscriptionTier::parse(raw).map_err(|e| TierError::Invalid {
        field: "tier".into(),
        message: e.0,
    })
}

pub async fn list(store: &Store) -> Result<Vec<Tier>, TierError> {
    Ok(store.read(repo::list).await?)
}

pub async fn update(
    store: &Store,
    clock: &SharedClock,
    tier: SubscriptionTier,
    changes: LimitChanges,
) -> Result<Tier, TierError> {
    let now = clock.now();
    Ok(store
        .write(move |tx| repo::update(tx, tier, &changes, now))
        .await?)
}

/// A user's tier, what it allows them (all `null` for an admin: no limit
/// binds them) and what they hold now.
#[derive(Debug, Serialize)]
pub struct UsageView {
    pub subscription_tier: SubscriptionTier,
    pub limits: Limits,
    pub usage: Usage,
    /// How many more of each the limits allow (`null`: no limit).
    pub remaining: HashMap<&'static str, Option<u32>>,
}

pub async fn usage(
    store: &Store,
    user: Uuid,
    tier: SubscriptionTier,
    today: NaiveDate,
) -> Result<UsageView, TierError> {
    let (binding, usage) = store
        .read(move |c| Ok((repo::binding(c, user)?, repo::usage(c, user, today)?)))
        .await?;
    let limits = binding.map(|(_, l)| l).unwrap_or_default();
    let remaining = Resource::ALL
        .iter()
        .map(|r| {
            let left = r.of(&limits).map(|l| l.saturating_sub(r.used(&usage)));
            (r.as_str(), left)
        })
        .collect();
    Ok(UsageView {
        subscription_tier: tier,
        limits,
        usage,
        remaining,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<LimitChanges, TierError> {
        parse_changes(v.as_object().unwrap().clone())
    }

    fn field_of(e: TierError) -> String {
        match e {
            TierError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn changes_set_a_number_or_unlimited_and_leave_the_rest() {
        let c = parse(json!({ "domains": 5, "daily_volume": null })).unwrap();
        assert_eq!(c.domains, Some(Some(5)));
        assert_eq!(c.daily_volume, Some(None));
        assert_eq!(c.mailboxes, None);
        let top = parse(json!({ "mailboxes": MAX_LIMIT })).unwrap();
        assert_eq!(top.mailboxes, Some(Some(MAX_LIMIT as u32)));
    }

    #[test]
    fn bad_changes_name_the_field() {
        for (body, field) in [
            (json!({ "domains": -1 }), "domains"),
            (json!({ "mailboxes": 1.5 }), "mailboxes"),
            (json!({ "daily_volume": "100" }), "daily_volume"),
            (json!({ "daily_volume": MAX_LIMIT + 1 }), "daily_volume"),
            (json!({ "domains": 2, "seats": 3 }), "seats"),
            (json!({}), "body"),
        ] {
            assert_eq!(field_of(parse(body.clone()).unwrap_err()), field, "{body}");
        }
        assert_eq!(field_of(parse_tier("gold").unwrap_err()), "tier");
    }

    #[test]
    fn a_refusal_says_the_plan_the_limit_and_what_is_left() {
        let one = TierError::LimitReached {
            resource: Resource::Domains,
            tier: SubscriptionTier::Free,
            limit: 3,
            used: 3,
            asked: 1,
        };
        assert_eq!(
            one.to_string(),
            "domains: your plan (free) allows 3 domains and you have 3; ask an admin to raise the limit"
        );
        let bulk = TierError::LimitReached {
            resource: Resource::Mailboxes,
            tier: SubscriptionTier::Pro,
            limit: 15,
            used: 10,
            asked: 8,
        };
        assert!(
            bulk.to_string()
                .ends_with("you have 10; 5 more can be created, not 8: create fewer or ask an admin to raise the limit"),
            "{bulk}"
        );
    }
}
