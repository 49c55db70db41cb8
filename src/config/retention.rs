//! How long the per-record rows are kept (issue 12, point 7): the audit log
//! and the raw mail events (KumoMTA's log records as stored, the records
//! kept aside as unreadable, and the outbound records reports are matched
//! against). The maintenance job deletes older ones every hour; what they
//! fed (mailbox counters, the suppression list) stays.

use clap::Args;

use super::{ConfigError, FileConfig};
use crate::store::reports::DSN_WINDOW;

pub const DEFAULT_AUDIT_DAYS: u32 = 365;
pub const DEFAULT_EVENT_DAYS: u32 = 90;

/// Below a month, an incident is often noticed after its trail is gone.
pub const MIN_AUDIT_DAYS: u32 = 30;

/// What report matching needs of the raw events. KumoMTA gives up on a
/// queued message after its queue's `max_age` (7 days by default, see
/// `shared/reference/kumomta.md`), so a Bounce or Expiration may be logged
/// 7 days after the Reception; the log hook retries that record for up to
/// its own 7 days. The outbound record must outlive both, and the OOB DSN
/// rule looks back [`DSN_WINDOW`] (10 days). An event kept this long is
/// also past any re-post of it, so its idempotency key is not needed.
pub const MIN_EVENT_DAYS: u32 = 14;
const _: () = assert!(MIN_EVENT_DAYS as i64 * 86_400 >= DSN_WINDOW.num_seconds());

/// Ten years: anything longer is a typo, not a policy.
pub const MAX_DAYS: u32 = 3650;

#[derive(Debug, Default, Clone, Args)]
pub struct RetentionArgs {
    /// Days the audit log is kept, 30 to 3650 [default: 365]
    #[arg(long, env = "INBOXGROVE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Days raw mail events are kept, 14 to 3650 [default: 90]
    #[arg(long, env = "INBOXGROVE_EVENT_RETENTION_DAYS")]
    pub event_retention_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub audit_days: u32,
    pub event_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_days: DEFAULT_AUDIT_DAYS,
            event_days: DEFAULT_EVENT_DAYS,
        }
    }
}

/// Days of the audit log, checked; the message says what to give.
pub fn audit_days(days: u32) -> Result<u32, String> {
    within(days, MIN_AUDIT_DAYS, "the audit log keeps at least a month")
}

/// Days of the raw events, checked; the message says what to give.
pub fn event_days(days: u32) -> Result<u32, String> {
    within(
        days,
        MIN_EVENT_DAYS,
        "bounces and complaints are matched to the messages they report on for up to 14 days",
    )
}

fn within(days: u32, min: u32, why: &str) -> Result<u32, String> {
    if (min..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(format!(
            "give a whole number of days from {min} to {MAX_DAYS}; {why}"
        ))
    }
}

impl Retention {
    /// Flags (with their environment) over the file's values, over the
    /// defaults, each checked as a value saved at run time is.
    pub fn resolve(args: &RetentionArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let check = |setting: &'static str,
                     given: Option<u32>,
                     f: fn(u32) -> Result<u32, String>,
                     default: u32| {
            given
                .map(|d| f(d).map_err(|message| ConfigError::Invalid { setting, message }))
                .unwrap_or(Ok(default))
        };
        Ok(Self {
            audit_days: check(
                "audit_retention_days",
                args.audit_retention_days.or(file.audit_retention_days),
                audit_days,
                DEFAULT_AUDIT_DAYS,
            )?,
            event_days: check(
                "event_retention_days",
                args.event_retention_days.or(file.event_retention_days),
                event_days,
                DEFAULT_EVENT_DAYS,
            )?,
        })
    }
}
