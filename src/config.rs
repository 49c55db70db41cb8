//! Settings. Each comes from a flag, an `INBOXGROVE_<NAME>` environment
//! variable, or the TOML file given by `--config`, in that order of
//! precedence, then a default. Secrets may also be given as
//! `INBOXGROVE_<NAME>_FILE` (or `<name>_file` in TOML) naming a file that
//! holds them, which keeps them out of `ps` and the environment of children.
//! The server settings in [`crate::settings`] can also be saved at run time;
//! their source is recorded here so one given by flag or env stays pinned.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domains::name::{DomainName, MailHostPattern};
use crate::types::{EmailAddress, Password, parse_timezone};

mod acme;
mod certs;
mod doctor;
mod listen;
mod mail;
mod origins;
mod proxies;
pub mod retention;
mod sequencers;
mod warmup;
pub use acme::{AcmeArgs, AcmeSettings, Certificates};
pub use certs::{CertArgs, PublicTls, TlsArgs};
pub use doctor::DoctorArgs;
pub use listen::local_address;
pub use mail::{MailArgs, MailSettings};
pub use origins::{Key, Origins, Source};
pub use proxies::TrustedProxies;
pub use retention::{Retention, RetentionArgs};
pub use sequencers::{SequencerArgs, SequencerUrls};
pub use warmup::{HostPort, WarmupArgs, WarmupConfig};

