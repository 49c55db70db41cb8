//! `inboxgrove doctor` and the admins' diagnostics page: is this host
//! ready to send? One plain function per check, each answering `ok`,
//! `warn` or `fail` with the fix in one sentence. Checks that touch the
//! network run at once, each under a timeout, so the page answers in a
//! few seconds. A check that could not run says so with a `warn`: only a
//! confirmed problem is a `fail`. No secret reaches any output: the
//! control secret and the canary's password are never printed.

mod bundles;
mod cert;
mod host;
mod probe;

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::{Settings, local_address};
use crate::domains::model::DomainStatus;
use crate::domains::plan::Purpose;
use crate::domains::service::{DomainView, Orchestrator};
use crate::dovecot::tls;

pub use cert::SELF_SIGNED_CONSEQUENCE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's answer. `fix` is `None` exactly when the check is `ok`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: &str, status: Status, detail: String, fix: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            detail,
            fix,
        }
    }

    pub fn ok(name: &str, detail: String) -> Self {
        Self::new(name, Status::Ok, detail, None)
    }

    pub fn warn(name: &str, detail: String, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix.into()))
    }

    pub fn fail(name: &str, detail: String, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail, Some(fix.into()))
    }
}

/// Every check, in a stable order; `ok` unless one failed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub ok: bool,
}

/// What is checked and where: built from the server's settings (and the
/// `doctor` flags), so the checks look where the services really are.
#[derive(Debug, Clone)]
pub struct Target {
    pub data_dir: PathBuf,
    pub mail_root: PathBuf,
    pub kumo_spool: PathBuf,
    /// The name KumoMTA's banner and the PTR record should give.
    pub hostname: String,
    pub public_ipv4: Option<Ipv4Addr>,
    pub public_ipv6: Option<Ipv6Addr>,
    pub dns_servers: Option<Vec<SocketAddr>>,
    pub smtp: SocketAddr,
    pub submission: SocketAddr,
    pub imaps: SocketAddr,
    /// KumoMTA's HTTP listener (`kumo_http_url`).
    pub kumo_http_url: Option<String>,
    /// host:port of a remote MX, to learn whether outbound 25 is open.
    pub outbound: String,
    /// An HTTP(S) URL whose `Date` header the clock is compared with.
    pub clock_url: String,
    /// The certificate files the services are configured with when no
    /// bundle of `tls_dir` is (`tls_cert`, else the self-signed pair).
    pub certificates: Vec<PathBuf>,
    /// The ACME bundles (`crate::tls`).
    pub tls_dir: PathBuf,
    /// Per network check.
    pub timeout: Duration,
}

impl Target {
    /// The settings' places, with the installed services' defaults.
    pub fn new(settings: &Settings) -> Self {
        let d = &settings.doctor;
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let cert = match &settings.tls {
            Some((cert, _)) => cert.clone(),
            None => tls::default_paths(&settings.tls_dir).cert,
        };
        Self {
            data_dir: settings.data_dir.clone(),
            mail_root: settings.mail.root.clone(),
            kumo_spool: d
                .kumo_spool
                .clone()
                .unwrap_or_else(|| "/var/spool/kumomta".into()),
            hostname: d.mail_hostname(),
            public_ipv4: settings.domains.public_ipv4,
            public_ipv6: settings.domains.public_ipv6,
            dns_servers: settings.domains.dns_servers.clone(),
            smtp: local_address(d.smtp_addr.unwrap_or(loopback(25))),
            submission: local_address(
                d.submission_addr
                    .unwrap_or(loopback(crate::inboxes::SMTP_PORT)),
            ),
            imaps: local_address(d.imaps_addr.unwrap_or(loopback(crate::inboxes::IMAP_PORT))),
            kumo_http_url: settings.kumo_http_url.clone(),
            outbound: d
                .outbound_host
                .clone()
                .unwrap_or_else(|| "gmail-smtp-in.l.google.com:25".to_owned()),
            clock_url: d
                .clock_url
                .clone()
                .unwrap_or_else(|| "https://www.cloudflare.com/".to_owned()),
            certificates: vec![cert],
            tls_dir: settings.tls_dir.clone(),
            timeout: Duration::from_secs(d.doctor_timeout.unwrap_or(5).clamp(1, 60)),
        }
    }
}

/// Every check, with the domains as the domains page lists them.
pub async fn diagnose(target: &Target, clock: &SharedClock, domains: &Orchestrator) -> Report {
    let list = domains.list(None).await.map_err(|e| e.to_string());
    run(target, clock, list).await
}

