//! The host around the services: its public addresses and their PTR,
//! KumoMTA's HTTP listener, the clock, free disk, and each domain's DNS
//! records as the domains page shows them.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Check, Target};
use crate::clock::SharedClock;
use crate::domains::model::{DomainStatus, RecordState};
use crate::domains::service::DomainView;
use crate::domains::verify::{DnsChecker, VerifyError};
use crate::remote::network_error;

/// Below this a full disk is hours away at a busy day's rate.
const DISK_FAIL: u64 = 256 << 20;
const DISK_WARN: u64 = 2 << 30;
/// HTTP dates have one-second resolution (RFC 9110 §5.6.7).
const SKEW_OK: i64 = 5;
/// DKIM `t=` and session tokens carry times; minutes off makes receivers
/// and our own token checks disagree.
const SKEW_FAIL: i64 = 60;

/// Each configured public address: a PTR (RFC 1035 §3.5) that resolves
/// back to it (forward-confirmed, as receivers check it: RFC 8601 §3's
/// iprev) and names one of `hosts` (the banner name or a mail.<domain>).
pub async fn public_addresses(t: &Target, hosts: &[String]) -> Vec<Check> {
    let ips: Vec<IpAddr> = t
        .public_ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(t.public_ipv6.map(IpAddr::V6))
        .collect();
    if ips.is_empty() {
        return vec![Check::warn(
            "public_ip",
            "public_ipv4 is not set, so no address was checked".to_owned(),
            "Set public_ipv4 to this server's public address.",
        )];
    }
    let dns = DnsChecker::new(t.dns_servers.clone());
    // No answer says nothing about the PTR: the check could not run.
    let unanswered = |e: VerifyError| {
        Check::warn(
            "public_ip",
            e.to_string(),
            "Check this host's DNS resolver, then run doctor again.",
        )
    };
    let mut out = Vec::new();
    'ips: for ip in ips {
        let names = match dns.reverse(ip).await {
            Ok(n) => n,
            Err(e) => {
                out.push(unanswered(e));
                continue;
            }
        };
        let mut confirmed = Vec::new();
        for name in &names {
            match dns.addresses(name).await {
                Ok(addrs) if addrs.contains(&ip) => confirmed.push(name.clone()),
                Ok(_) => {}
                Err(e) => {
                    out.push(unanswered(e));
                    continue 'ips;
                }
            }
        }
        out.push(judge_ptr(ip, &names, &confirmed, hosts));
    }
    out
}

/// `names`: the PTR answers; `confirmed`: those that resolve back to `ip`;
/// `hosts[0]` is the host name the fix proposes.
pub fn judge_ptr(ip: IpAddr, names: &[String], confirmed: &[String], hosts: &[String]) -> Check {
    let want = hosts.first().map_or("the mail host", String::as_str);
    let set_ptr = format!(
        "Ask your VPS provider to set the PTR of {ip} to {want}, which must resolve to {ip}."
    );
    if names.is_empty() {
        return Check::fail("public_ip", format!("{ip} has no PTR record"), set_ptr);
    }
    if confirmed.is_empty() {
        return Check::fail(
            "public_ip",
            format!(
                "the PTR of {ip} ({}) does not resolve back to {ip}",
                names.join(", ")
            ),
            set_ptr,
        );
    }
    let matching = confirmed
        .iter()
        .find(|n| hosts.iter().any(|h| h.eq_ignore_ascii_case(n)));
    match matching {
        Some(name) => Check::ok(
            "public_ip",
            format!("{ip} has PTR {name}, which resolves back to it"),
        ),
        None => Check::warn(
            "public_ip",
            format!(
                "the PTR of {ip} is {}, not a mail host of this server",
                confirmed.join(", ")
            ),
            set_ptr,
        ),
    }
}

