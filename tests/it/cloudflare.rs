//! `CloudflareProvider` against the local Cloudflare double: token checks,
//! zones, paged listing, all-or-nothing batches, error mapping, retries,
//! and TXT content surviving the round trip.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inboxgrove::domains::cloudflare::{CloudflareLimiter, CloudflareProvider};
use inboxgrove::domains::name::DomainName;
use inboxgrove::domains::plan::{self, DmarcPolicy, Inputs, RecordType, Server, normalize_txt};
use inboxgrove::domains::provider::{
    ChangeSet, DnsProvider, MANAGED_COMMENT, NewRecord, ProviderError,
};
use inboxgrove::domains::reconcile;
use inboxgrove::remote::RetryPolicy;
use secrecy::SecretString;

use crate::support::cloudflare_double::CloudflareDouble;
use crate::support::zones::Zones;

const TOKEN: &str = "user-token-0000000000000000000001";
const ZONE: &str = "acme.example";
/// The account `Zones::add_zone` puts every zone in.
const ACCOUNT: &str = "acct0000000000000000000000000001";

struct Fixture {
    double: CloudflareDouble,
    zones: Zones,
    zone_id: String,
}

async fn fixture() -> Fixture {
    let zones = Zones::default();
    let zone_id = zones.add_zone(ZONE);
    let double = CloudflareDouble::start(zones.clone()).await;
    double.user_token(TOKEN);
    Fixture {
        double,
        zones,
        zone_id,
    }
}

fn provider_with(
    double: &CloudflareDouble,
    token: &str,
    account: Option<&str>,
) -> CloudflareProvider {
    let n = |v| NonZeroU32::new(v).unwrap();
    CloudflareProvider::new(
        &double.base_url(),
        SecretString::from(token.to_owned()),
        account.map(str::to_owned),
        Arc::new(CloudflareLimiter::new(n(60_000), n(1_000))),
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
        },
    )
    .unwrap()
}

impl Fixture {
    fn provider(&self) -> CloudflareProvider {
        provider_with(&self.double, TOKEN, None)
    }

    fn list_path(&self) -> String {
        format!("GET /zones/{}/dns_records", self.zone_id)
    }
}

fn rec(t: RecordType, name: &str, content: &str, priority: Option<u16>) -> NewRecord {
    NewRecord {
        record_type: t,
        name: name.into(),
        content: content.into(),
        priority,
    }
}

fn posts(records: Vec<NewRecord>) -> ChangeSet {
    ChangeSet {
        posts: records,
        ..ChangeSet::default()
    }
}

fn domain() -> DomainName {
    DomainName::parse(ZONE).unwrap()
}

#[tokio::test]
async fn a_user_token_verifies() {
    let f = fixture().await;
    f.provider().verify_token().await.unwrap();
    assert_eq!(f.double.requests(), vec!["GET /user/tokens/verify"]);
}

#[tokio::test]
async fn an_account_token_verifies_at_the_account_endpoint() {
    let f = fixture().await;
    f.double.account_token("cfat_account_token_1", ACCOUNT);

    // Without the account id there is nowhere to fall back to.
    let without = provider_with(&f.double, "cfat_account_token_1", None);
    assert!(matches!(
        without.verify_token().await,
        Err(ProviderError::Unauthorized(_))
    ));

    f.double.clear_requests();
    let with = provider_with(&f.double, "cfat_account_token_1", Some(ACCOUNT));
    with.verify_token().await.unwrap();
    assert_eq!(
        f.double.requests(),
        vec![
            "GET /user/tokens/verify".to_owned(),
            format!("GET /accounts/{ACCOUNT}/tokens/verify"),
        ]
    );
    // The account token sees its account's zones.
    assert_eq!(with.find_zone(&domain()).await.unwrap().id, f.zone_id);
}

#[tokio::test]
async fn a_bad_token_is_refused_with_what_to_do_and_without_echoing_it() {
    let f = fixture().await;
    let secret = "not-a-real-token-123456";
    let p = provider_with(&f.double, secret, Some(ACCOUNT));
    let err = p.verify_token().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Create a token with Zone:Read and DNS:Edit"),
        "{text}"
    );
    assert!(!text.contains(secret) && !format!("{p:?}").contains(secret));

    // Other endpoints answer 403 code 9109, which is still Unauthorized.
    let err = p.find_zone(&domain()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");

    f.double.inactive_token("expired-token-1", "expired");
    let err = provider_with(&f.double, "expired-token-1", None)
        .verify_token()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("token is expired"), "{err}");
}