/// The HTTP listener our KumoMTA policy opens (`kumo-policy/init.lua`),
/// where `POST /api/admin/bump-config-epoch` lives.
pub const DEFAULT_KUMO_HTTP_URL: &str = "http://127.0.0.1:8000";
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name} is set both directly and as a _FILE; keep only one")]
    SecretTwice { name: String },
    #[error("cannot read {name} from {path}: {source}")]
    SecretFile {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

/// The TOML file; every key is optional and unknown keys are refused so a
/// typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub kumo_http_url: Option<String>,
    pub timezone: Option<String>,
    pub export_link_hours: Option<u32>,
    pub control_listen: Option<SocketAddr>,
    pub control_allow_remote: Option<bool>,
    pub rate_limit_per_minute: Option<NonZeroU32>,
    pub rate_limit_burst: Option<NonZeroU32>,
    pub trusted_proxies: Option<TrustedProxies>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub admin_password_file: Option<PathBuf>,
    pub public_ipv4: Option<Ipv4Addr>,
    pub public_ipv6: Option<Ipv6Addr>,
    pub hostname: Option<String>,
    pub mail_host_pattern: Option<String>,
    pub tracking_host: Option<String>,
    pub cloudflare_api_url: Option<String>,
    pub cloudflare_api_token: Option<String>,
    pub cloudflare_api_token_file: Option<PathBuf>,
    pub dns_servers: Option<DnsServers>,
    pub dmarc_quarantine_after_days: Option<u32>,
    pub audit_retention_days: Option<u32>,
    pub event_retention_days: Option<u32>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_dir: Option<PathBuf>,
    pub public_tls: Option<PublicTls>,
    pub mail_root: Option<PathBuf>,
    pub mailbox_quota: Option<String>,
    pub instantly_api_url: Option<String>,
    pub smartlead_api_url: Option<String>,
    pub replyio_api_url: Option<String>,
    pub certificates: Option<String>,
    pub acme_directory_url: Option<String>,
    pub acme_email: Option<String>,
    pub acme_ca_file: Option<PathBuf>,
    pub acme_http_listen: Option<SocketAddr>,
    pub warmup_submission: Option<String>,
    pub warmup_imap: Option<String>,
    pub warmup_tls_name: Option<String>,
    pub warmup_ca_file: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags for the listeners and limits of `serve`.
/// Where a console command (`user`, `domain`) finds the running server,
/// whose datasource takes its changes.
#[derive(Debug, Default, Clone, Args)]
pub struct ConsoleArgs {
    /// The running server's control listener [default: control_listen
    /// from --config, else 127.0.0.1:8081]
    #[arg(long, env = "INBOXGROVE_CONTROL_LISTEN")]
    pub control_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// Public listener: JSON API and web UI [default: 127.0.0.1:8080]
    #[arg(long, env = "INBOXGROVE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The address people reach this server at, for links in mail such as
    /// one-click unsubscribe [default: http://<listen>]
    #[arg(long, env = "INBOXGROVE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// KumoMTA's HTTP listener, told to drop its caches when a mailbox or
    /// key changes; "" turns it off [default: http://127.0.0.1:8000]
    #[arg(long, env = "INBOXGROVE_KUMO_HTTP_URL")]
    pub kumo_http_url: Option<String>,
    /// Time zone whose midnight starts each mailbox's sending day (IANA
    /// name, e.g. America/New_York) [default: UTC]
    #[arg(long, env = "INBOXGROVE_TIMEZONE")]
    pub timezone: Option<String>,
    /// How long credential export links work, in hours [default: 24]
    #[arg(long, env = "INBOXGROVE_EXPORT_LINK_HOURS")]
    pub export_link_hours: Option<u32>,
    /// Control listener for KumoMTA [default: 127.0.0.1:8081]
    #[arg(long, env = "INBOXGROVE_CONTROL_LISTEN")]
    pub control_listen: Option<SocketAddr>,
    /// Allow the control listener on a non-loopback address
    #[arg(long, env = "INBOXGROVE_CONTROL_ALLOW_REMOTE")]
    pub control_allow_remote: bool,
    /// Requests per minute per token or client IP [default: 1000]
    #[arg(long, env = "INBOXGROVE_RATE_LIMIT_PER_MINUTE")]
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Burst allowance above the per-minute rate [default: 2000]
    #[arg(long, env = "INBOXGROVE_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<NonZeroU32>,
    /// Reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names
    /// the client; from any other peer it is ignored [default: none]
    #[arg(long, env = "INBOXGROVE_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<TrustedProxies>,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(flatten)]
    pub domains: DomainArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub certs: CertArgs,
    #[command(flatten)]
    pub sequencers: SequencerArgs,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub doctor: DoctorArgs,
    #[command(flatten)]
    pub acme: AcmeArgs,
    #[command(flatten)]
    pub warmup: WarmupArgs,
}

/// What the domain orchestrator needs to know about this server.
#[derive(Debug, Default, Clone, Args)]
pub struct DomainArgs {
    /// This server's public IPv4 address (A record, SPF); required before a
    /// domain can be added
    #[arg(long, env = "INBOXGROVE_PUBLIC_IPV4")]
    pub public_ipv4: Option<Ipv4Addr>,
    /// This server's public IPv6 address, if it sends over IPv6
    #[arg(long, env = "INBOXGROVE_PUBLIC_IPV6")]
    pub public_ipv6: Option<Ipv6Addr>,
    /// Mail host name of each domain; {domain} is replaced [default: mail.{domain}]
    #[arg(long, env = "INBOXGROVE_MAIL_HOST_PATTERN")]
    pub mail_host_pattern: Option<String>,
    /// Host that tracking CNAMEs point at [default: none, no tracking record]
    #[arg(long, env = "INBOXGROVE_TRACKING_HOST")]
    pub tracking_host: Option<String>,
    /// Cloudflare API base URL [default: https://api.cloudflare.com/client/v4]
    #[arg(long, env = "INBOXGROVE_CLOUDFLARE_API_URL")]
    pub cloudflare_api_url: Option<String>,
    /// DNS servers (ip or ip:port, comma-separated) that every verification
    /// query goes to, instead of each zone's authoritative servers
    #[arg(long, env = "INBOXGROVE_DNS_SERVERS")]
    pub dns_servers: Option<DnsServers>,
    /// Days a domain stays at DMARC p=none before moving to quarantine; 0 never [default: 14]
    #[arg(long, env = "INBOXGROVE_DMARC_QUARANTINE_AFTER_DAYS")]
    pub dmarc_quarantine_after_days: Option<u32>,
}

/// A list of `ip` or `ip:port` (port 53 by default), comma or space
/// separated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DnsServers(pub Vec<SocketAddr>);

impl std::str::FromStr for DnsServers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let servers = crate::domains::verify::parse_servers(s).map_err(|e| e.0)?;
        if servers.is_empty() {
            return Err("give at least one DNS server, like 127.0.0.1:53".into());
        }
        Ok(Self(servers))
    }
}

