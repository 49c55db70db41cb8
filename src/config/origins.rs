//! Which settings can change at run time, and where the configuration
//! took each from. The configuration records it; [`crate::settings`] shows
//! it and refuses to change what a flag pins.

use serde::Serialize;

use super::{DomainArgs, FileConfig, RetentionArgs};

/// The settings that can change at run time, in the order of
/// [`Key::ALL`] (which [`Origins`] indexes by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    PublicIpv4,
    PublicIpv6,
    MailHostPattern,
    TrackingHost,
    Timezone,
    CloudflareApiToken,
    DmarcQuarantineAfterDays,
    AuditRetentionDays,
    EventRetentionDays,
}

impl Key {
    pub const ALL: [Key; 9] = [
        Key::PublicIpv4,
        Key::PublicIpv6,
        Key::MailHostPattern,
        Key::TrackingHost,
        Key::Timezone,
        Key::CloudflareApiToken,
        Key::DmarcQuarantineAfterDays,
        Key::AuditRetentionDays,
        Key::EventRetentionDays,
    ];

    /// The TOML key, the API field and the form field.
    pub fn name(self) -> &'static str {
        match self {
            Key::PublicIpv4 => "public_ipv4",
            Key::PublicIpv6 => "public_ipv6",
            Key::MailHostPattern => "mail_host_pattern",
            Key::TrackingHost => "tracking_host",
            Key::Timezone => "timezone",
            Key::CloudflareApiToken => "cloudflare_api_token",
            Key::DmarcQuarantineAfterDays => "dmarc_quarantine_after_days",
            Key::AuditRetentionDays => "audit_retention_days",
            Key::EventRetentionDays => "event_retention_days",
        }
    }

    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Where a pinned value is set, for the message that refuses a change.
    pub fn pinned_by(self) -> &'static str {
        match self {
            Key::PublicIpv4 => "--public-ipv4 / INBOXGROVE_PUBLIC_IPV4",
            Key::PublicIpv6 => "--public-ipv6 / INBOXGROVE_PUBLIC_IPV6",
            Key::MailHostPattern => "--mail-host-pattern / INBOXGROVE_MAIL_HOST_PATTERN",
            Key::TrackingHost => "--tracking-host / INBOXGROVE_TRACKING_HOST",
            Key::Timezone => "--timezone / INBOXGROVE_TIMEZONE",
            Key::CloudflareApiToken => {
                "INBOXGROVE_CLOUDFLARE_API_TOKEN / INBOXGROVE_CLOUDFLARE_API_TOKEN_FILE"
            }
            Key::DmarcQuarantineAfterDays => {
                "--dmarc-quarantine-after-days / INBOXGROVE_DMARC_QUARANTINE_AFTER_DAYS"
            }
            Key::AuditRetentionDays => "--audit-retention-days / INBOXGROVE_AUDIT_RETENTION_DAYS",
            Key::EventRetentionDays => "--event-retention-days / INBOXGROVE_EVENT_RETENTION_DAYS",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Key::PublicIpv4 => "Public IPv4",
            Key::PublicIpv6 => "Public IPv6",
            Key::MailHostPattern => "Mail host name",
            Key::TrackingHost => "Tracking host",
            Key::Timezone => "Time zone of the sending day",
            Key::CloudflareApiToken => "Default Cloudflare token",
            Key::DmarcQuarantineAfterDays => "Days at DMARC p=none before quarantine",
            Key::AuditRetentionDays => "Days the audit log is kept",
            Key::EventRetentionDays => "Days raw mail events are kept",
        }
    }

    pub fn is_secret(self) -> bool {
        self == Key::CloudflareApiToken
    }
}

/// Where a setting's value comes from. The configuration records
/// `FlagOrEnv`, `File` or `Default`; `Saved` is a value saved at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    FlagOrEnv,
    Saved,
    File,
    Default,
}

impl Source {
    /// A flag (clap folds the environment into it) wins over the file.
    pub fn of<T>(given: &Option<T>, file: &Option<T>) -> Self {
        match (given, file) {
            (Some(_), _) => Source::FlagOrEnv,
            (None, Some(_)) => Source::File,
            (None, None) => Source::Default,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::FlagOrEnv => "flag_or_env",
            Source::Saved => "saved",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// The configuration's source of each run-time setting.
#[derive(Debug, Clone, Copy)]
pub struct Origins([Source; Key::ALL.len()]);

impl Default for Origins {
    fn default() -> Self {
        Self([Source::Default; Key::ALL.len()])
    }
}

impl Origins {
    /// Where the configuration took each run-time setting from;
    /// `token_from_env`: the Cloudflare token came from the environment.
    pub fn of_config(
        d: &DomainArgs,
        timezone: &Option<String>,
        file: &FileConfig,
        token_from_env: bool,
    ) -> Self {
        let file_token =
            file.cloudflare_api_token.is_some() || file.cloudflare_api_token_file.is_some();
        let token = match (token_from_env, file_token) {
            (true, _) => Source::FlagOrEnv,
            (false, true) => Source::File,
            (false, false) => Source::Default,
        };
        Self([
            Source::of(&d.public_ipv4, &file.public_ipv4),
            Source::of(&d.public_ipv6, &file.public_ipv6),
            Source::of(&d.mail_host_pattern, &file.mail_host_pattern),
            Source::of(&d.tracking_host, &file.tracking_host),
            Source::of(timezone, &file.timezone),
            token,
            Source::of(
                &d.dmarc_quarantine_after_days,
                &file.dmarc_quarantine_after_days,
            ),
            // Set by `with_retention`, whose flags `domain` commands lack.
            Source::Default,
            Source::Default,
        ])
    }

    /// Adds where `serve` took the retention settings from.
    pub fn with_retention(mut self, r: &RetentionArgs, file: &FileConfig) -> Self {
        self.0[Key::AuditRetentionDays as usize] =
            Source::of(&r.audit_retention_days, &file.audit_retention_days);
        self.0[Key::EventRetentionDays as usize] =
            Source::of(&r.event_retention_days, &file.event_retention_days);
        self
    }

    pub fn of(&self, key: Key) -> Source {
        self.0[key as usize]
    }
}
