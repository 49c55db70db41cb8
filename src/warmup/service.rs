//! What the API, the UI and the console ask of warmup: a mailbox's
//! settings, today's plan and its history; changing, pausing and resuming
//! it (per mailbox or per domain). Peer accounts are in
//! [`peers`](super::peers).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::engine::{Engine, WarmupError};
use super::ramp;
use super::settings::Settings;
use crate::store::warmup::{self as repo, Day};
use crate::store::{self, mailboxes};

/// How many days of history an overview shows.
const HISTORY_DAYS: u32 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub mailbox_id: Uuid,
    pub email: String,
    /// The mailbox's status: `warming` until the ramp is done and its mail
    /// lands in the inbox, then `active`.
    pub status: String,
    pub enabled: bool,
    pub paused: bool,
    pub settings: Settings,
    pub started_on: NaiveDate,
    /// Day n of the ramp's `ramp_days`.
    pub ramp_step: u32,
    pub ramp_days: u32,
    pub frozen_until: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    /// When the ramp is expected to be done, from where it stands.
    pub ready_date: NaiveDate,
    /// Inbox share of the last 7 days' placed warmup mail, when any was.
    pub placement_pct: Option<f64>,
    /// Campaign messages send-check allows today while warming.
    pub campaign_allowance_today: Option<u32>,
    pub today: Option<Today>,
    /// Newest first.
    pub history: Vec<Day>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Today {
    pub day: NaiveDate,
    pub planned: u32,
    pub sent: u32,
    pub next_send_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// The inbox list's warmup column.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub ramp_step: u32,
    pub ramp_days: u32,
    pub placement_pct: Option<f64>,
    pub paused: bool,
}

fn pct(inbox: u32, placed: u32) -> Option<f64> {
    (placed > 0).then(|| (f64::from(inbox) * 1000.0 / f64::from(placed)).round() / 10.0)
}

impl Engine {
    async fn owned(
        &self,
        mailbox: Uuid,
        scope: Option<Uuid>,
    ) -> Result<mailboxes::Mailbox, WarmupError> {
        self.store
            .read(move |c| mailboxes::get(c, mailbox, scope))
            .await?
            .ok_or(WarmupError::NotFound("mailbox"))
    }

    pub async fn overview(
        &self,
        mailbox: Uuid,
        scope: Option<Uuid>,
    ) -> Result<Overview, WarmupError> {
        let m = self.owned(mailbox, scope).await?;
        let now = self.now();
        let server_tz = self.server_tz();
        self.store
            .read(move |c| {
                let state = repo::get(c, mailbox)?;
                let enabled = state.as_ref().is_some_and(|s| s.enabled);
                let tz = state
                    .as_ref()
                    .map_or(server_tz, |s| s.settings.tz(server_tz));
                let today = now.with_timezone(&tz).date_naive();
                let s = state.unwrap_or_else(|| repo::State {
                    mailbox_id: mailbox,
                    enabled: false,
                    paused: false,
                    settings: Settings::default(),
                    seed: 0,
                    started_on: today,
                    ramp_step: 0,
                    frozen_until: None,
                    ready_at: None,
                });
                let history = repo::days(c, mailbox, HISTORY_DAYS)?;
                let (inbox, placed) = repo::placement_since(c, mailbox, today - Duration::days(7))?;
                let plan = repo::messages::of_day(c, mailbox, today)?;
                let today_row = history.iter().find(|d| d.day == today).map(|d| Today {
                    day: today,
                    planned: d.scheduled_sends,
                    sent: d.actual_sends,
                    next_send_at: plan
                        .iter()
                        .filter(|x| x.status == "planned" && x.reply_to.is_none())
                        .map(|x| x.scheduled_at)
                        .min(),
                    note: d.note.clone(),
                });
                let warm_day = (today - s.started_on).num_days().max(0) as u32 + 1;
                Ok(Overview {
                    mailbox_id: mailbox,
                    email: m.email.clone(),
                    status: m.status.clone(),
                    enabled,
                    paused: s.paused,
                    ramp_days: ramp::ramp_days(&s.settings.ramp),
                    // Today takes the next step unless it is planned already.
                    ready_date: ramp::ready_date(
                        &s.settings,
                        s.ramp_step,
                        if today_row.is_some() {
                            today + Duration::days(1)
                        } else {
                            today
                        },
                    ),
                    campaign_allowance_today: (enabled && m.status == "warming").then(|| {
                        ramp::campaign_allowance(&s.settings.slow_ramp, warm_day, m.daily_limit)
                    }),
                    placement_pct: pct(inbox, placed),
                    settings: s.settings,
                    started_on: s.started_on,
                    ramp_step: s.ramp_step,
                    frozen_until: s.frozen_until,
                    ready_at: s.ready_at,
                    today: today_row,
                    history,
                })
            })
            .await
            .map_err(WarmupError::from)
    }

