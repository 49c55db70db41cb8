//! A mailbox's warmup settings: parsed once into values that are always in
//! range, stored as JSON in `warmup_mailboxes.settings`, changed by
//! `PATCH /api/v1/inboxes/{id}/warmup` and the warmup page.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// Bounds every setter checks; the messages name them.
pub const MAX_DAILY: u32 = 100;
pub const MAX_RAMP_DAYS: u32 = 90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case", deny_unknown_fields)]
pub enum Ramp {
    /// The spec's schedule (day 1: 2, day 2: 5, day 3: 12, … day 14: 40),
    /// interpolated between its points (`ramp::SPEC_POINTS`).
    Spec,
    /// Start, +increment a day, up to the ceiling (Instantly, Smartlead).
    Linear {
        start: u32,
        increment: u32,
        ceiling: u32,
    },
}

/// Campaign mail while warming (Instantly's `enable_slow_ramp`): none for
/// the first `quiet_days`, then `start` and `+increment` a day, never over
/// the mailbox's own daily limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowRamp {
    pub quiet_days: u32,
    pub start: u32,
    pub increment: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub ramp: Ramp,
    /// ± this share of each day's volume, from the mailbox's seed.
    pub variation_pct: u32,
    pub weekdays_only: bool,
    /// Share of received warmup mail answered in thread.
    pub reply_rate_pct: u32,
    /// Daily warmup volume once the ramp is done.
    pub maintenance: u32,
    /// Where the day's sends cluster, in the mailbox's time zone.
    pub send_centres: Vec<NaiveTime>,
    /// IANA time zone; `None` is the server's sending-day time zone.
    pub timezone: Option<String>,
    pub slow_ramp: SlowRamp,
    /// Inbox placement over the last days needed to leave `warming`.
    pub ready_placement_pct: u32,
    /// Warmup mail older than this is expunged from the Warmup folder.
    pub retention_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default();
        Self {
            ramp: Ramp::Spec,
            variation_pct: 20,
            weekdays_only: false,
            reply_rate_pct: 30,
            maintenance: 5,
            send_centres: vec![at(9), at(14), at(17)],
            timezone: None,
            slow_ramp: SlowRamp {
                quiet_days: 7,
                start: 2,
                increment: 2,
            },
            ready_placement_pct: 90,
            retention_days: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

fn at_most(field: &'static str, value: u32, max: u32) -> Result<(), Invalid> {
    if value > max {
        return Err(invalid(
            field,
            format!("must be at most {max}, not {value}"),
        ));
    }
    Ok(())
}

impl Settings {
    /// Every value in range, or the first that is not, named as the API
    /// names it.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Ramp::Linear {
            start,
            increment,
            ceiling,
        } = self.ramp
        {
            if start == 0 {
                return Err(invalid("ramp.start", "must be at least 1"));
            }
            at_most("ramp.ceiling", ceiling, MAX_DAILY)?;
            if ceiling < start {
                return Err(invalid(
                    "ramp.ceiling",
                    format!("must be at least the start ({start})"),
                ));
            }
            if increment == 0 && ceiling > start {
                return Err(invalid(
                    "ramp.increment",
                    "must be at least 1 while the ceiling is above the start",
                ));
            }
            let days = (ceiling - start).div_ceil(increment.max(1)) + 1;
            at_most("ramp", days, MAX_RAMP_DAYS).map_err(|_| {
                invalid(
                    "ramp",
                    format!(
                        "reaches its ceiling in {days} days; at most {MAX_RAMP_DAYS} are allowed"
                    ),
                )
            })?;
        }
        at_most("variation_pct", self.variation_pct, 50)?;
        at_most("reply_rate_pct", self.reply_rate_pct, 100)?;
        at_most("maintenance", self.maintenance, MAX_DAILY)?;
        at_most("ready_placement_pct", self.ready_placement_pct, 100)?;
        if !(1..=365).contains(&self.retention_days) {
            return Err(invalid("retention_days", "must be between 1 and 365"));
        }
        if self.send_centres.is_empty() || self.send_centres.len() > 6 {
            return Err(invalid("send_centres", "must list 1 to 6 times of day"));
        }
        if let Some(tz) = &self.timezone {
            tz.parse::<chrono_tz::Tz>().map_err(|_| {
                invalid(
                    "timezone",
                    format!("{tz:?} is not an IANA time zone such as Europe/Berlin"),
                )
            })?;
        }
        at_most(
            "slow_ramp.quiet_days",
            self.slow_ramp.quiet_days,
            MAX_RAMP_DAYS,
        )?;
        at_most("slow_ramp.start", self.slow_ramp.start, 500)?;
        at_most("slow_ramp.increment", self.slow_ramp.increment, 500)?;
        Ok(())
    }

    /// Parses and validates the stored or submitted JSON.
    pub fn from_json(value: serde_json::Value) -> Result<Self, Invalid> {
        let s: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            invalid("settings", format!("{path}: {}", e.inner()))
        })?;
        s.validate()?;
        Ok(s)
    }

    /// The time zone the send centres are in.
    pub fn tz(&self, server: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_defaults_are_valid_and_round_trip() {
        let s = Settings::default();
        s.validate().unwrap();
        let back = Settings::from_json(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        for (body, field) in [
            (json!({"reply_rate_pct": 101}), "reply_rate_pct"),
            (json!({"variation_pct": 80}), "variation_pct"),
            (json!({"retention_days": 0}), "retention_days"),
            (json!({"timezone": "Mars/Olympus"}), "timezone"),
            (json!({"send_centres": []}), "send_centres"),
            (
                json!({"ramp": {"preset": "linear", "start": 0, "increment": 1, "ceiling": 9}}),
                "ramp.start",
            ),
            (
                json!({"ramp": {"preset": "linear", "start": 5, "increment": 0, "ceiling": 9}}),
                "ramp.increment",
            ),
            (
                json!({"ramp": {"preset": "linear", "start": 1, "increment": 1, "ceiling": 100}}),
                "ramp",
            ),
            (json!({"colour": "green"}), "settings"),
        ] {
            let e = Settings::from_json(body.clone()).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }
}
