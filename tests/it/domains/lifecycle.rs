//! Time-driven parts of a domain's life, on a manual clock: checks give up
//! after 48 hours, DMARC ramps to quarantine after 14 days active, and a
//! Cloudflare outage is retried every 5 minutes.

use chrono::Duration as Days;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TOKEN, World, world_with};

const SOON: std::time::Duration = std::time::Duration::from_secs(10);
use crate::helpers::manual_clock;

/// Adds a manual domain and creates every planned record by hand, as the
/// person would; returns the domain id.
pub(crate) async fn manual_domain_with_records(w: &World, name: &str) -> String {
    w.zones.add_zone(name);
    let (status, added) = w.add(json!({ "domain_name": name })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    for r in added["records"].as_array().unwrap() {
        create_by_hand(w, name, r);
    }
    added["domain_id"].as_str().unwrap().to_owned()
}

pub(crate) fn create_by_hand(w: &World, zone: &str, r: &Value) {
    let t = r["type"].as_str().unwrap();
    let content = match t {
        "TXT" => format!("\"{}\"", r["content"].as_str().unwrap()),
        _ => r["content"].as_str().unwrap().to_owned(),
    };
    let priority = r["priority"].as_u64().map(|p| p as u16);
    w.zones
        .add_record(zone, t, r["name"].as_str().unwrap(), &content, priority);
}

#[tokio::test]
async fn checks_give_up_after_48_hours_and_a_retry_starts_over() {
    let clock = manual_clock();
    let w = world_with(Some(super::IPV4), Some(clock.clone())).await;
    w.zones.add_zone("late.test");
    let (_, added) = w.add(json!({ "domain_name": "late.test" })).await;
    let id = added["domain_id"].as_str().unwrap().to_owned();

    clock.advance(Days::hours(47));
    w.app.scheduler.run_due().await.unwrap();
    assert_eq!(
        w.domain(&id).await["status"],
        "awaiting_dns",
        "still within 48 h"
    );

    clock.advance(Days::hours(2));
    w.app.scheduler.run_due().await.unwrap();
    // A background worker may be the one running the check.
    let failed = w.until_status(&id, "failed", SOON).await;
    let why = failed["last_error"].as_str().unwrap();
    assert!(
        why.contains("48 hours") && why.contains("mail.late.test"),
        "{why}"
    );

    // The person fixes DNS and asks again: a new window, and it verifies.
    for r in added["records"].as_array().unwrap() {
        create_by_hand(&w, "late.test", r);
    }
    let again = w.verify(&id).await;
    assert_eq!(again["status"], "active", "{again:#}");

    let rows = w.app.audit_rows(&w.admin).await;
    let moves: Vec<&str> = rows
        .iter()
        .rev()
        .filter(|r| r["action"] == "domain.status")
        .map(|r| r["metadata"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(moves, ["failed", "awaiting_dns", "active"]);
}

#[tokio::test]
async fn dmarc_ramps_to_quarantine_after_14_days_active() {
    let clock = manual_clock();
    let w = world_with(Some(super::IPV4), Some(clock.clone())).await;
    let id = manual_domain_with_records(&w, "ramp.test").await;
    let checked = w.verify(&id).await;
    assert_eq!(checked["status"], "active");

    clock.advance(Days::days(13));
    w.app.scheduler.run_due().await.unwrap();
    assert_eq!(w.domain(&id).await["dmarc_policy"], "none");

    clock.advance(Days::days(2));
    w.app.scheduler.run_due().await.unwrap();
    let ramped = w
        .until(&id, SOON, |d| {
            d["records"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["purpose"] == "dmarc" && r["status"] == "mismatch")
        })
        .await;
    assert_eq!(ramped["dmarc_policy"], "quarantine", "{ramped:#}");
    assert_eq!(
        ramped["dns_records"]["dmarc"],
        "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@ramp.test"
    );
    // Manual DNS: the person must publish the new policy; until then the
    // DMARC record is a mismatch.
    assert_eq!(ramped["status"], "awaiting_dns");
    let dmarc = ramped["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "dmarc")
        .unwrap();
    assert_eq!(dmarc["status"], "mismatch", "{dmarc}");

    // And a person can move it on to reject.
    let (status, rejected) = w.patch(&id, json!({ "dmarc_policy": "reject" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rejected["dmarc_policy"], "reject");
}

#[tokio::test]
async fn a_cloudflare_outage_is_retried_every_5_minutes_with_the_error_shown() {
    let clock = manual_clock();
    let w = world_with(Some(super::IPV4), Some(clock.clone())).await;
    w.zones.add_zone("outage.test");
    let (_, added) = w
        .add(json!({ "domain_name": "outage.test", "cloudflare_api_token": TOKEN }))
        .await;
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let wait = SOON;
    w.until_status(&id, "active", wait).await;

    // Cloudflare goes down; a policy change must be published again.
    w.cloudflare.fail_next(1_000, 503);
    let (status, _) = w.patch(&id, json!({ "dmarc_policy": "quarantine" })).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = std::time::Instant::now() + wait;
    let stuck = loop {
        let d = w.domain(&id).await;
        if d["last_error"].is_string() {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error shown: {d:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(stuck["status"], "publishing");
    let err = stuck["last_error"].as_str().unwrap();
    assert!(err.contains("unreachable or failing"), "{err}");
    assert!(!err.contains(TOKEN));

    // Four minutes on, nothing is tried; at five, the retry publishes.
    w.cloudflare.fail_next(0, 503);
    w.cloudflare.clear_requests();
    clock.advance(Days::minutes(4));
    w.app.scheduler.run_due().await.unwrap();
    assert!(
        w.cloudflare.requests().is_empty(),
        "{:?}",
        w.cloudflare.requests()
    );
    clock.advance(Days::minutes(1));
    w.app.scheduler.run_due().await.unwrap();
    let d = w.until_status(&id, "active", wait).await;
    assert_eq!(d["last_error"], Value::Null);
    assert_eq!(d["dmarc_policy"], "quarantine");
    assert_eq!(
        w.cloudflare.batch_calls(),
        1,
        "only the DMARC record changed"
    );
}