#[tokio::test]
async fn a_token_without_dns_edit_names_the_missing_permission() {
    let f = fixture().await;
    f.double.read_only_token("read-only-token-1");
    let p = provider_with(&f.double, "read-only-token-1", None);
    p.verify_token().await.unwrap();
    p.find_zone(&domain()).await.unwrap();
    p.list_records(&f.zone_id).await.unwrap();
    let changes = posts(vec![rec(
        RecordType::A,
        "mail.acme.example",
        "203.0.113.7",
        None,
    )]);
    let err = p.apply(&f.zone_id, &changes).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::MissingPermission {
                permission: "DNS:Edit",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("'DNS:Edit'"), "{err}");
    assert!(f.zones.records(ZONE).is_empty());
}

#[tokio::test]
async fn zones_are_found_by_name_and_id() {
    let f = fixture().await;
    let p = f.provider();
    let zone = p.find_zone(&domain()).await.unwrap();
    assert_eq!(zone.id, f.zone_id);
    assert_eq!(zone.name, ZONE);
    assert_eq!(zone.status, "active");
    assert_eq!(zone.name_servers, vec!["ada.ns.test", "bob.ns.test"]);
    assert_eq!(p.zone(&f.zone_id).await.unwrap(), zone);

    let other = DomainName::parse("other.example").unwrap();
    assert_eq!(
        p.find_zone(&other).await,
        Err(ProviderError::ZoneNotFound("other.example".into()))
    );
    assert_eq!(
        p.zone("0123456789abcdef").await,
        Err(ProviderError::ZoneNotFound("0123456789abcdef".into()))
    );
}

#[tokio::test]
async fn the_zone_found_by_name_is_the_closest_enclosing_one() {
    let f = fixture().await;
    let child = f.zones.add_zone("a.acme.example");
    let p = f.provider();
    let deep = DomainName::parse("mail.a.acme.example").unwrap();
    assert_eq!(p.find_zone(&deep).await.unwrap().id, child);
    let beside = DomainName::parse("mail.b.acme.example").unwrap();
    assert_eq!(p.find_zone(&beside).await.unwrap().id, f.zone_id);
    // One exact look-up per name, closest first, none above the zone.
    let asked = f.double.requests();
    assert_eq!(asked.len(), 2 + 3, "{asked:?}");
    assert!(asked.iter().all(|r| r == "GET /zones"), "{asked:?}");
}

#[tokio::test]
async fn every_record_lists_whatever_its_type_over_several_pages() {
    let f = fixture().await;
    f.zones
        .add_record(ZONE, "CAA", ZONE, "0 issue \"letsencrypt.org\"", None);
    f.zones
        .add_record(ZONE, "HTTPS", ZONE, "1 . alpn=\"h2\"", None);
    f.zones.add_record(
        ZONE,
        "TXT",
        ZONE,
        "\"google-site-verification=abc123\"",
        None,
    );
    f.zones
        .add_record(ZONE, "MX", ZONE, "aspmx.l.google.com", Some(1));
    for i in 0..230 {
        f.zones.add_record(
            ZONE,
            "A",
            &format!("h{i}.acme.example"),
            "198.51.100.1",
            None,
        );
    }
    let records = f.provider().list_records(&f.zone_id).await.unwrap();
    assert_eq!(records.len(), 234);
    assert_eq!(f.double.count(&f.list_path()), 3, "100 a page");
    let by_type = |t: &str| records.iter().filter(|r| r.record_type == t).count();
    assert_eq!(
        [
            by_type("CAA"),
            by_type("HTTPS"),
            by_type("TXT"),
            by_type("A")
        ],
        [1, 1, 1, 230]
    );
    let mx = records.iter().find(|r| r.record_type == "MX").unwrap();
    assert_eq!((mx.name.as_str(), mx.priority), (ZONE, Some(1)));
    let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 234, "no record listed twice");
}

