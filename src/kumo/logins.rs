//! Which service asked the control endpoint to check a mailbox password
//! (KumoMTA for SMTP AUTH, Dovecot's checkpassword helper for IMAP), with
//! counters per service and outcome, and the audit row of a refused login.
//!
//! Successful logins are counted but not audited: sequencers open an IMAP
//! session per mailbox every minute or two, which would make the audit log
//! mostly noise. Refused and throttled ones are audited, because they are
//! what someone guessing passwords leaves behind, but aggregated (issue 12,
//! point 7): whoever reaches port 587 or 993 decides how many there are.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// KumoMTA's SMTP AUTH; the default, so its policy needs no change.
    #[default]
    Smtp,
    Imap,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Imap => "imap",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    Refused,
    Throttled,
}

/// Counters since the server started: [service][ok, refused, throttled].
#[derive(Default)]
pub struct LoginCounters {
    counts: [[AtomicU64; 3]; 2],
}

impl LoginCounters {
    pub fn count(&self, service: Service, result: LoginResult) {
        let row = match service {
            Service::Smtp => 0,
            Service::Imap => 1,
        };
        let col = match result {
            LoginResult::Ok => 0,
            LoginResult::Refused => 1,
            LoginResult::Throttled => 2,
        };
        self.counts[row][col].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Value {
        let of = |row: &[AtomicU64; 3]| {
            json!({
                "ok": row[0].load(Ordering::Relaxed),
                "refused": row[1].load(Ordering::Relaxed),
                "throttled": row[2].load(Ordering::Relaxed),
            })
        };
        json!({ "smtp": of(&self.counts[0]), "imap": of(&self.counts[1]) })
    }
}

/// The audit row of a refused or throttled login, and the aggregate it
/// counts in: one row per (service, mailbox, source address, hour), whose
/// `count` rises, so a guesser's ten thousand tries from one address in an
/// hour are one row. Names that are no mailbox (`known` false) share one
/// row per source and hour, holding the last name tried: a guesser who
/// varies the name would otherwise still write a row per try. The password
/// never appears.
pub fn refused_entry(
    service: Service,
    username: &str,
    result: LoginResult,
    source: Option<IpAddr>,
    known: bool,
    now: DateTime<Utc>,
) -> (String, audit::Entry) {
    let hour = DateTime::from_timestamp(now.timestamp().div_euclid(3600) * 3600, 0).unwrap_or(now);
    let source = source.map(|ip| ip.to_canonical().to_string());
    // Bounded: it comes from whoever typed it into a mail client.
    let username: String = username.trim().chars().take(254).collect();
    let mailbox = if known {
        username.to_ascii_lowercase()
    } else {
        String::new()
    };
    let key = format!(
        "mailbox.login|{}|{mailbox}|{}|{}",
        service.as_str(),
        source.as_deref().unwrap_or_default(),
        hour.timestamp()
    );
    let mut metadata = serde_json::Map::new();
    metadata.insert("service".into(), json!(service.as_str()));
    metadata.insert("username".into(), json!(username));
    metadata.insert("known_mailbox".into(), json!(known));
    metadata.insert("hour".into(), json!(hour.to_rfc3339()));
    metadata.insert("count".into(), json!(1));
    metadata.insert(
        "throttled".into(),
        json!(u32::from(result == LoginResult::Throttled)),
    );
    metadata.insert("last_seen".into(), json!(now.to_rfc3339()));
    let entry = audit::Entry {
        action: "mailbox.login".into(),
        resource_type: Some("mailbox".into()),
        success: false,
        metadata,
        client_ip: source,
        ..Default::default()
    };
    (key, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_per_service_and_outcome() {
        let c = LoginCounters::default();
        c.count(Service::Imap, LoginResult::Ok);
        c.count(Service::Imap, LoginResult::Refused);
        c.count(Service::Imap, LoginResult::Refused);
        c.count(Service::Smtp, LoginResult::Throttled);
        assert_eq!(
            c.snapshot(),
            json!({
                "smtp": { "ok": 0, "refused": 0, "throttled": 1 },
                "imap": { "ok": 1, "refused": 2, "throttled": 0 },
            })
        );
    }

    #[test]
    fn refusals_share_a_row_per_service_mailbox_source_and_hour() {
        let t = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let ip: Option<IpAddr> = Some("192.0.2.9".parse().unwrap());
        let key = |service, name, source, known, at| {
            refused_entry(service, name, LoginResult::Refused, source, known, at).0
        };
        let base = key(Service::Smtp, "Ann@x.test", ip, true, t);
        let hour_end = DateTime::from_timestamp(1_900_000_000 / 3600 * 3600 + 3599, 0).unwrap();
        assert_eq!(base, key(Service::Smtp, "ann@x.test", ip, true, hour_end));
        for other in [
            key(
                Service::Smtp,
                "ann@x.test",
                ip,
                true,
                hour_end + chrono::Duration::seconds(1),
            ),
            key(Service::Imap, "ann@x.test", ip, true, t),
            key(Service::Smtp, "bob@x.test", ip, true, t),
            key(
                Service::Smtp,
                "ann@x.test",
                Some("192.0.2.10".parse().unwrap()),
                true,
                t,
            ),
            key(Service::Smtp, "ann@x.test", None, true, t),
        ] {
            assert_ne!(base, other);
        }
        // Names that are no mailbox share one row per source and hour.
        assert_eq!(
            key(Service::Smtp, "a@nowhere", ip, false, t),
            key(Service::Smtp, "b@nowhere", ip, false, t)
        );
        let (_, entry) = refused_entry(
            Service::Imap,
            "ann@x.test",
            LoginResult::Throttled,
            ip,
            true,
            t,
        );
        assert_eq!(entry.metadata["throttled"], 1);
        assert_eq!(entry.metadata["count"], 1);
        assert_eq!(entry.client_ip.as_deref(), Some("192.0.2.9"));
    }

    #[test]
    fn the_service_defaults_to_smtp() {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            service: Service,
        }
        let r: R = serde_json::from_str("{}").unwrap();
        assert_eq!(r.service, Service::Smtp);
        let r: R = serde_json::from_str(r#"{"service":"imap"}"#).unwrap();
        assert_eq!(r.service, Service::Imap);
        assert!(serde_json::from_str::<R>(r#"{"service":"pop3"}"#).is_err());
    }
}
