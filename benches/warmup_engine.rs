//! The warmup engine's send path end to end: the tick plans a day for 100
//! mailboxes on 10 domains, then the job scheduler runs every send job
//! (the state change in SQLite, composing from the corpus, the marker, the
//! pooled SMTP submission with STARTTLS and AUTH PLAIN) into an SMTP
//! receiver on loopback. The server's two workers and this loop share the
//! jobs, as in production. Run with `cargo bench --bench warmup_engine`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use inboxgrove::clock::{Clock, ManualClock};
use inboxgrove::config::{DomainArgs, WarmupArgs};
use inboxgrove::server::Application;
use serde_json::json;

// This benchmark starts its server with a manual clock, not app::start.
#[allow(dead_code)]
#[path = "common/app.rs"]
mod app;
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support/smtp_sink.rs"]
mod smtp_sink;

use smtp_sink::{Hooks, SmtpSink};

const DOMAINS: usize = 10;
const PER_DOMAIN: usize = 10;
const DAILY: u32 = 40;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The self-signed pair the engine trusts for the appliance's own
    // services; the receiver in KumoMTA's place presents it.
    let pair = inboxgrove::dovecot::tls::default_paths(&dir.path().join("certs"));
    let names = inboxgrove::dovecot::tls::SELF_SIGNED_NAMES.map(str::to_owned);
    inboxgrove::dovecot::tls::ensure_self_signed(&pair, &names).expect("pair");
    let sink = SmtpSink::start(
        &pair.cert,
        &pair.key,
        Hooks {
            auth: Arc::new(|_, _| true),
            ..Hooks::accept_all("", "")
        },
    )
    .await;
    let settings = app::settings_with(
        dir.path(),
        DomainArgs {
            public_ipv4: Some("203.0.113.7".parse().expect("ip")),
            ..Default::default()
        },
        |serve| {
            serve.warmup = WarmupArgs {
                warmup_submission: Some(sink.addr.to_string()),
                // Nothing listens there: no engagement in this figure.
                warmup_imap: Some("127.0.0.1:1".into()),
                ..Default::default()
            };
        },
    );
    let start: DateTime<Utc> = "2030-03-18T00:05:00Z".parse().expect("time");
    let clock = Arc::new(ManualClock::new(start));
    let server = Application::build(&settings, clock.clone())
        .await
        .expect("app");
    let base = format!("http://{}", server.public_addr());
    let scheduler = server.scheduler();
    tokio::spawn(server.run(std::future::pending()));
    let client = reqwest::Client::new();
    let token = app::login(&client, &base).await;
    let db = rusqlite::Connection::open(inboxgrove::store::Store::path_in(dir.path())).expect("db");
    db.busy_timeout(std::time::Duration::from_secs(10))
        .expect("timeout");
    let mut ids = Vec::new();
    for d in 0..DOMAINS {
        let name = format!("bench{d}.test");
        let added = app::post(
            &client,
            &format!("{base}/api/v1/domains/add"),
            &token,
            json!({ "domain_name": name }),
        )
        .await;
        let domain = added["domain_id"].as_str().expect("domain").to_owned();
        db.execute(
            "UPDATE domains SET status = 'active' WHERE id = ?1",
            [&domain],
        )
        .expect("active");
        let made = app::post(
            &client,
            &format!("{base}/api/v1/inboxes/bulk"),
            &token,
            json!({ "domain_id": domain, "quantity": PER_DOMAIN, "enable_warmup": true }),
        )
        .await;
        for i in made["inboxes"].as_array().expect("inboxes") {
            ids.push(i["inbox_id"].as_str().expect("id").to_owned());
        }
    }
    for id in &ids {
        let res = client
            .patch(format!("{base}/api/v1/inboxes/{id}/warmup"))
            .bearer_auth(&token)
            .json(&json!({
                "ramp": { "preset": "linear", "start": DAILY, "increment": 0, "ceiling": DAILY },
                "variation_pct": 0,
            }))
            .send()
            .await
            .expect("patch");
        assert!(
            res.status().is_success(),
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    // The next tick plans the day; then every send is due at once.
    clock.advance(Duration::minutes(20));
    let t = Instant::now();
    scheduler.run_due().await.expect("tick");
    let planned: i64 = db
        .query_row("SELECT count(*) FROM warmup_messages", [], |r| r.get(0))
        .expect("planned");
    println!(
        "inboxgrove warmup engine benchmark ({} cores; {} mailboxes)",
        std::thread::available_parallelism().map_or(0, usize::from),
        ids.len()
    );
    println!(
        "tick: planned {planned} messages in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // Every send of the window is due at 18:59 (none is 12 h late yet);
    // the few after it at 19:10.
    let mut sent = 0;
    let t = Instant::now();
    for to in ["18:59", "19:10"] {
        let at: DateTime<Utc> = format!("2030-03-18T{to}:00Z").parse().expect("time");
        clock.advance(at - clock.now());
        loop {
            let ran = scheduler.run_due().await.expect("sends");
            let left: i64 = db
                .query_row(
                    "SELECT count(*) FROM jobs WHERE kind = 'warmup.send'
                     AND state IN ('queued', 'running') AND run_at <= ?1",
                    [clock.now()],
                    |r| r.get(0),
                )
                .expect("left");
            if ran == 0 && left == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        sent = sink.accepted().len();
    }
    let elapsed = t.elapsed().as_secs_f64();
    let skipped: i64 = db
        .query_row(
            "SELECT count(*) FROM warmup_messages WHERE status != 'sent'",
            [],
            |r| r.get(0),
        )
        .expect("skipped");
    println!(
        "scheduler → SMTP receiver: {sent} of {planned} sends ({skipped} not sent) in {elapsed:.2} s = {:.0} sends/min",
        sent as f64 / elapsed * 60.0,
    );
}
