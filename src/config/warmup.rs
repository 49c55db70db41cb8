//! Where the warmup engine submits and reads the appliance's own mail: by
//! default KumoMTA's submission listener and Dovecot's IMAPS on loopback,
//! so warmup mail is signed, counted and logged exactly as campaign mail.

use std::path::PathBuf;

use clap::Args;

use super::{ConfigError, FileConfig};

#[derive(Debug, Default, Clone, Args)]
pub struct WarmupArgs {
    /// SMTP submission (STARTTLS, AUTH PLAIN) the warmup engine sends the
    /// appliance's mailboxes' mail through [default: 127.0.0.1:587]
    #[arg(long, env = "INBOXGROVE_WARMUP_SUBMISSION")]
    pub warmup_submission: Option<String>,
    /// IMAP server of the appliance's mailboxes for warmup engagement
    /// (993: TLS from the start; other ports: STARTTLS) [default: 127.0.0.1:993]
    #[arg(long, env = "INBOXGROVE_WARMUP_IMAP")]
    pub warmup_imap: Option<String>,
    /// Name the certificate of those two must carry [default: the first DNS
    /// name of the certificate the mail services serve]
    #[arg(long, env = "INBOXGROVE_WARMUP_TLS_NAME")]
    pub warmup_tls_name: Option<String>,
    /// PEM certificates trusted besides the public roots and the mail
    /// services' own certificate, for peers on a private CA
    #[arg(long, env = "INBOXGROVE_WARMUP_CA_FILE")]
    pub warmup_ca_file: Option<PathBuf>,
}

/// A host and port, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn parse(setting: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Invalid {
            setting,
            message: format!("'{raw}' is not host:port, such as 127.0.0.1:587"),
        };
        let (host, port) = raw.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

#[derive(Debug, Clone)]
pub struct WarmupConfig {
    pub submission: HostPort,
    pub imap: HostPort,
    pub tls_name: Option<String>,
    pub ca_file: Option<PathBuf>,
}

impl WarmupConfig {
    pub(super) fn resolve(args: &WarmupArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let pick = |flag: &Option<String>, file: &Option<String>, default: &str| {
            flag.clone()
                .or(file.clone())
                .unwrap_or_else(|| default.to_owned())
        };
        let ca_file = args.warmup_ca_file.clone().or(file.warmup_ca_file.clone());
        if let Some(p) = &ca_file
            && !p.is_absolute()
        {
            return Err(ConfigError::Invalid {
                setting: "warmup_ca_file",
                message: format!("{} must be an absolute path", p.display()),
            });
        }
        Ok(Self {
            submission: HostPort::parse(
                "warmup_submission",
                &pick(
                    &args.warmup_submission,
                    &file.warmup_submission,
                    "127.0.0.1:587",
                ),
            )?,
            imap: HostPort::parse(
                "warmup_imap",
                &pick(&args.warmup_imap, &file.warmup_imap, "127.0.0.1:993"),
            )?,
            tls_name: args
                .warmup_tls_name
                .clone()
                .or(file.warmup_tls_name.clone())
                .filter(|n| !n.trim().is_empty()),
            ca_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_checked() {
        let hp = HostPort::parse("x", "127.0.0.1:587").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("127.0.0.1", 587));
        assert_eq!(HostPort::parse("x", "[::1]:993").unwrap().host, "::1");
        for bad in ["127.0.0.1", ":587", "h:0", "h:99999", "a b:25"] {
            assert!(HostPort::parse("x", bad).is_err(), "{bad}");
        }
    }
}
