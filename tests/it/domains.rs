//! The domain orchestrator end to end: the API, the jobs, the Cloudflare
//! double and a real DNS server on loopback, all serving the same zones.

mod egress;
pub(crate) mod lifecycle;
mod ownership;
mod stored_key;

use std::sync::Arc;
use std::time::{Duration, Instant};

use inboxgrove::config::{DnsServers, DomainArgs};
use inboxgrove::domains::cloudflare::CloudflareLimiter;
use inboxgrove::domains::service::CloudflareFactory;
use inboxgrove::remote::RetryPolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::cloudflare_double::CloudflareDouble;
use crate::support::dns_server::DnsServer;
use crate::support::zones::Zones;

pub const IPV4: &str = "203.0.113.7";
pub const TOKEN: &str = "cf-test-token-0123456789";

pub struct World {
    pub zones: Zones,
    pub cloudflare: CloudflareDouble,
    pub dns: DnsServer,
    pub app: TestApp,
    pub admin: String,
}

/// Retries that wait milliseconds, so fault tests stay fast.
pub fn quick_retries(base_url: String) -> Arc<CloudflareFactory> {
    Arc::new(CloudflareFactory {
        base_url,
        limiter: Arc::new(CloudflareLimiter::default()),
        retry: RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            max: Duration::from_millis(50),
        },
    })
}