impl TryFrom<String> for DnsServers {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The domain orchestrator's settings, resolved.
#[derive(Clone)]
pub struct DomainSettings {
    pub public_ipv4: Option<Ipv4Addr>,
    pub public_ipv6: Option<Ipv6Addr>,
    pub mail_host_pattern: String,
    pub tracking_host: Option<String>,
    pub cloudflare_api_url: String,
    pub cloudflare_api_token: Option<SecretString>,
    pub dns_servers: Option<Vec<SocketAddr>>,
    pub dmarc_quarantine_after_days: u32,
}

pub const CLOUDFLARE_API_URL: &str = "https://api.cloudflare.com/client/v4";

/// The defaults of each domain setting.
impl Default for DomainSettings {
    fn default() -> Self {
        Self {
            public_ipv4: None,
            public_ipv6: None,
            mail_host_pattern: "mail.{domain}".to_owned(),
            tracking_host: None,
            cloudflare_api_url: CLOUDFLARE_API_URL.to_owned(),
            cloudflare_api_token: None,
            dns_servers: None,
            dmarc_quarantine_after_days: 14,
        }
    }
}

/// The first admin, used only when the store has no user yet.
#[derive(Debug, Default, Clone, Args)]
pub struct BootstrapArgs {
    /// Email of the first admin [default: admin@localhost]; its password
    /// comes from INBOXGROVE_ADMIN_PASSWORD(_FILE) or is generated
    #[arg(long, env = "INBOXGROVE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
}

pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Without a trailing slash; `None`: the public listener's own address.
    pub public_url: Option<String>,
    pub kumo_http_url: Option<String>,
    pub timezone: chrono_tz::Tz,
    pub export_link_hours: u32,
    pub control_listen: SocketAddr,
    pub control_allow_remote: bool,
    pub rate_limit_per_minute: NonZeroU32,
    pub rate_limit_burst: NonZeroU32,
    pub trusted_proxies: TrustedProxies,
    pub log: String,
    pub log_format: LogFormat,
    pub admin_email: Option<EmailAddress>,
    pub admin_password: Option<Password>,
    pub domains: DomainSettings,
    pub retention: Retention,
    /// Where each run-time setting of `domains`, `timezone` and `retention` came from.
    pub origins: Origins,
    /// The configured certificate and key; `None`: the self-signed pair.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The certificate bundles (`crate::tls`), absolute.
    pub tls_dir: PathBuf,
    pub public_tls: PublicTls,
    pub sequencers: SequencerUrls,
    /// The maildirs and each one's quota.
    pub mail: MailSettings,
    /// Where the diagnostics look.
    pub doctor: DoctorArgs,
    pub certificates: Certificates,
    pub warmup: WarmupConfig,
}

/// The global flags, already merged with their environment variables by
/// clap.
pub struct Global<'a> {
    pub data_dir: Option<&'a Path>,
    pub log: Option<&'a str>,
    pub log_format: Option<LogFormat>,
}