#[tokio::test]
async fn a_change_set_applies_in_one_batch_and_reads_back() {
    let f = fixture().await;
    let host = f
        .zones
        .add_record(ZONE, "A", "mail.acme.example", "198.51.100.9", None);
    let dmarc = f.zones.add_record(
        ZONE,
        "TXT",
        "_dmarc.acme.example",
        "\"v=DMARC1; p=reject\"",
        None,
    );
    f.zones
        .add_record(ZONE, "TXT", ZONE, "\"google-site-verification=abc\"", None);
    let p = f.provider();

    p.apply(&f.zone_id, &ChangeSet::default()).await.unwrap();
    assert_eq!(
        f.double.batch_calls(),
        0,
        "an empty change set sends nothing"
    );

    let changes = ChangeSet {
        deletes: vec![dmarc.clone()],
        patches: vec![(
            host.clone(),
            rec(RecordType::A, "mail.acme.example", "203.0.113.7", None),
        )],
        posts: vec![
            rec(RecordType::MX, ZONE, "mail.acme.example", Some(10)),
            rec(RecordType::TXT, ZONE, "v=spf1 ip4:203.0.113.7 -all", None),
        ],
    };
    p.apply(&f.zone_id, &changes).await.unwrap();
    assert_eq!(f.double.batch_calls(), 1);

    let records = p.list_records(&f.zone_id).await.unwrap();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.id != dmarc));
    let a = records.iter().find(|r| r.id == host).unwrap();
    assert_eq!(a.content, "203.0.113.7");
    let mx = records.iter().find(|r| r.record_type == "MX").unwrap();
    assert_eq!(
        (mx.content.as_str(), mx.priority, mx.comment.as_deref()),
        ("mail.acme.example", Some(10), Some(MANAGED_COMMENT))
    );
    let spf = records.iter().find(|r| r.content.contains("spf1")).unwrap();
    assert_eq!(spf.content, "\"v=spf1 ip4:203.0.113.7 -all\"");
    assert!(records.iter().any(|r| r.content.contains("google-site")));
    assert!(
        f.zones
            .records(ZONE)
            .iter()
            .all(|r| !r.proxied && r.ttl == 1),
        "mail records are DNS-only with automatic TTL"
    );
}

#[tokio::test]
async fn a_failing_item_leaves_the_zone_unchanged() {
    let f = fixture().await;
    let old = f
        .zones
        .add_record(ZONE, "A", "www.acme.example", "198.51.100.1", None);
    let before = f.zones.records(ZONE);
    let changes = ChangeSet {
        deletes: vec![old],
        patches: vec![(
            "0000000000000000000000000000dead".into(),
            rec(RecordType::A, "mail.acme.example", "203.0.113.7", None),
        )],
        posts: vec![rec(RecordType::TXT, ZONE, "v=spf1 -all", None)],
    };
    let err = f.provider().apply(&f.zone_id, &changes).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { code: 81044, .. }),
        "{err:?}"
    );
    assert_eq!(f.zones.records(ZONE), before);
}

#[tokio::test]
async fn a_duplicate_surfaces_as_code_81057() {
    let f = fixture().await;
    f.zones
        .add_record(ZONE, "TXT", ZONE, "\"v=spf1 -all\"", None);
    let changes = posts(vec![rec(RecordType::TXT, ZONE, "v=spf1 -all", None)]);
    let err = f.provider().apply(&f.zone_id, &changes).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Rejected {
            code: 81057,
            message: "Record already exists.".into()
        }
    );
    assert_eq!(f.double.batch_calls(), 1, "a rejection is not retried");
}

#[tokio::test]
async fn more_than_200_items_go_in_several_batches() {
    let f = fixture().await;
    let many: Vec<NewRecord> = (0..450)
        .map(|i| {
            rec(
                RecordType::A,
                &format!("h{i}.acme.example"),
                "203.0.113.7",
                None,
            )
        })
        .collect();
    f.provider().apply(&f.zone_id, &posts(many)).await.unwrap();
    assert_eq!(f.double.batch_calls(), 3);
    assert_eq!(f.zones.records(ZONE).len(), 450);
}

#[tokio::test]
async fn transient_failures_are_retried_then_returned() {
    let f = fixture().await;
    let p = f.provider();
    f.double.fail_next(2, 503);
    p.zone(&f.zone_id).await.unwrap();
    assert_eq!(f.double.count(&format!("GET /zones/{}", f.zone_id)), 3);

    f.double.clear_requests();
    f.double.fail_next(10, 502);
    let err = p.zone(&f.zone_id).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(f.double.requests().len(), 4, "the policy's 4 attempts");
}

#[tokio::test]
async fn a_429_waits_for_retry_after_when_it_fits_the_policy() {
    let f = fixture().await;
    let p = f.provider();
    f.double.rate_limit_next(1);
    let started = Instant::now();
    p.list_records(&f.zone_id).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(f.double.count(&f.list_path()), 2);

    // Longer than the policy's 1 s maximum: handed back to the caller.
    f.double.clear_requests();
    f.double.rate_limit_next(120);
    let err = p.list_records(&f.zone_id).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited(Duration::from_secs(120)));
    assert_eq!(f.double.requests().len(), 1);

    // No Retry-After: Cloudflare blocks for 5 minutes.
    f.double.rate_limit_next_without_retry_after();
    let err = p.list_records(&f.zone_id).await.unwrap_err();
    assert_eq!(err, ProviderError::RateLimited(Duration::from_secs(300)));
}