pub async fn world_with(
    public_ip: Option<&str>,
    clock: Option<Arc<inboxgrove::clock::ManualClock>>,
) -> World {
    world_around(Options {
        clock,
        domains: DomainArgs {
            public_ipv4: public_ip.map(|ip| ip.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
}

/// A world on `opts`, with Cloudflare and DNS pointed at the doubles.
pub async fn world_around(opts: Options) -> World {
    let zones = Zones::default();
    let dns = DnsServer::start(zones.clone()).await;
    world_on(zones, dns, opts).await
}

/// As [`world_around`], on a DNS server already serving `zones` (one that
/// another test server, such as the ACME CA, also asks).
pub async fn world_on(zones: Zones, dns: DnsServer, mut opts: Options) -> World {
    let cloudflare = CloudflareDouble::start(zones.clone()).await;
    cloudflare.user_token(TOKEN);
    point_at_doubles(&mut opts, &cloudflare, &dns);
    let app = spawn_app_with(opts).await;
    // An API token: it outlives the access tokens when a test moves the
    // clock by days.
    let session = app.admin_token().await;
    let (_, created) = app
        .post(
            "/api/v1/tokens",
            json!({ "name": "domains tests" }),
            Some(&session),
        )
        .await;
    let admin = created["token"].as_str().unwrap().to_owned();
    World {
        zones,
        cloudflare,
        dns,
        app,
        admin,
    }
}

fn point_at_doubles(opts: &mut Options, cloudflare: &CloudflareDouble, dns: &DnsServer) {
    opts.domains.cloudflare_api_url = Some(cloudflare.base_url());
    opts.domains.dns_servers = Some(DnsServers(vec![dns.addr()]));
    opts.providers = Some(quick_retries(cloudflare.base_url()));
}

/// The options [`world_on`] gives its app, for a restart on the same
/// doubles.
pub fn options_for(w: &World) -> Options {
    let mut opts = Options::default();
    point_at_doubles(&mut opts, &w.cloudflare, &w.dns);
    opts
}

pub async fn world() -> World {
    world_with(Some(IPV4), None).await
}

impl World {
    pub async fn add(&self, body: Value) -> (StatusCode, Value) {
        self.app
            .post("/api/v1/domains/add", body, Some(&self.admin))
            .await
    }

    /// `POST /domains/{id}/verify` as the admin; the view it answers with.
    pub async fn verify(&self, id: &str) -> Value {
        let path = format!("/api/v1/domains/{id}/verify");
        let (status, body) = self.app.post(&path, json!({}), Some(&self.admin)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `PATCH /domains/{id}` as the admin.
    pub async fn patch(&self, id: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/v1/domains/{id}");
        self.app
            .call(Method::PATCH, &path, Some(body), Some(&self.admin))
            .await
    }

    pub async fn domain(&self, id: &str) -> Value {
        let (status, body) = self
            .app
            .get(&format!("/api/v1/domains/{id}"), &self.admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Polls until the domain reaches `status` (the workers run in the
    /// background); panics with the last view after `within`.
    pub async fn until_status(&self, id: &str, status: &str, within: Duration) -> Value {
        self.until(id, within, |d| d["status"] == status).await
    }

    /// Polls until `done` holds for the domain's view.
    pub async fn until(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let d = self.domain(id).await;
            if done(&d) {
                return d;
            }
            assert!(Instant::now() < deadline, "condition never held: {d:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn record_states(view: &Value) -> Vec<(String, String)> {
    view["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cloudflare_domain_is_published_reconciled_and_verified() {
    let w = world().await;
    w.zones.add_zone("acme.test");
    w.zones.add_record(
        "acme.test",
        "CAA",
        "acme.test",
        "0 issue \"letsencrypt.org\"",
        None,
    );
    w.zones
        .add_record("acme.test", "HTTPS", "acme.test", "1 . alpn=h2", None);
    let verification = w.zones.add_record(
        "acme.test",
        "TXT",
        "acme.test",
        "\"google-site-verification=keep-me\"",
        None,
    );
    w.zones.add_record(
        "acme.test",
        "TXT",
        "acme.test",
        "\"v=spf1 include:_spf.google.com ~all\"",
        None,
    );

    let (status, added) = w
        .add(json!({ "domain_name": "Acme.TEST.", "cloudflare_api_token": TOKEN, "dmarc_policy": "none" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["domain_name"], "acme.test");
    assert_eq!(added["propagation_status"], "checking");
    assert!(
        added["dns_records"]["dkim_selector"]
            .as_str()
            .unwrap()
            .starts_with("ig")
    );
    assert!(
        added["dns_records"]["dkim_public_key"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=rsa; p=")
    );
    assert_eq!(
        added["dns_records"]["spf"],
        format!("v=spf1 ip4:{IPV4} -all")
    );
    assert_eq!(
        added["dns_records"]["dmarc"],
        "v=DMARC1; p=none; rua=mailto:dmarc-reports@acme.test"
    );
    assert!(added["estimated_ready_time"].is_string());
    let id = added["domain_id"].as_str().unwrap().to_owned();

    let active = w.until_status(&id, "active", Duration::from_secs(20)).await;
    for (name, state) in record_states(&active) {
        assert_eq!(state, "verified", "{name}");
    }
    assert_eq!(
        active["zone_name_servers"],
        json!(["ada.ns.test", "bob.ns.test"])
    );

    // The zone: foreign records kept, one SPF record with both senders.
    let records = w.zones.records("acme.test");
    assert!(records.iter().any(|r| r.id == verification));
    assert!(
        records.iter().any(|r| r.record_type == "CAA")
            && records.iter().any(|r| r.record_type == "HTTPS")
    );
    let spf: Vec<_> = records
        .iter()
        .filter(|r| r.record_type == "TXT" && r.content.contains("v=spf1"))
        .collect();
    assert_eq!(spf.len(), 1, "{spf:?}");
    assert!(spf[0].content.contains("include:_spf.google.com") && spf[0].content.contains(IPV4));
    assert!(records.iter().all(|r| !r.proxied));
    assert_eq!(w.cloudflare.batch_calls(), 1);

    // Publishing again (a PATCH that changes nothing re-runs it) sends no
    // second change.
    let (status, _) = w.patch(&id, json!({ "dmarc_policy": "none" })).await;
    assert_eq!(status, StatusCode::OK);
    w.until_status(&id, "active", Duration::from_secs(20)).await;
    assert_eq!(
        w.cloudflare.batch_calls(),
        1,
        "{:?}",
        w.cloudflare.requests()
    );

    // Status changes are audited.
    let rows = w.app.audit_rows(&w.admin).await;
    let changes: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "domain.status" && r["resource_id"] == id.as_str())
        .map(|r| r["metadata"]["to"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        changes.contains(&"verifying".to_owned()) && changes.contains(&"active".to_owned()),
        "{changes:?}"
    );
}

#[tokio::test]
async fn manual_domain_waits_for_records_made_by_hand() {
    let w = world().await;
    w.zones.add_zone("byhand.test");
    let (status, added) = w.add(json!({ "domain_name": "byhand.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["status"], "awaiting_dns");
    assert_eq!(added["dns_mode"], "manual");
    assert_eq!(added["propagation_status"], "awaiting_dns");
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let wanted = added["records"].as_array().unwrap().clone();
    assert_eq!(wanted.len(), 5, "A, MX, SPF, DKIM, DMARC: {wanted:#?}");

    let checked = w.verify(&id).await;
    assert!(
        record_states(&checked).iter().all(|(_, s)| s == "missing"),
        "{checked:#}"
    );
    assert_eq!(checked["status"], "awaiting_dns");

    // The person creates all but DMARC by hand.
    for r in &wanted {
        let t = r["type"].as_str().unwrap();
        if r["purpose"] == "dmarc" {
            continue;
        }
        let content = match t {
            "TXT" => format!("\"{}\"", r["content"].as_str().unwrap()),
            _ => r["content"].as_str().unwrap().to_owned(),
        };
        let priority = r["priority"].as_u64().map(|p| p as u16);
        w.zones.add_record(
            "byhand.test",
            t,
            r["name"].as_str().unwrap(),
            &content,
            priority,
        );
    }
    let checked = w.verify(&id).await;
    let states = record_states(&checked);
    assert_eq!(
        states.iter().filter(|(_, s)| s == "verified").count(),
        4,
        "{states:?}"
    );
    assert_eq!(checked["status"], "awaiting_dns");

    // A wrong DMARC record is a mismatch, and the answer is shown.
    let dmarc = wanted.iter().find(|r| r["purpose"] == "dmarc").unwrap();
    let wrong = w.zones.add_record(
        "byhand.test",
        "TXT",
        dmarc["name"].as_str().unwrap(),
        "\"v=DMARC1; p=reject\"",
        None,
    );
    let checked = w.verify(&id).await;
    let row = checked["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "dmarc")
        .unwrap()
        .clone();
    assert_eq!(row["status"], "mismatch", "{row}");
    assert_eq!(row["observed"], json!(["v=DMARC1; p=reject"]));

    w.zones.remove_record(&wrong);
    w.zones.add_record(
        "byhand.test",
        "TXT",
        dmarc["name"].as_str().unwrap(),
        &format!("\"{}\"", dmarc["content"].as_str().unwrap()),
        None,
    );
    let checked = w.verify(&id).await;
    assert_eq!(checked["status"], "active", "{checked:#}");
    assert_eq!(
        w.cloudflare.requests(),
        Vec::<String>::new(),
        "manual mode never calls Cloudflare"
    );
}

#[tokio::test]
async fn bad_domain_input_is_refused_and_leaves_nothing() {
    let w = world().await;
    w.cloudflare.read_only_token("read-only-token");
    w.zones.add_zone("taken.test");
    let (status, _) = w.add(json!({ "domain_name": "taken.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let cases = [
        (json!({ "domain_name": "not a domain" }), 422, "domain_name"),
        (json!({ "domain_name": "192.0.2.10" }), 422, "domain_name"),
        (json!({ "domain_name": "*.wild.test" }), 422, "domain_name"),
        (json!({ "domain_name": "localhost" }), 422, "domain_name"),
        (
            json!({ "domain_name": "x.test", "dmarc_policy": "strict" }),
            422,
            "dmarc_policy",
        ),
        (
            json!({ "domain_name": "x.test", "tracking_domain": "track.other.test" }),
            422,
            "tracking_domain",
        ),
        (
            json!({ "domain_name": "x.test", "cloudflare_api_token": "wrong" }),
            422,
            "cloudflare_api_token",
        ),
        (
            json!({ "domain_name": "x.test", "surprise": 1 }),
            422,
            "surprise",
        ),
        (json!({ "domain_name": "TAKEN.test" }), 409, ""),
    ];
    for (body, want, field) in cases {
        let (status, answer) = w.add(body.clone()).await;
        assert_eq!(status.as_u16(), want, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        }
        assert!(
            answer["error"]["message"].as_str().unwrap().len() > 20,
            "{answer}"
        );
    }
    let (_, list) = w.app.get("/api/v1/domains", &w.admin).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only the first domain: {list}"
    );

    let (status, answer) = w
        .add(json!({ "domain_name": "x.test", "cloudflare_api_token": "wrong" }))
        .await;
    assert!(
        !answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong"),
        "{status} {answer}"
    );

    let no_ip = world_with(None, None).await;
    let (status, answer) = no_ip.add(json!({ "domain_name": "x.test" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["code"], "public_ip_missing");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("INBOXGROVE_PUBLIC_IPV4")
    );
}

#[tokio::test]
async fn members_see_only_their_domains_and_removal_is_guarded() {
    let w = world().await;
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    let (_, bob) = w.app.member(&w.admin, "bob@example.com").await;
    let (status, added) = w
        .app
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": "alice.test" }),
            Some(&alice),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = added["domain_id"].as_str().unwrap();
    let path = format!("/api/v1/domains/{id}");
    assert_eq!(w.app.get(&path, &bob).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        w.app.call(Method::DELETE, &path, None, Some(&bob)).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, bobs) = w.app.get("/api/v1/domains", &bob).await;
    assert_eq!(bobs["items"], json!([]));
    assert_eq!(w.app.get(&path, &w.admin).await.0, StatusCode::OK);

    let (status, _) = w.app.call(Method::DELETE, &path, None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(w.app.get(&path, &alice).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_without_dns_edit_fails_fast_and_the_domain_can_be_retried() {
    let w = world().await;
    w.zones.add_zone("readonly.test");
    w.cloudflare.read_only_token("read-only-token");
    let (status, added) = w
        .add(json!({ "domain_name": "readonly.test", "cloudflare_api_token": "read-only-token" }))
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the token itself is valid: {added}"
    );
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let failed = w.until_status(&id, "failed", Duration::from_secs(10)).await;
    let why = failed["last_error"].as_str().unwrap();
    assert!(
        why.contains("DNS:Edit"),
        "names the missing permission: {why}"
    );
    assert!(!why.contains("read-only-token"));
    // Keys and plan are kept.
    assert_eq!(failed["records"].as_array().unwrap().len(), 5);
    assert!(failed["dns_records"]["dkim_public_key"].is_string());

    // The person grants DNS:Edit to the same token and retries.
    w.cloudflare.user_token("read-only-token");
    w.verify(&id).await;
    let active = w.until_status(&id, "active", Duration::from_secs(10)).await;
    assert_eq!(active["last_error"], Value::Null);
}

#[tokio::test]
async fn removing_a_domain_can_take_back_exactly_its_records() {
    let w = world().await;
    w.zones.add_zone("leaving.test");
    let foreign = w.zones.add_record(
        "leaving.test",
        "TXT",
        "leaving.test",
        "\"v=spf1 include:_spf.google.com ~all\"",
        None,
    );
    let (_, added) = w
        .add(json!({ "domain_name": "leaving.test", "cloudflare_api_token": TOKEN }))
        .await;
    let id = added["domain_id"].as_str().unwrap().to_owned();
    w.until_status(&id, "active", Duration::from_secs(10)).await;
    assert_eq!(
        w.zones.records("leaving.test").len(),
        5,
        "4 posted + the merged SPF"
    );

    let (status, _) = w
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/domains/{id}?remove_records=true"),
            None,
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left = w.zones.records("leaving.test");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].id, foreign, "the person's SPF record stays");
    assert_eq!(
        w.app
            .get(&format!("/api/v1/domains/{id}"), &w.admin)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