impl Settings {
    /// Merges flags (clap has applied the environment to them), the file,
    /// and defaults. `env` reads environment variables for the secrets
    /// clap does not handle; tests pass a map.
    pub fn resolve(
        global: Global<'_>,
        serve: &ServeArgs,
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let sequencers = SequencerUrls::resolve(&serve.sequencers, &file)?;
        let data_dir = global
            .data_dir
            .map(Path::to_owned)
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("inboxgrove-data"));
        let certificates = Certificates::resolve(&serve.acme, &file)?;
        let warmup = WarmupConfig::resolve(&serve.warmup, &file)?;
        let tls_dir = certs::resolve_tls_dir(&serve.certs, file.tls_dir.clone(), &data_dir)?;
        // Before the file's fields move out below.
        let env_token = secret("CLOUDFLARE_API_TOKEN", env)?;
        let origins =
            Origins::of_config(&serve.domains, &serve.timezone, &file, env_token.is_some())
                .with_retention(&serve.retention, &file);
        let retention = Retention::resolve(&serve.retention, &file)?;
        let mail = MailSettings::resolve(&serve.mail, file.mail_root, file.mailbox_quota)?;
        let admin_email = match serve.bootstrap.admin_email.clone().or(file.admin_email) {
            Some(raw) => Some(EmailAddress::parse(&raw).map_err(|e| ConfigError::Invalid {
                setting: "admin_email",
                message: e.0,
            })?),
            None => None,
        };
        let password = match secret("ADMIN_PASSWORD", env)? {
            Some(s) => Some(s),
            None => file_secret(
                "admin_password",
                file.admin_password,
                file.admin_password_file,
            )?,
        };
        let admin_password = match password {
            Some(p) => Some(Password::parse(p).map_err(|e| ConfigError::Invalid {
                setting: "admin_password",
                message: e.0,
            })?),
            None => None,
        };
        let cloudflare_api_token = match env_token {
            Some(s) => Some(s),
            None => file_secret(
                "cloudflare_api_token",
                file.cloudflare_api_token,
                file.cloudflare_api_token_file,
            )?,
        };
        let d = &serve.domains;
        let defaults = DomainSettings::default();
        let mail_host_pattern = match d.mail_host_pattern.clone().or(file.mail_host_pattern) {
            Some(raw) => MailHostPattern::parse(&raw)
                .map_err(|e| ConfigError::Invalid {
                    setting: "mail_host_pattern",
                    message: e.0,
                })?
                .into_string(),
            None => defaults.mail_host_pattern,
        };
        let domains = DomainSettings {
            public_ipv4: d.public_ipv4.or(file.public_ipv4),
            public_ipv6: d.public_ipv6.or(file.public_ipv6),
            mail_host_pattern,
            // Checked like a value saved at run time: a host name.
            tracking_host: match d.tracking_host.clone().or(file.tracking_host) {
                Some(raw) => Some(
                    DomainName::parse(&raw)
                        .map_err(|e| ConfigError::Invalid {
                            setting: "tracking_host",
                            message: e.0,
                        })?
                        .as_str()
                        .to_owned(),
                ),
                None => None,
            },
            cloudflare_api_url: d
                .cloudflare_api_url
                .clone()
                .or(file.cloudflare_api_url)
                .unwrap_or(defaults.cloudflare_api_url),
            cloudflare_api_token,
            dns_servers: d.dns_servers.clone().or(file.dns_servers).map(|s| s.0),
            dmarc_quarantine_after_days: d
                .dmarc_quarantine_after_days
                .or(file.dmarc_quarantine_after_days)
                .unwrap_or(defaults.dmarc_quarantine_after_days),
        };
        let listen = serve
            .listen
            .or(file.listen)
            .unwrap_or(([127, 0, 0, 1], 8080).into());
        let public_url = serve.public_url.clone().or(file.public_url);
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                setting: "public_url",
                message: format!("'{url}' must start with https:// (or http://)"),
            });
        }
        let timezone = match serve.timezone.clone().or(file.timezone) {
            Some(name) => parse_timezone(&name).map_err(|e| ConfigError::Invalid {
                setting: "timezone",
                message: e.0,
            })?,
            None => chrono_tz::UTC,
        };
        let tls = certs::resolve_tls_pair(&serve.tls, file.tls_cert, file.tls_key)?;
        let settings = Settings {
            tls,
            tls_dir,
            public_tls: serve
                .certs
                .public_tls
                .or(file.public_tls)
                .unwrap_or_default(),
            data_dir,
            certificates,
            listen,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            kumo_http_url: Some(
                serve
                    .kumo_http_url
                    .clone()
                    .or(file.kumo_http_url)
                    .unwrap_or_else(|| DEFAULT_KUMO_HTTP_URL.to_owned()),
            )
            .filter(|u| !u.trim().is_empty()),
            timezone,
            export_link_hours: serve
                .export_link_hours
                .or(file.export_link_hours)
                .unwrap_or(24)
                .clamp(1, 24 * 30),
            control_listen: serve
                .control_listen
                .or(file.control_listen)
                .unwrap_or(([127, 0, 0, 1], 8081).into()),
            control_allow_remote: serve.control_allow_remote
                || file.control_allow_remote.unwrap_or(false),
            rate_limit_per_minute: serve
                .rate_limit_per_minute
                .or(file.rate_limit_per_minute)
                .unwrap_or(nz(1000)),
            rate_limit_burst: serve
                .rate_limit_burst
                .or(file.rate_limit_burst)
                .unwrap_or(nz(2000)),
            trusted_proxies: (serve.trusted_proxies.clone().or(file.trusted_proxies))
                .unwrap_or_default(),
            log: global
                .log
                .map(str::to_owned)
                .or(env("RUST_LOG"))
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            log_format: global
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            admin_email,
            admin_password,
            domains,
            retention,
            origins,
            sequencers,
            mail,
            warmup,
            doctor: serve.doctor.resolve(file.hostname)?,
        };
        if !settings.control_allow_remote && !settings.control_listen.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                setting: "control_listen",
                message: format!(
                    "{} is not a loopback address; the KumoMTA control endpoint must stay on this machine. Use 127.0.0.1, or pass --control-allow-remote if a firewall guards it",
                    settings.control_listen
                ),
            });
        }
        Ok(settings)
    }
}

/// `INBOXGROVE_<NAME>` or the file named by `INBOXGROVE_<NAME>_FILE`.
fn secret(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    let direct = format!("INBOXGROVE_{name}");
    let file_var = format!("{direct}_FILE");
    file_secret(&direct, env(&direct), env(&file_var).map(PathBuf::from))
}

fn file_secret(
    name: &str,
    direct: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError::SecretTwice {
            name: name.to_owned(),
        }),
        (Some(v), None) => Ok(Some(SecretString::from(v))),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    name: name.to_owned(),
                    path,
                    source,
                })?;
            // Files written by editors and `echo` end in a newline that is
            // not part of the secret.
            Ok(Some(SecretString::from(
                text.trim_end_matches(['\r', '\n']).to_owned(),
            )))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
