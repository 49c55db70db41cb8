//! `DnsChecker` against the loopback server: the plan as DNS serves it.

use std::time::{Duration, Instant};

use inboxgrove::domains::name::DomainName;
use inboxgrove::domains::plan::{
    self, DmarcPolicy, Inputs, PlannedRecord, Purpose, RecordType, Server,
};
use inboxgrove::domains::verify::{DnsChecker, Observation, RecordStatus, VerifyError};

use super::{ZONE, key, quoted, quoted_split, server_with, silent_server};
use crate::support::dns_server::DnsServer;
use crate::support::zones::Zones;

const SELECTOR: &str = "ig202611";

async fn plan_for(domain: &str, ipv6: bool) -> Vec<PlannedRecord> {
    let server = Server {
        ipv4: "203.0.113.7".parse().unwrap(),
        ipv6: ipv6.then(|| "2001:db8::7".parse().unwrap()),
        mail_host_pattern: "mail.{domain}".into(),
        tracking_target: Some("track.inboxgrove.example".into()),
    };
    let domain = DomainName::parse(domain).unwrap();
    let tracking = domain.sub("track");
    plan::plan(
        &server,
        &Inputs {
            domain: &domain,
            selector: SELECTOR,
            dkim_public_b64: &key().await.public_b64,
            dmarc: DmarcPolicy::None,
            tracking_domain: Some(&tracking),
        },
    )
}

/// Writes planned records into the zone as Cloudflare stores them: TXT
/// quoted, a long TXT split into two strings.
fn publish<'p>(zones: &Zones, plan: impl IntoIterator<Item = &'p PlannedRecord>) {
    for p in plan {
        let content = match p.record_type {
            RecordType::TXT if p.content.len() > 255 => quoted_split(&p.content, 255),
            RecordType::TXT => quoted(&p.content),
            _ => p.content.clone(),
        };
        zones.add_record(ZONE, p.record_type.as_str(), &p.name, &content, p.priority);
    }
}

fn except(plan: &[PlannedRecord], purposes: &[Purpose]) -> Vec<PlannedRecord> {
    plan.iter()
        .filter(|p| !purposes.contains(&p.purpose))
        .cloned()
        .collect()
}

async fn check(server: &DnsServer, plan: &[PlannedRecord]) -> Vec<Observation> {
    check_domain(server, ZONE, plan).await.unwrap()
}

async fn check_domain(
    server: &DnsServer,
    domain: &str,
    plan: &[PlannedRecord],
) -> Result<Vec<Observation>, VerifyError> {
    let checker = DnsChecker::new(Some(vec![server.addr()]));
    let out = checker
        .check(&DomainName::parse(domain).unwrap(), plan)
        .await?;
    assert_eq!(out.len(), plan.len(), "one observation per planned record");
    Ok(out)
}

fn seen<'o>(plan: &[PlannedRecord], obs: &'o [Observation], purpose: Purpose) -> &'o Observation {
    let i = plan.iter().position(|p| p.purpose == purpose).unwrap();
    &obs[i]
}

fn statuses(obs: &[Observation]) -> Vec<RecordStatus> {
    obs.iter().map(|o| o.status).collect()
}

#[tokio::test]
async fn a_zone_published_to_plan_verifies() {
    let plan = plan_for(ZONE, true).await;
    assert_eq!(plan.len(), 7);
    let (zones, server) = server_with(&[]).await;
    publish(&zones, &plan);
    let obs = check(&server, &plan).await;
    assert_eq!(statuses(&obs), vec![RecordStatus::Verified; plan.len()]);
    for (purpose, want) in [
        (Purpose::MailHost, "203.0.113.7"),
        (Purpose::MailHostV6, "2001:db8::7"),
        (Purpose::Mx, "10 mail.acme.example"),
        (Purpose::Spf, "v=spf1 ip4:203.0.113.7 ip6:2001:db8::7 -all"),
        (
            Purpose::Dmarc,
            "v=DMARC1; p=none; rua=mailto:dmarc-reports@acme.example",
        ),
        (Purpose::Tracking, "track.inboxgrove.example"),
    ] {
        assert_eq!(seen(&plan, &obs, purpose).answers, [want], "{purpose:?}");
    }
    let dkim = plan.iter().find(|p| p.purpose == Purpose::Dkim).unwrap();
    assert!(dkim.content.len() > 255);
    assert_eq!(
        seen(&plan, &obs, Purpose::Dkim).answers,
        [dkim.content.as_str()],
        "joined, not split"
    );
}

#[tokio::test]
async fn an_empty_zone_is_missing_everything() {
    let plan = plan_for(ZONE, true).await;
    let (_zones, server) = server_with(&[]).await;
    let obs = check(&server, &plan).await;
    assert_eq!(statuses(&obs), vec![RecordStatus::Missing; plan.len()]);
    assert!(obs.iter().all(|o| o.answers.is_empty()));
}

