//! Warmup transport benchmark: sends per minute from the engine's
//! `Submitter` (STARTTLS, AUTH PLAIN, pooled connections) into the tests'
//! SMTP sink with N concurrent senders, and IMAP engagement actions per
//! minute (locate by Message-ID in every folder, then rescue, \Seen,
//! \Flagged and filing) against a real Dovecot (the provider Dovecot of
//! the tests, Debian's dovecot-imapd with LMTP and Sieve). Run with
//! `cargo bench --bench warmup`; it prints its figures.
//!
//! Client and servers share this machine's cores, so the figures are a
//! floor on what the engine alone would do.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use inboxgrove::warmup::imap::{self, Actions};
use inboxgrove::warmup::smtp::Submitter;
use inboxgrove::warmup::tls::Trust;
use inboxgrove::warmup::{Endpoint, Login};
use reqwest::StatusCode;

#[path = "common/load.rs"]
mod load;
// Shared with the integration tests, which use more of them.
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support/dovecot.rs"]
mod dovecot;
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support/smtp_sink.rs"]
mod smtp_sink;

use dovecot::Dovecot;
use load::{Figures, measure, report};
use smtp_sink::{Hooks, SmtpSink, lmtp_deliver};

const PASSWORD: &str = "bench password 1";
/// Sending mailboxes, each with its own login (and pooled connections).
const SENDERS: usize = 20;
/// Receiving mailboxes of the provider Dovecot, one IMAP session each.
const RECEIVERS: usize = 4;
const MESSAGES_PER_RECEIVER: usize = 100;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("cert");
        std::fs::write(&key, made.key_pair.serialize_pem()).expect("key");
        let trust = Trust::new(std::slice::from_ref(&cert)).expect("trust");
        println!(
            "inboxgrove warmup transport benchmark ({} cores; client and servers on one machine)",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        sends(&trust, &cert, &key).await;
        if dovecot::available() {
            engagement(&trust, &cert, &key).await;
        }
    });
}

/// The sending side: `total` messages from `concurrency` tasks through
/// `submitter` to `endpoint`, round-robin over `logins`. A scheduler can
/// sit in front of this later; the figures are per send.
pub async fn send_load(
    submitter: Arc<Submitter>,
    endpoint: Arc<Endpoint>,
    logins: Arc<Vec<Login>>,
    total: usize,
    concurrency: usize,
) -> Figures {
    measure(total, concurrency, move |i| {
        let (submitter, endpoint, logins) = (submitter.clone(), endpoint.clone(), logins.clone());
        async move {
            let login = &logins[i % logins.len()];
            let raw = message(
                &format!("bench-{i}@bench.test"),
                &login.username,
                "Quick question",
            );
            match submitter
                .send(
                    &endpoint,
                    login,
                    &login.username,
                    "peer@provider.test",
                    &raw,
                )
                .await
            {
                Ok(()) => StatusCode::OK,
                Err(e) => panic!("send {i}: {e}"),
            }
        }
    })
    .await
}

async fn sends(trust: &Trust, cert: &Path, key: &Path) {
    let logins: Vec<Login> = (0..SENDERS)
        .map(|i| Login {
            username: format!("sender{i}@bench.test"),
            password: PASSWORD.to_owned().into(),
        })
        .collect();
    let hooks = Hooks {
        auth: Arc::new(|_, p| p == PASSWORD),
        ..Hooks::accept_all("", "")
    };
    let sink = SmtpSink::start(cert, key, hooks).await;
    let endpoint = Arc::new(Endpoint {
        host: "127.0.0.1".into(),
        port: sink.addr.port(),
        tls_name: "localhost".into(),
        implicit_tls: false,
    });
    let submitter = Arc::new(Submitter::new(trust.clone(), "bench.test".into()));
    let logins = Arc::new(logins);
    for (total, concurrency) in [(2_000, 1), (10_000, 8), (10_000, 32)] {
        let before = sink.connections();
        let figures = send_load(
            submitter.clone(),
            endpoint.clone(),
            logins.clone(),
            total,
            concurrency,
        )
        .await;
        report("smtp submit (STARTTLS)", total, concurrency, &figures);
        println!(
            "  = {:.0} sends/min, {} new TCP connections",
            figures.rps * 60.0,
            sink.connections() - before
        );
    }
    assert_eq!(sink.accepted().len(), 22_000);
}

/// The receiving side: each receiver's session locates and engages its
/// messages one after another, the receivers in parallel.
async fn engagement(trust: &Trust, cert: &Path, key: &Path) {
    let users: Vec<(String, String)> = (0..RECEIVERS)
        .map(|i| (format!("peer{i}@provider.test"), PASSWORD.to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let sieve = "require [\"fileinto\"];\nif header :contains \"Subject\" \"[junk]\" { fileinto \"INBOX.Junk\"; stop; }\n";
    let d = Dovecot::provider(&refs, sieve, cert, key).await;
    let lmtp = d.lmtp.expect("lmtp");
    let started = Instant::now();
    for (user, _) in &users {
        for m in 0..MESSAGES_PER_RECEIVER {
            // Every third lands in Junk, to be rescued.
            let subject = if m % 3 == 0 {
                "Checking in [junk]"
            } else {
                "Checking in"
            };
            let raw = message(&format!("{m}.{user}"), "sender@bench.test", subject);
            lmtp_deliver(lmtp, "sender@bench.test", user, &raw)
                .await
                .expect("lmtp");
        }
    }
    let delivered = RECEIVERS * MESSAGES_PER_RECEIVER;
    println!(
        "lmtp deliveries (setup)      n={delivered:<6} {:.0}/min",
        delivered as f64 / started.elapsed().as_secs_f64() * 60.0
    );
    let endpoint = Arc::new(Endpoint {
        host: "127.0.0.1".into(),
        port: d.imaps.port(),
        tls_name: "localhost".into(),
        implicit_tls: true,
    });
    let started = Instant::now();
    let tasks: Vec<_> = users
        .into_iter()
        .map(|(user, password)| {
            let (trust, endpoint) = (trust.clone(), endpoint.clone());
            tokio::spawn(async move {
                let login = Login {
                    username: user.clone(),
                    password: password.into(),
                };
                let mut s = imap::connect(&trust, &endpoint, &login)
                    .await
                    .expect("login");
                let actions = Actions {
                    rescue: true,
                    seen: true,
                    flag: true,
                    file_into: Some("Warmup"),
                };
                for m in 0..MESSAGES_PER_RECEIVER {
                    let id = format!("{m}.{user}");
                    let found = s.locate(&id).await.expect("locate").expect("found");
                    s.engage(&found, &actions).await.expect("engage");
                }
                s.logout().await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "imap locate+engage (IMAPS)   n={delivered:<6} c={RECEIVERS:<4} {:.0} actions/min ({:.1} ms each per session)",
        delivered as f64 / elapsed * 60.0,
        elapsed * 1000.0 * RECEIVERS as f64 / delivered as f64
    );
}

fn message(id: &str, from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: peer@provider.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHi, are you free on Tuesday?\r\n\r\nAnn\r\n"
    )
    .into_bytes()
}
