//! Which service asked the control endpoint to check a mailbox password
//! (KumoMTA for SMTP AUTH, Dovecot's checkpassword helper for IMAP), with
//! counters per service and outcome, and the audit row of a refused login.
//!
//! Successful logins are counted but not audited: sequencers open an IMAP
//! session per mailbox every minute or two, which would make the audit log
//! mostly noise. Refused and throttled ones are audited, because they are
//! what someone guessing passwords leaves behind.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The audit row of a refused or throttled login. The username is recorded
/// as given (it names what was attacked); the password never is.
pub fn refused_entry(
    service: Service,
    username: &str,
    result: LoginResult,
    source: Option<IpAddr>,
) -> audit::Entry {
    let mut metadata = serde_json::Map::new();
    metadata.insert("service".into(), json!(service.as_str()));
    // Bounded: it comes from whoever typed it into a mail client.
    let username: String = username.chars().take(254).collect();
    metadata.insert("username".into(), json!(username));
    metadata.insert("throttled".into(), json!(result == LoginResult::Throttled));
    audit::Entry {
        action: "mailbox.login".into(),
        resource_type: Some("mailbox".into()),
        success: false,
        metadata,
        client_ip: source.map(|ip| ip.to_string()),
        ..Default::default()
    }
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