#[tokio::test]
async fn wrong_values_are_mismatches() {
    let plan = plan_for(ZONE, false).await;
    let (zones, server) = server_with(&[
        ("A", "mail.acme.example", "192.0.2.1", None),
        (
            "TXT",
            "_dmarc.acme.example",
            "\"v=DMARC1; p=reject; rua=mailto:dmarc-reports@acme.example\"",
            None,
        ),
        ("MX", ZONE, "mail.acme.example", Some(20)),
    ])
    .await;
    publish(
        &zones,
        &except(&plan, &[Purpose::MailHost, Purpose::Dmarc, Purpose::Mx]),
    );
    let obs = check(&server, &plan).await;
    let a = seen(&plan, &obs, Purpose::MailHost);
    assert_eq!(
        (a.status, a.answers.as_slice()),
        (RecordStatus::Mismatch, &["192.0.2.1".to_owned()][..])
    );
    let dmarc = seen(&plan, &obs, Purpose::Dmarc);
    assert_eq!(dmarc.status, RecordStatus::Mismatch);
    assert!(dmarc.answers[0].contains("p=reject"));
    let mx = seen(&plan, &obs, Purpose::Mx);
    assert_eq!(
        (mx.status, mx.answers.as_slice()),
        (
            RecordStatus::Mismatch,
            &["20 mail.acme.example".to_owned()][..]
        )
    );
    for purpose in [Purpose::Spf, Purpose::Dkim, Purpose::Tracking] {
        assert_eq!(seen(&plan, &obs, purpose).status, RecordStatus::Verified);
    }
}

#[tokio::test]
async fn merged_spf_verifies_and_other_apex_txt_is_ignored() {
    let plan = plan_for(ZONE, false).await;
    let merged = "v=spf1 include:_spf.google.com ip4:203.0.113.7 ~all";
    let (zones, server) = server_with(&[
        ("TXT", ZONE, "\"google-site-verification=abc123\"", None),
        ("TXT", ZONE, &quoted(merged), None),
    ])
    .await;
    publish(&zones, &except(&plan, &[Purpose::Spf]));
    let obs = check(&server, &plan).await;
    assert_eq!(statuses(&obs), vec![RecordStatus::Verified; plan.len()]);
    assert_eq!(seen(&plan, &obs, Purpose::Spf).answers, [merged]);

    // Someone else's SPF without our address is a mismatch, not missing.
    let (zones, server) = server_with(&[
        ("TXT", ZONE, "\"google-site-verification=abc123\"", None),
        ("TXT", ZONE, "\"v=spf1 include:_spf.google.com ~all\"", None),
    ])
    .await;
    publish(&zones, &except(&plan, &[Purpose::Spf]));
    let obs = check(&server, &plan).await;
    assert_eq!(
        seen(&plan, &obs, Purpose::Spf).status,
        RecordStatus::Mismatch
    );
}

#[tokio::test]
async fn changes_between_checks_are_seen() {
    let plan = plan_for(ZONE, false).await;
    let (zones, server) = server_with(&[]).await;
    publish(&zones, &except(&plan, &[Purpose::Dkim]));
    let checker = DnsChecker::new(Some(vec![server.addr()]));
    let domain = DomainName::parse(ZONE).unwrap();

    let first = checker.check(&domain, &plan).await.unwrap();
    assert_eq!(
        seen(&plan, &first, Purpose::Dkim).status,
        RecordStatus::Missing
    );

    publish(&zones, plan.iter().filter(|p| p.purpose == Purpose::Dkim));
    let second = checker.check(&domain, &plan).await.unwrap();
    assert_eq!(statuses(&second), vec![RecordStatus::Verified; plan.len()]);

    let a = zones
        .records(ZONE)
        .into_iter()
        .find(|r| r.record_type == "A")
        .unwrap();
    zones.remove_record(&a.id);
    let third = checker.check(&domain, &plan).await.unwrap();
    assert_eq!(
        seen(&plan, &third, Purpose::MailHost).status,
        RecordStatus::Missing
    );
}

#[tokio::test]
async fn an_alias_where_an_address_is_planned_is_a_mismatch() {
    let plan = plan_for(ZONE, false).await;
    // The target is outside every zone, so following it is refused; the
    // alias is still what the name holds.
    let (zones, server) =
        server_with(&[("CNAME", "mail.acme.example", "elsewhere.example", None)]).await;
    publish(&zones, &except(&plan, &[Purpose::MailHost]));
    let obs = check(&server, &plan).await;
    let a = seen(&plan, &obs, Purpose::MailHost);
    assert_eq!(a.status, RecordStatus::Mismatch);
    assert_eq!(a.answers, ["CNAME elsewhere.example"]);
}

#[tokio::test]
async fn a_subdomain_is_checked_in_its_parent_zone() {
    let plan = plan_for("sales.acme.example", false).await;
    let (zones, server) = server_with(&[]).await;
    publish(&zones, &plan);
    let obs = check_domain(&server, "sales.acme.example", &plan)
        .await
        .unwrap();
    assert_eq!(statuses(&obs), vec![RecordStatus::Verified; plan.len()]);
}

#[tokio::test]
async fn server_failures_are_errors_not_missing_records() {
    let plan = plan_for(ZONE, false).await;

    // Broken zone data makes the server answer SERVFAIL.
    let (_zones, server) = server_with(&[("A", "mail.acme.example", "not-an-address", None)]).await;
    let err = check_domain(&server, ZONE, &plan).await.unwrap_err();
    assert!(matches!(err, VerifyError::Query { .. }), "{err:?}");
    assert!(err.to_string().contains("SERVFAIL"), "{err}");

    // A domain the servers do not serve is refused.
    let err = check_domain(&server, "other.example", &plan)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("REFUSED"), "{err}");

    // A server that never answers: an error within seconds, not a hang.
    let dead = silent_server().await;
    let checker = DnsChecker::new(Some(vec![dead.local_addr().unwrap()]));
    let started = Instant::now();
    let err = checker
        .check(&DomainName::parse(ZONE).unwrap(), &plan)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, VerifyError::Query { .. }), "{err:?}");
}