    /// Changes a mailbox's settings: `patch` is merged into the current
    /// settings (a JSON merge, RFC 7396) and validated whole; `enabled`
    /// enrols or leaves the pool. Nothing is saved when any field is wrong.
    pub async fn update(
        &self,
        mailbox: Uuid,
        scope: Option<Uuid>,
        mut patch: Value,
    ) -> Result<Overview, WarmupError> {
        self.owned(mailbox, scope).await?;
        let Some(obj) = patch.as_object_mut() else {
            return Err(WarmupError::Invalid {
                field: "body",
                message: "must be a JSON object of warmup settings".into(),
            });
        };
        let enabled = match obj.remove("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                return Err(WarmupError::Invalid {
                    field: "enabled",
                    message: "must be true or false".into(),
                });
            }
        };
        let current = self.store.read(move |c| repo::get(c, mailbox)).await?;
        let mut merged = serde_json::to_value(
            current
                .as_ref()
                .map_or_else(Settings::default, |s| s.settings.clone()),
        )
        .unwrap_or_default();
        merge(&mut merged, patch);
        let settings = Settings::from_json(merged).map_err(|e| WarmupError::Invalid {
            field: e.field,
            message: e.message,
        })?;
        let now = self.now();
        let today = now
            .with_timezone(&settings.tz(self.server_tz()))
            .date_naive();
        let seed = self.with_rng(rand::Rng::r#gen::<u64>);
        self.store
            .write(move |tx| {
                if current.is_none() && enabled == Some(true) {
                    repo::enrol(tx, mailbox, &settings, seed, today, now)?;
                } else if current.is_some() {
                    repo::set_settings(tx, mailbox, &settings, now)?;
                    if let Some(e) = enabled {
                        repo::set_enabled(tx, mailbox, e, now)?;
                    }
                } else {
                    return Err(store::StoreError::NotFound(
                        "warmup of this mailbox (send \"enabled\": true to start it)",
                    ));
                }
                Ok(())
            })
            .await?;
        self.overview(mailbox, scope).await
    }

    pub async fn set_paused(
        &self,
        mailbox: Uuid,
        scope: Option<Uuid>,
        paused: bool,
    ) -> Result<Overview, WarmupError> {
        self.owned(mailbox, scope).await?;
        let now = self.now();
        self.store
            .write(move |tx| repo::set_paused(tx, mailbox, paused, now))
            .await?;
        self.overview(mailbox, scope).await
    }

    /// Pauses or resumes every enrolled mailbox of a domain; how many.
    pub async fn set_domain_paused(
        &self,
        domain: Uuid,
        scope: Option<Uuid>,
        paused: bool,
    ) -> Result<usize, WarmupError> {
        let now = self.now();
        self.store
            .write(move |tx| {
                if store::domains::get(tx, domain, scope)?.is_none() {
                    return Err(store::StoreError::NotFound("domain"));
                }
                repo::set_paused_domain(tx, domain, paused, now)
            })
            .await
            .map_err(WarmupError::from)
    }

    /// The warmup column of the inbox list, for these mailboxes.
    pub async fn columns(&self, ids: Vec<Uuid>) -> Result<Vec<(Uuid, Column)>, WarmupError> {
        let today = self.now().with_timezone(&self.server_tz()).date_naive();
        Ok(self
            .store
            .read(move |c| {
                let mut out = Vec::new();
                for id in ids {
                    let Some(s) = repo::get(c, id)? else { continue };
                    if !s.enabled {
                        continue;
                    }
                    let (inbox, placed) = repo::placement_since(c, id, today - Duration::days(7))?;
                    out.push((
                        id,
                        Column {
                            ramp_step: s.ramp_step,
                            ramp_days: ramp::ramp_days(&s.settings.ramp),
                            placement_pct: pct(inbox, placed),
                            paused: s.paused,
                        },
                    ));
                }
                Ok(out)
            })
            .await?)
    }
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else
/// replaces.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_changes_only_what_it_names() {
        let mut v = json!({"a": 1, "ramp": {"preset": "spec"}, "b": [1]});
        merge(
            &mut v,
            json!({"a": 2, "b": null, "ramp": {"preset": "linear", "start": 3}}),
        );
        assert_eq!(v, json!({"a": 2, "ramp": {"preset": "linear", "start": 3}}));
    }

    #[test]
    fn placement_is_a_share_with_one_decimal() {
        assert_eq!(pct(0, 0), None);
        assert_eq!(pct(2, 3), Some(66.7));
        assert_eq!(pct(10, 10), Some(100.0));
    }
}