type Pending<'a> = Pin<Box<dyn Future<Output = Vec<Check>> + Send + 'a>>;

/// Runs every check concurrently. `domains` is the list the domains page
/// shows, or why it could not be read.
pub async fn run(
    target: &Target,
    clock: &SharedClock,
    domains: Result<Vec<DomainView>, String>,
) -> Report {
    let now = clock.now();
    let active: Option<Vec<bundles::MailHost>> = domains.as_ref().ok().map(|list| {
        list.iter()
            .filter(|d| d.domain.status == DomainStatus::Active)
            .flat_map(|d| {
                d.records
                    .iter()
                    .filter(|r| r.record.purpose == Purpose::MailHost)
                    .map(|r| bundles::MailHost {
                        domain: d.domain.domain_name.clone(),
                        host: r.record.name.clone(),
                    })
            })
            .collect()
    });
    let (bundle_checks, default_chain) =
        bundles::checks(&target.tls_dir, &target.hostname, active.as_deref(), now);
    // What ports 25, 587 and 993 should serve.
    let configured = default_chain
        .as_ref()
        .or(target.certificates.first())
        .and_then(|p| cert::load_leaf(p).ok());
    let mut hosts: Vec<String> = vec![target.hostname.clone()];
    if let Ok(list) = &domains {
        hosts.extend(
            list.iter()
                .flat_map(|d| &d.records)
                .filter(|r| r.record.purpose == Purpose::MailHost)
                .map(|r| r.record.name.clone()),
        );
    }
    let guarded = |name: &'static str, f: Pending<'static>| -> Pending<'static> {
        let limit = target.timeout * 3;
        Box::pin(async move {
            match tokio::time::timeout(limit, f).await {
                Ok(checks) => checks,
                Err(_) => vec![Check::warn(
                    name,
                    format!("did not finish within {} s", limit.as_secs()),
                    "Run `inboxgrove doctor` again; if it stays slow, check this host's network.",
                )],
            }
        })
    };
    let t = target.clone();
    let public = {
        let (t, hosts) = (t.clone(), hosts.clone());
        Box::pin(async move { host::public_addresses(&t, &hosts).await })
    };
    let smtp = {
        let (t, c) = (t.clone(), configured.clone());
        Box::pin(async move { probe::smtp(&t, c.as_deref(), now).await })
    };
    let submission = {
        let (t, c) = (t.clone(), configured.clone());
        Box::pin(async move { probe::submission(&t, c.as_deref(), now).await })
    };
    let imaps = {
        let (t, c) = (t.clone(), configured.clone());
        Box::pin(async move { probe::imaps(&t, c.as_deref(), now).await })
    };
    let outbound = {
        let t = t.clone();
        Box::pin(async move { vec![probe::outbound(&t.outbound, t.timeout).await] })
    };
    let kumo = {
        let t = t.clone();
        Box::pin(
            async move { vec![host::kumo_liveness(t.kumo_http_url.as_deref(), t.timeout).await] },
        )
    };
    let skew = {
        let (t, clock) = (t.clone(), clock.clone());
        Box::pin(async move { vec![host::clock_skew(&t.clock_url, &clock, t.timeout).await] })
    };
    let pending: Vec<Pending<'static>> = vec![
        guarded("public_ip", public),
        guarded("port_25", smtp),
        guarded("port_587", submission),
        guarded("port_993", imaps),
        guarded("outbound_25", outbound),
        guarded("kumomta", kumo),
        guarded("clock", skew),
    ];
    let mut checks: Vec<Check> = futures_util::future::join_all(pending)
        .await
        .into_iter()
        .flatten()
        .collect();
    for (name, dir) in [
        ("disk_data_dir", &target.data_dir),
        ("disk_mail_root", &target.mail_root),
        ("disk_kumo_spool", &target.kumo_spool),
    ] {
        checks.push(host::free_disk(name, dir));
    }
    match domains {
        Ok(list) => checks.extend(list.iter().map(host::domain_records)),
        Err(e) => checks.push(Check::warn(
            "domains",
            format!("cannot read the domains: {e}"),
            "Check that the data dir is readable by this user.",
        )),
    }
    // The configured (or self-signed) file matters only while no bundle
    // is presented instead.
    if default_chain.is_none() {
        for path in &target.certificates {
            checks.push(cert::file_check("certificate", path, now));
        }
    }
    checks.extend(bundle_checks);
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report { checks, ok }
}

#[cfg(test)]
mod tests;
