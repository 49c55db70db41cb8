//! The ACME client against a real ACME server: Debian's pebble (Let's
//! Encrypt's test CA), validating through the loopback DNS server that
//! the Cloudflare double writes into, and over HTTP at the appliance's
//! own HTTP-01 responder. The clock is a manual one that starts at the
//! wall clock's now (pebble dates its certificates by the wall clock).

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inboxgrove::clock::{Clock, ManualClock, SystemClock};
use inboxgrove::config::{AcmeArgs, DomainArgs};
use inboxgrove::tls::{self, Bundle, Manifest};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_rustls::rustls;

use crate::domains::lifecycle::manual_domain_with_records;
use crate::domains::{TOKEN, World, world_on};
use crate::helpers::*;
use crate::support::dns_server::DnsServer;
use crate::support::pebble::{Pebble, free_port};
use crate::support::zones::Zones;
use inboxgrove::jobs::Scheduler;

const SOON: Duration = Duration::from_secs(30);
/// Past the debounce of `acme.issue` after a domain becomes active.
const PAST_DEBOUNCE: chrono::Duration = chrono::Duration::seconds(31);

/// The reload hook as the tests see it: the ids of each call's bundles;
/// it can be made to fail its next call.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Vec<String>>>,
    fail_next: std::sync::atomic::AtomicBool,
}

impl Recorder {
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    fn fail_next(&self) {
        self.fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tls::Reload for Recorder {
    fn reload<'a>(
        &'a self,
        changed: &'a [Bundle],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        let ids = changed.iter().map(|b| b.id.clone()).collect();
        self.calls.lock().unwrap().push(ids);
        let fail = self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            match fail {
                true => Err("dovecot: reload refused".to_owned()),
                false => Ok(()),
            }
        })
    }
}

struct Ca {
    w: World,
    pebble: Pebble,
    clock: Arc<ManualClock>,
    reloads: Arc<Recorder>,
    http_port: u16,
}

async fn ca_world() -> Ca {
    ca_world_at(None).await
}

/// A world whose server gets its certificates from a fresh pebble; with
/// `public_url`, its host is the admin host.
async fn ca_world_at(public_url: Option<&str>) -> Ca {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let zones = Zones::default();
    let dns = DnsServer::start(zones.clone()).await;
    let http_port = free_port();
    let pebble = Pebble::start(dns.addr(), http_port).await;
    let reloads = Arc::new(Recorder::default());
    let opts = Options {
        public_url: public_url.map(str::to_owned),
        ..ca_options(&pebble, http_port, &clock, &reloads)
    };
    let w = world_on(zones, dns, opts).await;
    Ca {
        w,
        pebble,
        clock,
        reloads,
        http_port,
    }
}

fn ca_options(
    pebble: &Pebble,
    http_port: u16,
    clock: &Arc<ManualClock>,
    reloads: &Arc<Recorder>,
) -> Options {
    Options {
        clock: Some(clock.clone()),
        // Mail hosts resolve here, where the HTTP-01 responder listens.
        // No DMARC ramp: when the renewal test moves two months on, the
        // hand-made domains would fail for their outdated DMARC record.
        domains: DomainArgs {
            public_ipv4: Some("127.0.0.1".parse().unwrap()),
            dmarc_quarantine_after_days: Some(0),
            ..Default::default()
        },
        acme: AcmeArgs {
            certificates: Some("acme".into()),
            acme_directory_url: Some(pebble.directory_url()),
            acme_email: Some("ops@example.com".into()),
            acme_ca_file: Some(pebble.https_root()),
            acme_http_listen: Some(([127, 0, 0, 1], http_port).into()),
        },
        reload: Some(reloads.clone()),
        ..Default::default()
    }
}

