//! Where the maildirs are and how much each may hold. KumoMTA delivers
//! there, Dovecot serves them (`inboxgrove dovecot-config` renders both
//! from these settings, so they cannot disagree) and the control endpoint
//! tells KumoMTA when a mailbox is full.

use std::path::PathBuf;

use clap::Args;

use super::ConfigError;
use crate::dovecot::quota::{DEFAULT_MAIL_ROOT, Quota};

#[derive(Debug, Default, Clone, Args)]
pub struct MailArgs {
    /// KumoMTA's mail_root: <mail-root>/<domain>/<user>/Maildir
    /// [default: /var/lib/inboxgrove-mail]
    #[arg(long, env = "INBOXGROVE_MAIL_ROOT")]
    pub mail_root: Option<PathBuf>,
    /// Storage quota of each mailbox, e.g. 1G, 512M; IMAP and inbound
    /// mail are both held to it [default: 1G]
    #[arg(long, alias = "quota", env = "INBOXGROVE_MAILBOX_QUOTA")]
    pub mailbox_quota: Option<Quota>,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub root: PathBuf,
    pub quota: Quota,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            root: DEFAULT_MAIL_ROOT.into(),
            quota: Quota::default(),
        }
    }
}

impl MailSettings {
    /// Flags (with their environment) over the file's `mail_root` and
    /// `mailbox_quota`, over the defaults.
    pub fn resolve(
        args: &MailArgs,
        file_root: Option<PathBuf>,
        file_quota: Option<String>,
    ) -> Result<Self, ConfigError> {
        let root = args
            .mail_root
            .clone()
            .or(file_root)
            .unwrap_or_else(|| DEFAULT_MAIL_ROOT.into());
        // KumoMTA and Dovecot are given the same path; a relative one would
        // mean something else to each of them.
        if !root.is_absolute() {
            return Err(ConfigError::Invalid {
                setting: "mail_root",
                message: format!("{} must be an absolute path", root.display()),
            });
        }
        let quota = match (&args.mailbox_quota, file_quota) {
            (Some(q), _) => q.clone(),
            (None, Some(raw)) => Quota::parse(&raw).map_err(|e| ConfigError::Invalid {
                setting: "mailbox_quota",
                message: e.to_string(),
            })?,
            (None, None) => Quota::default(),
        };
        Ok(Self { root, quota })
    }
}
