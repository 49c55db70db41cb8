//! Server settings an admin changes at run time (README "Configuration"):
//! public IPs, host names, time zone, the default Cloudflare token and the
//! DMARC ramp. A value given by flag or environment variable is pinned and
//! cannot be changed here; otherwise a value saved at run time wins over the
//! TOML file, which wins over the default.
//!
//! [`LiveSettings`] is the one handle the services read at use time, so a
//! saved change reaches the next domain, export, bulk creation or sending
//! day without a restart.

mod stored;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use secrecy::SecretString;
use serde_json::json;

use crate::clock::SharedClock;
use crate::config::{DomainSettings, Key, Origins, Retention, Source};
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError};
pub use value::{CloudflareToken, Value};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(
        "{} is set by {}; change it there and restart, or remove it there to manage it here",
        .0.name(),
        .0.pinned_by()
    )]
    Pinned(Key),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// What one submit does to one setting.
#[derive(Debug)]
pub enum Change {
    Set(Value),
    /// Forget the saved value: back to the file or the default.
    Clear,
}

/// One submit's changes, all parsed before anything is saved.
#[derive(Debug, Default)]
pub struct Patch(pub BTreeMap<Key, Change>);

fn invalid(key: Key, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: key.name().to_owned(),
        message: message.into(),
    }
}

impl Patch {
    /// `PATCH /api/v1/settings`: fields left out stay, `null` clears the
    /// saved value, a string (or a number of days) sets it.
    pub fn from_json(
        body: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, SettingsError> {
        let mut patch = Patch::default();
        for (name, raw) in body {
            let key = Key::from_name(&name).ok_or_else(|| SettingsError::Invalid {
                message: format!(
                    "unknown setting; use one of {}",
                    Key::ALL.map(Key::name).join(", ")
                ),
                field: name,
            })?;
            let change = match raw {
                serde_json::Value::Null => Change::Clear,
                serde_json::Value::String(s) => Change::Set(Value::parse(key, s)?),
                serde_json::Value::Number(n) => Change::Set(Value::parse(key, n.to_string())?),
                _ => return Err(invalid(key, "give a string, a number of days, or null")),
            };
            patch.0.insert(key, change);
        }
        Ok(patch)
    }

    /// The settings form: a field left as shown, or a disabled (pinned) one
    /// the browser does not send, stays; an emptied field clears a saved
    /// value; the token is set only when typed, and cleared by its checkbox.
    pub fn from_form(form: &HashMap<String, String>, view: &View) -> Result<Self, SettingsError> {
        let mut patch = Patch::default();
        for entry in &view.entries {
            let key = entry.key;
            if key.is_secret() {
                if form.contains_key("clear_cloudflare_api_token") {
                    patch.0.insert(key, Change::Clear);
                } else if let Some(t) = form.get(key.name()).filter(|t| !t.is_empty()) {
                    patch
                        .0
                        .insert(key, Change::Set(Value::parse(key, t.clone())?));
                }
                continue;
            }
            let Some(raw) = form.get(key.name()).map(|s| s.trim()) else {
                continue;
            };
            if raw == entry.text() {
                continue;
            }
            if raw.is_empty() {
                if entry.source == Source::Saved {
                    patch.0.insert(key, Change::Clear);
                }
                continue;
            }
            patch
                .0
                .insert(key, Change::Set(Value::parse(key, raw.to_owned())?));
        }
        Ok(patch)
    }
}

/// One setting as the API and the page show it: the token only as set or
/// not set.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Key,
    /// `None`: not set (or the token, never shown).
    value: Option<serde_json::Value>,
    pub set: bool,
    pub source: Source,
}

impl Entry {
    /// The value as a form shows it; empty when not set.
    pub fn text(&self) -> String {
        match &self.value {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    pub fn pinned(&self) -> bool {
        self.source == Source::FlagOrEnv
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub entries: Vec<Entry>,
}

impl View {
    /// `GET /api/v1/settings`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for e in &self.entries {
            let shown = if e.key.is_secret() {
                json!({ "value": { "set": e.set }, "source": e.source })
            } else {
                json!({ "value": e.value, "source": e.source })
            };
            out.insert(e.key.name().to_owned(), shown);
        }
        serde_json::Value::Object(out)
    }
}

/// The values in force: the configuration with saved values laid over the
/// settings it does not pin.
pub struct Snapshot {
    pub domains: DomainSettings,
    pub timezone: chrono_tz::Tz,
    pub retention: Retention,
    saved: BTreeMap<Key, Value>,
}

pub struct LiveSettings {
    store: Store,
    vault: Arc<Vault>,
    clock: SharedClock,
    base: DomainSettings,
    base_timezone: chrono_tz::Tz,
    base_retention: Retention,
    origins: Origins,
    current: RwLock<Arc<Snapshot>>,
    /// One update at a time, so the snapshot installed last is the one
    /// written last.
    writing: tokio::sync::Mutex<()>,
}

impl LiveSettings {
    /// The configured values only; [`LiveSettings::load`] adds the saved
    /// ones.
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        clock: SharedClock,
        base: DomainSettings,
        base_timezone: chrono_tz::Tz,
        origins: Origins,
    ) -> Self {
        let current = RwLock::new(Arc::new(Snapshot {
            domains: base.clone(),
            timezone: base_timezone,
            retention: Retention::default(),
            saved: BTreeMap::new(),
        }));
        Self {
            store,
            vault,
            clock,
            base,
            base_timezone,
            base_retention: Retention::default(),
            origins,
            current,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The configured retention (otherwise the defaults); before
    /// [`LiveSettings::load`].
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.base_retention = retention;
        self.install(BTreeMap::new());
        self
    }

    /// Reads the saved values from the store.
    pub async fn load(&self) -> Result<(), SettingsError> {
        let saved = stored::load(&self.store, &self.vault).await?;
        self.install(saved);
        Ok(())
    }

    /// Today in the sending day's time zone: the day of every daily
    /// count (mailbox limits, plan volumes).
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock
            .now()
            .with_timezone(&self.get().timezone)
            .date_naive()
    }