impl Ca {
    async fn bundles(&self) -> Value {
        let (status, body) = self.w.app.get("/api/v1/certificates", &self.w.admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Runs due jobs, then polls until bundle `id` satisfies `done` (a
    /// background worker may be the one running the order).
    async fn until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.w.app.scheduler.run_due().await.unwrap();
        let deadline = Instant::now() + SOON;
        loop {
            let all = self.bundles().await;
            let b = all["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["id"] == id);
            if let Some(b) = b.filter(|b| done(b)) {
                return b.clone();
            }
            assert!(
                Instant::now() < deadline,
                "bundle {id} never got there: {all:#}\npebble: {}",
                self.pebble.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The reload calls, once there are `n` (the hook is called after the
    /// bundle is stored, so a background worker may still be on its way).
    async fn reloaded(&self, n: usize) -> Vec<Vec<String>> {
        told(&self.reloads, &self.w.app.scheduler, n).await
    }

    /// The chain installed for `host`, checked against pebble's issuing
    /// root as a TLS client would check it.
    async fn verified_chain(&self, host: &str) -> String {
        installed_chain(
            self.w.app.dir.path(),
            host,
            &self.pebble.issuing_root().await,
        )
    }

    /// When the one queued `acme.issue` job runs, as SQLite holds it
    /// (polled: the failed attempt is recorded after the bundle).
    async fn queued_issue(&self) -> DateTime<Utc> {
        let path = inboxgrove::store::Store::path_in(self.w.app.dir.path());
        let conn = rusqlite::Connection::open(path).unwrap();
        let deadline = Instant::now() + SOON;
        loop {
            let queued: Vec<(DateTime<Utc>, i64)> = conn
                .prepare("SELECT run_at, attempts FROM jobs WHERE kind = 'acme.issue' AND state = 'queued'")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            if let [(run_at, 1)] = queued[..] {
                return run_at;
            }
            assert!(Instant::now() < deadline, "no retry queued: {queued:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The reload calls once there are `n`, running due jobs meanwhile.
async fn told(reloads: &Recorder, scheduler: &Scheduler, n: usize) -> Vec<Vec<String>> {
    let deadline = Instant::now() + SOON;
    while reloads.calls().len() < n {
        scheduler.run_due().await.unwrap();
        assert!(Instant::now() < deadline, "{:?}", reloads.calls());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reloads.calls()
}

/// The chain `<data_dir>/certs` holds for `host`, verified under
/// `root_pem`, its key readable by the owner and group only.
fn installed_chain(data_dir: &std::path::Path, host: &str, root_pem: &str) -> String {
    let tls_dir = data_dir.join("certs");
    let manifest = Manifest::load(&tls_dir).unwrap();
    let bundle = manifest.for_host(host).expect("a bundle covers the host");
    let chain = std::fs::read_to_string(bundle.chain_path(&tls_dir)).unwrap();
    verify(&chain, root_pem, host);
    let key = bundle.key_path(&tls_dir);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    chain
}

/// Verifies `chain_pem` (leaf first) for `host` under `root_pem`.
fn verify(chain_pem: &str, root_pem: &str, host: &str) {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let der = |text: &str| -> Vec<CertificateDer<'static>> {
        pem::parse_many(text)
            .unwrap()
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| CertificateDer::from(p.into_contents()))
            .collect()
    };
    let chain = der(chain_pem);
    let mut roots = rustls::RootCertStore::empty();
    for root in der(root_pem) {
        roots.add(root).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(host.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .unwrap_or_else(|e| panic!("{host}: {e}"));
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn http01_issues_a_manual_domain_renews_on_time_and_on_request() {
    let ca = ca_world().await;
    let id = manual_domain_with_records(&ca.w, "hand.test").await;
    assert_eq!(ca.w.verify(&id).await["status"], "active");
    ca.w.app.scheduler.run_due().await.unwrap();
    assert!(ca.reloads.calls().is_empty(), "debounced: nothing yet");

    ca.clock.advance(PAST_DEBOUNCE);
    let first = ca.until("mail-1", |b| b["status"] == "valid").await;
    assert_eq!(first["names"], json!(["mail.hand.test"]));
    assert_eq!(first["last_error"], Value::Null);
    let chain = ca.verified_chain("mail.hand.test").await;
    assert_eq!(ca.reloaded(1).await, [["mail-1"]]);
    let not_after = at(&first["not_after"]);
    let renew_after = at(&first["renew_after"]);
    let before = not_after - renew_after;
    assert!(
        before >= chrono::Duration::days(30)
            && before <= chrono::Duration::days(30) + chrono::Duration::hours(12),
        "renewal {before} before expiry"
    );
    // The token was withdrawn; nothing else is served.
    let responder = format!("http://127.0.0.1:{}", ca.http_port);
    for path in ["/.well-known/acme-challenge/unknown-token", "/"] {
        let res = reqwest::get(format!("{responder}{path}")).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Just before its time nothing is renewed; half a day after it (the
    // check runs every 12 h), the certificate is new and reloaded.
    ca.clock
        .advance(renew_after - ca.clock.now() - chrono::Duration::minutes(1));
    let same = ca.until("mail-1", |_| true).await;
    assert_eq!(same["serial"], first["serial"]);
    ca.clock.advance(chrono::Duration::hours(12));
    let renewed = ca.until("mail-1", |b| b["serial"] != first["serial"]).await;
    assert_eq!(renewed["status"], "valid");
    assert!(at(&renewed["renew_after"]) > ca.clock.now());
    assert_ne!(ca.verified_chain("mail.hand.test").await, chain);
    assert_eq!(ca.reloaded(2).await, [["mail-1"], ["mail-1"]]);

    let (status, body) =
        ca.w.app
            .post("/api/v1/certificates/renew", json!({}), Some(&ca.w.admin))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let forced = ca
        .until("mail-1", |b| b["serial"] != renewed["serial"])
        .await;
    assert_eq!(forced["status"], "valid");
    assert_eq!(ca.reloaded(3).await.len(), 3);
}

#[tokio::test]
async fn dns01_through_cloudflare_and_one_order_for_domains_activated_together() {
    let ca = ca_world().await;
    let before = ca.w.cloudflare.batch_calls();
    let mut ids = Vec::new();
    for name in ["cf-one.test", "cf-two.test"] {
        ca.w.zones.add_zone(name);
        let (status, added) =
            ca.w.add(json!({ "domain_name": name, "cloudflare_api_token": TOKEN }))
                .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{added}");
        ids.push(added["domain_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        ca.w.until_status(id, "active", SOON).await;
    }
    let manual = manual_domain_with_records(&ca.w, "by-hand.test").await;
    assert_eq!(ca.w.verify(&manual).await["status"], "active");
    let published = ca.w.cloudflare.batch_calls() - before;

    ca.clock.advance(PAST_DEBOUNCE);
    let b = ca.until("mail-1", |b| b["status"] == "valid").await;
    assert_eq!(
        b["names"],
        json!(["mail.by-hand.test", "mail.cf-one.test", "mail.cf-two.test"])
    );
    assert_eq!(
        ca.reloaded(1).await,
        [["mail-1"]],
        "one order, one certificate"
    );
    for host in ["mail.cf-one.test", "mail.cf-two.test", "mail.by-hand.test"] {
        ca.verified_chain(host).await;
    }
    // Each Cloudflare name: its TXT posted, then deleted, one batch each.
    let challenge_batches = ca.w.cloudflare.batch_calls() - before - published;
    assert_eq!(challenge_batches, 4);
    for zone in ["cf-one.test", "cf-two.test"] {
        let left: Vec<_> =
            ca.w.zones
                .records(zone)
                .into_iter()
                .filter(|r| r.name.starts_with("_acme-challenge."))
                .collect();
        assert!(left.is_empty(), "{zone}: {left:?}");
    }
}

#[tokio::test]
async fn a_refused_order_keeps_the_old_certificate_and_is_retried() {
    let ca = ca_world().await;
    let good = manual_domain_with_records(&ca.w, "good.test").await;
    ca.w.verify(&good).await;
    ca.clock.advance(PAST_DEBOUNCE);
    let first = ca.until("mail-1", |b| b["status"] == "valid").await;
    let chain = ca.verified_chain("mail.good.test").await;
    ca.reloaded(1).await;

    // A second domain goes active, then its mail host stops resolving:
    // the CA cannot reach it for HTTP-01.
    let lost = manual_domain_with_records(&ca.w, "lost.test").await;
    ca.w.verify(&lost).await;
    let a =
        ca.w.zones
            .records("lost.test")
            .into_iter()
            .find(|r| r.record_type == "A" && r.name == "mail.lost.test")
            .unwrap();
    ca.w.zones.remove_record(&a.id);
    ca.clock.advance(PAST_DEBOUNCE);
    let failed = ca.until("mail-1", |b| b["status"] == "failed").await;
    let why = failed["last_error"].as_str().unwrap();
    assert!(why.contains("mail.lost.test"), "{why}");
    assert_eq!(failed["serial"], first["serial"]);
    assert_eq!(failed["not_after"], first["not_after"]);
    assert_eq!(
        ca.verified_chain("mail.good.test").await,
        chain,
        "old one in place"
    );
    assert_eq!(ca.reloads.calls().len(), 1);
    let retry = ca.queued_issue().await;
    assert!(retry > ca.clock.now(), "retried later, with backoff");

    // DNS is mended; the retry issues for both names.
    ca.w.zones
        .add_record("lost.test", "A", "mail.lost.test", "127.0.0.1", None);
    ca.clock
        .advance(retry - ca.clock.now() + chrono::Duration::seconds(1));
    let mended = ca.until("mail-1", |b| b["status"] == "valid").await;
    assert_eq!(mended["names"], json!(["mail.good.test", "mail.lost.test"]));
    assert_ne!(mended["serial"], first["serial"]);
    ca.verified_chain("mail.lost.test").await;
}

#[tokio::test]
async fn without_acme_certificates_are_self_signed_and_none_is_renewed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, body) = app.get("/api/v1/certificates", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["certificates"], "self-signed");
    assert_eq!(body["items"], json!([]));
    let (status, body) = app
        .post("/api/v1/certificates/renew", json!({}), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "certificates_self_signed");
}

#[tokio::test]
async fn the_admin_host_is_proven_through_the_server_token() {
    let ca = ca_world_at(Some("https://admin.ops.test")).await;
    ca.w.zones.add_zone("ops.test");
    // At start there is no server token: HTTP-01, and admin.ops.test does
    // not resolve, so the first order fails.
    let failed = ca.until("admin", |b| b["status"] == "failed").await;
    assert_eq!(failed["names"], json!(["admin.ops.test"]));
    let (status, body) =
        ca.w.app
            .call(
                reqwest::Method::PATCH,
                "/api/v1/settings",
                Some(json!({ "cloudflare_api_token": TOKEN })),
                Some(&ca.w.admin),
            )
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) =
        ca.w.app
            .post("/api/v1/certificates/renew", json!({}), Some(&ca.w.admin))
            .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let valid = ca.until("admin", |b| b["status"] == "valid").await;
    assert_eq!(valid["last_error"], Value::Null);
    ca.verified_chain("admin.ops.test").await;
    let left: Vec<_> = ca.w.zones.records("ops.test");
    assert!(
        left.is_empty(),
        "the challenge record was removed: {left:?}"
    );
}

#[tokio::test]
async fn a_restored_data_dir_writes_its_certificates_into_tls_dir_again() {
    let Ca {
        w,
        pebble,
        clock,
        http_port,
        ..
    } = ca_world().await;
    let id = manual_domain_with_records(&w, "kept.test").await;
    w.verify(&id).await;
    clock.advance(PAST_DEBOUNCE);
    w.app.scheduler.run_due().await.unwrap();
    let root = pebble.issuing_root().await;
    let deadline = Instant::now() + SOON;
    while Manifest::load(&w.app.dir.path().join("certs"))
        .unwrap()
        .for_host("mail.kept.test")
        .is_none()
    {
        assert!(Instant::now() < deadline, "never issued: {}", pebble.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let chain = installed_chain(w.app.dir.path(), "mail.kept.test", &root);

    // The backup's tls_dir lost its files and its manifest is damaged (a
    // packaged tls_dir lives outside the data dir and its backup).
    let w_admin = w.admin.clone();
    let dir = w.app.stop().await;
    std::fs::remove_dir_all(dir.path().join("certs/live")).unwrap();
    std::fs::write(dir.path().join("certs/certificates.json"), "{").unwrap();
    let reloads = Arc::new(Recorder::default());
    reloads.fail_next();
    let app = spawn_app_in(dir, ca_options(&pebble, http_port, &clock, &reloads)).await;
    assert_eq!(
        installed_chain(app.dir.path(), "mail.kept.test", &root),
        chain,
        "the same certificate, from the database"
    );
    // The services are told; the first time they refuse, and the run is
    // tried again until they take it.
    told(&reloads, &app.scheduler, 1).await;
    clock.advance(chrono::Duration::minutes(2));
    told(&reloads, &app.scheduler, 2).await;
    assert_eq!(reloads.calls(), [["mail-1"], ["mail-1"]]);
    let (status, body) = app.get("/api/v1/certificates", &w_admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["status"], "valid", "{body}");
}

#[tokio::test]
async fn fifty_domains_activated_in_bulk_make_one_order() {
    let ca = ca_world().await;
    for i in 0..50 {
        let id = manual_domain_with_records(&ca.w, &format!("bulk{i:02}.test")).await;
        assert_eq!(ca.w.verify(&id).await["status"], "active");
    }
    ca.clock.advance(PAST_DEBOUNCE);
    let b = ca.until("mail-1", |b| b["status"] == "valid").await;
    assert_eq!(b["names"].as_array().unwrap().len(), 50);
    assert_eq!(ca.reloaded(1).await, [["mail-1"]], "one certificate");
    ca.verified_chain("mail.bulk49.test").await;
}
