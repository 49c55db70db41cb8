//! Where `inboxgrove doctor` and the diagnostics page look: the local mail
//! ports, KumoMTA's spool, a remote MX for outbound port 25 and a web
//! server whose clock is compared. Defaults (applied by
//! [`crate::doctor::Target::new`]) are the installed services' own.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::ConfigError;
use crate::domains::name::DomainName;

#[derive(Debug, Default, Clone, Args)]
pub struct DoctorArgs {
    /// The mail host: KumoMTA's banner (`kumo-config`) and what this
    /// server's PTR should name [default: this machine's host name]
    #[arg(long, env = "INBOXGROVE_HOSTNAME")]
    pub hostname: Option<String>,
    /// KumoMTA's SMTP listener [default: 127.0.0.1:25]
    #[arg(long, env = "INBOXGROVE_SMTP_ADDR")]
    pub smtp_addr: Option<SocketAddr>,
    /// KumoMTA's submission listener [default: 127.0.0.1:587]
    #[arg(long, env = "INBOXGROVE_SUBMISSION_ADDR")]
    pub submission_addr: Option<SocketAddr>,
    /// Dovecot's IMAPS listener [default: 127.0.0.1:993]
    #[arg(long, env = "INBOXGROVE_IMAPS_ADDR")]
    pub imaps_addr: Option<SocketAddr>,
    /// KumoMTA's spool, whose free disk is checked [default: /var/spool/kumomta]
    #[arg(long, env = "INBOXGROVE_KUMO_SPOOL")]
    pub kumo_spool: Option<PathBuf>,
    /// host:port of a remote MX that outbound port 25 is tried against
    /// [default: gmail-smtp-in.l.google.com:25]
    #[arg(long, env = "INBOXGROVE_OUTBOUND_HOST")]
    pub outbound_host: Option<String>,
    /// A web server whose Date header this clock is compared with
    /// [default: https://www.cloudflare.com/]
    #[arg(long, env = "INBOXGROVE_CLOCK_URL")]
    pub clock_url: Option<String>,
    /// Seconds each network check may take [default: 5]
    #[arg(long, env = "INBOXGROVE_DOCTOR_TIMEOUT")]
    pub doctor_timeout: Option<u64>,
}

impl DoctorArgs {
    /// The flags (with their environment) over the file's `hostname`; the
    /// name must be a DNS name, since KumoMTA puts it in its banner and
    /// the PTR is compared with it.
    pub fn resolve(&self, file_hostname: Option<String>) -> Result<Self, ConfigError> {
        let hostname = match self.hostname.clone().or(file_hostname) {
            Some(raw) => Some(
                DomainName::parse(&raw)
                    .map_err(|e| ConfigError::Invalid {
                        setting: "hostname",
                        message: format!("{raw:?} is not a host name: {e}"),
                    })?
                    .to_string(),
            ),
            None => None,
        };
        Ok(Self {
            hostname,
            ..self.clone()
        })
    }

    /// The mail host name: `--hostname`, else the kernel's (what KumoMTA's
    /// listeners default to), else `localhost`. `doctor` expects it in the
    /// banner and the PTR, and `kumo-config` gives it to KumoMTA, so the
    /// two agree.
    pub fn mail_hostname(&self) -> String {
        self.hostname.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
    }
}