    /// The values in force now; callers read it at use time.
    pub fn get(&self) -> Arc<Snapshot> {
        // Only whole snapshots are ever assigned, so a lock poisoned by a
        // panicking writer still holds a consistent one.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Saves a patch (all of it or, on an error, nothing) and puts it in
    /// force.
    pub async fn update(&self, patch: Patch) -> Result<View, SettingsError> {
        if let Some(key) = patch
            .0
            .keys()
            .find(|k| self.origins.of(**k) == Source::FlagOrEnv)
        {
            return Err(SettingsError::Pinned(*key));
        }
        let _one = self.writing.lock().await;
        let saved = stored::write(&self.store, &self.vault, self.clock.now(), patch).await?;
        self.install(saved);
        Ok(self.view())
    }

    pub fn view(&self) -> View {
        let now = self.get();
        let d = &now.domains;
        let entries = Key::ALL
            .into_iter()
            .map(|key| {
                let value = match key {
                    Key::PublicIpv4 => d.public_ipv4.map(|ip| json!(ip)),
                    Key::PublicIpv6 => d.public_ipv6.map(|ip| json!(ip)),
                    Key::MailHostPattern => Some(json!(d.mail_host_pattern)),
                    Key::TrackingHost => d.tracking_host.as_ref().map(|h| json!(h)),
                    Key::Timezone => Some(json!(now.timezone.name())),
                    Key::CloudflareApiToken => None,
                    Key::DmarcQuarantineAfterDays => Some(json!(d.dmarc_quarantine_after_days)),
                    Key::AuditRetentionDays => Some(json!(now.retention.audit_days)),
                    Key::EventRetentionDays => Some(json!(now.retention.event_days)),
                };
                let set = match key {
                    Key::CloudflareApiToken => d.cloudflare_api_token.is_some(),
                    _ => value.is_some(),
                };
                let source = match self.origins.of(key) {
                    Source::FlagOrEnv => Source::FlagOrEnv,
                    _ if now.saved.contains_key(&key) => Source::Saved,
                    configured => configured,
                };
                Entry {
                    key,
                    value,
                    set,
                    source,
                }
            })
            .collect();
        View { entries }
    }

    fn install(&self, saved: BTreeMap<Key, Value>) {
        let snapshot = Arc::new(compose(
            &self.base,
            self.base_timezone,
            self.base_retention,
            &self.origins,
            saved,
        ));
        match self.current.write() {
            Ok(mut g) => *g = snapshot,
            Err(p) => *p.into_inner() = snapshot,
        }
    }
}

/// The configured values with the saved ones laid over those not pinned.
fn compose(
    base: &DomainSettings,
    base_timezone: chrono_tz::Tz,
    mut retention: Retention,
    origins: &Origins,
    saved: BTreeMap<Key, Value>,
) -> Snapshot {
    let mut domains = base.clone();
    let mut timezone = base_timezone;
    for (key, value) in &saved {
        if origins.of(*key) == Source::FlagOrEnv {
            continue;
        }
        match value.clone() {
            Value::Days(d) if *key == Key::AuditRetentionDays => retention.audit_days = d,
            Value::Days(d) if *key == Key::EventRetentionDays => retention.event_days = d,
            Value::Ipv4(ip) => domains.public_ipv4 = Some(ip),
            Value::Ipv6(ip) => domains.public_ipv6 = Some(ip),
            Value::MailHost(p) => domains.mail_host_pattern = p.into_string(),
            Value::Tracking(h) => domains.tracking_host = Some(h.to_string()),
            Value::Timezone(tz) => timezone = tz,
            Value::Token(t) => domains.cloudflare_api_token = Some(SecretString::from(t)),
            Value::Days(d) => domains.dmarc_quarantine_after_days = d,
        }
    }
    Snapshot {
        domains,
        timezone,
        retention,
        saved,
    }
}

#[cfg(test)]
mod tests;
