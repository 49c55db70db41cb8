//! Domain orchestrator benchmark: from `POST /api/v1/domains/add` to every
//! record published at a Cloudflare double that adds 50 ms to each call,
//! and on to `active`, verified through a real DNS server on loopback.
//! Run with `cargo bench --bench domains`; it prints its figures.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inboxgrove::clock::SystemClock;
use inboxgrove::config::{DnsServers, DomainArgs};
use inboxgrove::domains::cloudflare::CloudflareLimiter;
use inboxgrove::domains::service::CloudflareFactory;
use inboxgrove::remote::RetryPolicy;
use inboxgrove::server::{Application, Remotes};
use serde_json::{Value, json};

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support"]
mod support {
    pub mod cloudflare_double;
    pub mod dns_server;
    pub mod zones;
}

use support::cloudflare_double::CloudflareDouble;
use support::dns_server::DnsServer;
use support::zones::Zones;

// This benchmark starts its server with its own remotes, not app::start.
#[path = "common/app.rs"]
#[allow(dead_code)]
mod app;

const DOMAINS: usize = 20;
const LATENCY: Duration = Duration::from_millis(50);
const TOKEN: &str = "bench-token";

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<34} n={:<3} p50={:>8.1?} p90={:>8.1?} max={:>8.1?}",
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.9),
        samples[samples.len() - 1]
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let zones = Zones::default();
        let cloudflare = CloudflareDouble::start(zones.clone()).await;
        cloudflare.user_token(TOKEN);
        cloudflare.set_latency(LATENCY);
        let dns = DnsServer::start(zones.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = app::settings(
            dir.path(),
            DomainArgs {
                public_ipv4: Some("203.0.113.7".parse().expect("ip")),
                cloudflare_api_url: Some(cloudflare.base_url()),
                dns_servers: Some(DnsServers(vec![dns.addr()])),
                ..Default::default()
            },
        );
        // A limiter that does not bind here: the point is the latency of
        // one domain, not Cloudflare's 1,200-per-5-minutes budget.
        let dns = Arc::new(CloudflareFactory {
            base_url: cloudflare.base_url(),
            limiter: Arc::new(CloudflareLimiter::new(
                NonZeroU32::new(1_000_000).expect("non-zero"),
                NonZeroU32::new(1_000).expect("non-zero"),
            )),
            retry: RetryPolicy::default(),
        });
        let remotes = Remotes {
            dns,
            ..Remotes::real(&settings)
        };
        let app = Application::build_with(&settings, Arc::new(SystemClock), remotes)
            .await
            .expect("app");
        let base = format!("http://{}", app.public_addr());
        tokio::spawn(app.run(std::future::pending()));

        let client = reqwest::Client::new();
        let token = app::login(&client, &base).await;

        let (mut published, mut active, mut calls) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..DOMAINS {
            let name = format!("bench{i}.test");
            zones.add_zone(&name);
            cloudflare.clear_requests();
            let started = Instant::now();
            let added: Value = client
                .post(format!("{base}/api/v1/domains/add"))
                .bearer_auth(&token)
                .json(&json!({ "domain_name": name, "cloudflare_api_token": TOKEN }))
                .send()
                .await
                .expect("add")
                .json()
                .await
                .expect("json");
            let id = added["domain_id"].as_str().expect("id").to_owned();
            let mut seen_published = None;
            loop {
                let d: Value = client
                    .get(format!("{base}/api/v1/domains/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("get")
                    .json()
                    .await
                    .expect("json");
                let status = d["status"].as_str().unwrap_or_default();
                if seen_published.is_none() && matches!(status, "verifying" | "active") {
                    seen_published = Some(started.elapsed());
                }
                if status == "active" {
                    active.push(started.elapsed());
                    break;
                }
                assert!(status != "failed", "{d:#}");
                assert!(started.elapsed() < Duration::from_secs(30), "{d:#}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            published.push(seen_published.expect("published before active"));
            calls.push(cloudflare.requests().len());
        }
        println!(
            "inboxgrove domain benchmark: {DOMAINS} domains, one after another, Cloudflare double +{LATENCY:?} per call, DNS on loopback"
        );
        println!("Cloudflare calls per domain: {calls:?}");
        report("add -> all records published", published);
        report("add -> active (verified in DNS)", active);
    });
}