#[tokio::test]
async fn added_latency_applies_to_every_call() {
    let f = fixture().await;
    f.double.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    f.provider().verify_token().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
}

fn dkim_b64(len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|i| alphabet[(i * 7 + 3) % alphabet.len()] as char)
        .collect()
}

#[tokio::test]
async fn a_long_dkim_value_round_trips() {
    let f = fixture().await;
    let value = format!("v=DKIM1; k=rsa; p={}", dkim_b64(392));
    assert_eq!(value.len(), 410);
    let name = "ig202611._domainkey.acme.example";
    let tricky = r#"note "quoted" \ backslash"#;
    let changes = posts(vec![
        rec(RecordType::TXT, name, &value, None),
        rec(RecordType::TXT, "note.acme.example", tricky, None),
    ]);
    let p = f.provider();
    p.apply(&f.zone_id, &changes).await.unwrap();

    // Cloudflare splits it into 255-byte strings itself.
    let stored = f.zones.records(ZONE);
    let dkim = stored.iter().find(|r| r.name == name).unwrap();
    assert!(dkim.content.starts_with("\"v=DKIM1") && dkim.content.contains("\" \""));

    let listed = p.list_records(&f.zone_id).await.unwrap();
    let txt = |n: &str| listed.iter().find(|r| r.name == n).unwrap();
    assert_eq!(normalize_txt(&txt(name).content), value);
    assert_eq!(normalize_txt(&txt("note.acme.example").content), tricky);
}

/// Publishing as the orchestrator will: list, diff, apply.
async fn publish(p: &CloudflareProvider, zone_id: &str, planned: &[plan::PlannedRecord]) {
    let existing = p.list_records(zone_id).await.unwrap();
    p.apply(zone_id, &reconcile::diff(planned, &existing))
        .await
        .unwrap();
}

#[tokio::test]
async fn publishing_twice_sends_no_second_batch() {
    let f = fixture().await;
    f.zones.add_record(
        ZONE,
        "TXT",
        ZONE,
        "\"v=spf1 include:_spf.google.com ~all\"",
        None,
    );
    let server = Server {
        ipv4: "203.0.113.7".parse().unwrap(),
        ipv6: Some("2001:db8::7".parse().unwrap()),
        mail_host_pattern: "mail.{domain}".into(),
        tracking_target: None,
    };
    let d = domain();
    let key = dkim_b64(392);
    let planned = plan::plan(
        &server,
        &Inputs {
            domain: &d,
            selector: "ig202611",
            dkim_public_b64: &key,
            dmarc: DmarcPolicy::None,
            tracking_domain: None,
        },
    );
    let p = f.provider();
    publish(&p, &f.zone_id, &planned).await;
    assert_eq!(f.double.batch_calls(), 1);
    publish(&p, &f.zone_id, &planned).await;
    assert_eq!(
        f.double.batch_calls(),
        1,
        "the second publish changes nothing"
    );

    let spf: Vec<String> = f
        .zones
        .records(ZONE)
        .iter()
        .filter(|r| r.name == ZONE && r.record_type == "TXT")
        .map(|r| normalize_txt(&r.content))
        .collect();
    assert_eq!(
        spf,
        vec!["v=spf1 include:_spf.google.com ip4:203.0.113.7 ip6:2001:db8::7 ~all"]
    );
}

#[tokio::test]
async fn the_double_speaks_the_cloudflare_envelope() {
    let f = fixture().await;
    let http = reqwest::Client::new();
    let base = f.double.base_url();
    let call = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json::<serde_json::Value>().await.unwrap(),
        )
    };

    let (status, body) = call(http.get(format!("{base}/nowhere")).bearer_auth(TOKEN)).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_u64()),
        (404, Some(7000))
    );
    assert_eq!(body["success"], false);

    let (status, body) = call(
        http.get(format!("{base}/zones"))
            .header("Authorization", TOKEN),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_u64()),
        (400, Some(6003))
    );
    assert_eq!(body["errors"][0]["error_chain"][0]["code"], 6111);

    let (status, body) = call(
        http.get(format!("{base}/zones?name={ZONE}"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"][0]["id"], f.zone_id.as_str());
    assert_eq!(body["result_info"]["total_count"], 1);

    // Single create: bare TXT content is stored quoted; no result_info.
    let create = http
        .post(format!("{base}/zones/{}/dns_records", f.zone_id))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"type": "TXT", "name": "@", "content": "hello", "ttl": 1}));
    let (status, body) = call(create).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"], "\"hello\"");
    assert_eq!(body["result"]["name"], ZONE);
    assert!(body.get("result_info").is_none());
}