/// KumoMTA's liveness endpoint: 200 ready, 503 not accepting (its
/// `crates/kumod/src/http_server/` check-liveness handler).
pub async fn kumo_liveness(url: Option<&str>, limit: Duration) -> Check {
    let name = "kumomta";
    let Some(base) = url else {
        return Check::warn(
            name,
            "kumo_http_url is not set: doctor cannot ask KumoMTA, and mailbox changes reach it only when its caches expire".to_owned(),
            "Set kumo_http_url to KumoMTA's HTTP listener, e.g. http://127.0.0.1:8000.",
        );
    };
    let url = format!("{}/api/check-liveness/v1", base.trim_end_matches('/'));
    let client = match reqwest::Client::builder().timeout(limit).build() {
        Ok(c) => c,
        Err(e) => {
            return Check::warn(
                name,
                format!("cannot make an HTTP client: {e}"),
                "Run doctor again.",
            );
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => {
            Check::ok(name, format!("{url} answers {}", r.status()))
        }
        Ok(r) => Check::fail(
            name,
            format!(
                "{url} answers {}: KumoMTA is not accepting messages",
                r.status()
            ),
            "Read KumoMTA's log (journalctl -u kumomta); a full spool disk is the usual cause.",
        ),
        Err(e) => Check::fail(
            name,
            format!("{url} does not answer: {}", network_error(e)),
            "Start KumoMTA (systemctl start kumomta), or set kumo_http_url to its HTTP listener.",
        ),
    }
}

/// This clock against the `Date` header of `url` (RFC 9110 §6.6.1).
pub async fn clock_skew(url: &str, clock: &SharedClock, limit: Duration) -> Check {
    let name = "clock";
    let fix = "Check this host's network, or set --clock-url to a reachable HTTP server, then run doctor again.";
    let client = match reqwest::Client::builder().timeout(limit).build() {
        Ok(c) => c,
        Err(e) => return Check::warn(name, format!("cannot make an HTTP client: {e}"), fix),
    };
    let answer = match client.head(url).send().await {
        Ok(r) => r,
        Err(e) => {
            return Check::warn(
                name,
                format!("could not check: {url}: {}", network_error(e)),
                fix,
            );
        }
    };
    let now = clock.now();
    let date = answer
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
    match date {
        Some(d) => judge_skew(now, d.with_timezone(&Utc), url),
        None => Check::warn(
            name,
            format!("could not check: {url} sent no valid Date header"),
            fix,
        ),
    }
}

pub fn judge_skew(now: DateTime<Utc>, theirs: DateTime<Utc>, url: &str) -> Check {
    let skew = (now - theirs).num_seconds();
    let detail = format!("this clock is {skew:+} s from {url}'s");
    let fix = "Run time synchronisation (systemctl enable --now systemd-timesyncd or chrony).";
    match skew.abs() {
        s if s <= SKEW_OK => Check::ok("clock", detail),
        s if s < SKEW_FAIL => Check::warn("clock", detail, fix),
        _ => Check::fail("clock", detail, fix),
    }
}

/// Free space for unprivileged writers (statvfs `f_bavail`) in `dir`.
pub fn free_disk(name: &str, dir: &Path) -> Check {
    let stat = match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s,
        Err(nix::errno::Errno::ENOENT) => {
            return Check::fail(
                name,
                format!("{} does not exist", dir.display()),
                "Create it, or point the setting at the directory the service uses.",
            );
        }
        Err(e) => {
            return Check::warn(
                name,
                format!("could not check {}: {e}", dir.display()),
                "Run doctor as a user that can read the directory.",
            );
        }
    };
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    judge_disk(name, dir, free)
}

pub fn judge_disk(name: &str, dir: &Path, free: u64) -> Check {
    let detail = format!("{} MiB free in {}", free >> 20, dir.display());
    let fix = "Free space or grow the disk holding it.";
    match free {
        f if f < DISK_FAIL => Check::fail(name, detail, fix),
        f if f < DISK_WARN => Check::warn(name, detail, fix),
        _ => Check::ok(name, detail),
    }
}

/// One domain's records, as its page shows them (the last verification).
pub fn domain_records(view: &DomainView) -> Check {
    let d = &view.domain;
    let name = format!("dns_{}", d.domain_name);
    let show = format!(
        "Publish the records `inboxgrove domain show {}` lists.",
        d.domain_name
    );
    let of = |states: &[RecordState]| -> Vec<String> {
        view.records
            .iter()
            .filter(|r| states.contains(&r.status))
            .map(|r| format!("{} {}", r.record.record_type.as_str(), r.record.name))
            .collect()
    };
    if d.status == DomainStatus::Failed {
        let why = d
            .last_error
            .clone()
            .unwrap_or_else(|| "no reason recorded".to_owned());
        return Check::fail(&name, format!("the domain failed: {why}"), show);
    }
    let wrong = of(&[RecordState::Mismatch]);
    if !wrong.is_empty() {
        return Check::fail(
            &name,
            format!("DNS serves something else for {}", wrong.join(", ")),
            show,
        );
    }
    let waiting = of(&[
        RecordState::Missing,
        RecordState::Pending,
        RecordState::Published,
    ]);
    if !waiting.is_empty() {
        return Check::warn(
            &name,
            format!("not seen in DNS yet: {}", waiting.join(", ")),
            format!(
                "Wait for DNS propagation; if it lasts, publish the records `inboxgrove domain show {}` lists.",
                d.domain_name
            ),
        );
    }
    Check::ok(
        &name,
        format!("all {} records verified", view.records.len()),
    )
}
