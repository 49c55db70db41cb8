//! Bounded growth (issue 12, point 7): the retention settings and their
//! bad-input table, and refused mailbox logins aggregated per (service,
//! mailbox, source, hour). The pruning itself is driven with the injected
//! clock in `src/jobs/maintenance/tests.rs`.

use chrono::Duration;
use inboxgrove::auth::throttle::PAIR_FREE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, world_around};
use crate::helpers::*;
use crate::inboxes::{Control, bulk, with_domain};
use crate::web::{form_sign_in, page_with_csrf};

async fn patch(app: &TestApp, body: Value, token: &str) -> (StatusCode, Value) {
    app.call(Method::PATCH, "/api/v1/settings", Some(body), Some(token))
        .await
}

#[tokio::test]
async fn retention_days_refuse_bad_values_whole_and_take_good_ones() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, shown) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(
        shown["audit_retention_days"],
        json!({ "value": 365, "source": "default" })
    );
    assert_eq!(
        shown["event_retention_days"],
        json!({ "value": 90, "source": "default" })
    );

    let audit = "audit_retention_days";
    let events = "event_retention_days";
    for (field, bad) in [
        (audit, json!(0)),
        (audit, json!(-30)),
        (audit, json!(29)),
        (audit, json!(3651)),
        (audit, json!(1e12)),
        (audit, json!(45.5)),
        (audit, json!("a year")),
        (audit, json!("")),
        (audit, json!(true)),
        (audit, json!([365])),
        (events, json!(0)),
        (events, json!(-1)),
        (events, json!(13)),
        (events, json!(18446744073709551615u64)),
        (events, json!("90 days")),
    ] {
        // A good value of the other field in the same submit is not saved
        // either.
        let other = if field == audit { events } else { audit };
        let body = json!({ field: bad, other: 100 });
        let (status, err) = patch(&app, body, &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {err}");
        assert_eq!(err["error"]["field"], field, "{bad}: {err}");
        // A number or text is read as days, and the message gives the range.
        if bad.is_number() || bad.is_string() {
            let message = err["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("days from") && message.contains("3650"),
                "{bad}: {message}"
            );
        }
    }
    let (_, now) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(now["audit_retention_days"]["source"], "default", "{now}");
    assert_eq!(now["event_retention_days"]["source"], "default", "{now}");

    // The floors say why: report matching needs two weeks of events.
    let (_, err) = patch(&app, json!({ events: 7 }), &admin).await;
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("from 14") && message.contains("matched"),
        "{message}"
    );

    let (status, body) = patch(&app, json!({ audit: 30, events: "14" }), &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body[audit],
        json!({ "value": 30, "source": "saved" }),
        "{body}"
    );
    assert_eq!(body[events]["value"], 14, "{body}");

    // Members may not change them.
    let (_, member) = app.member(&admin, "member@example.com").await;
    let (status, _) = patch(&app, json!({ audit: 400 }), &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// `POST /kumo/v1/auth` as KumoMTA asks it (or Dovecot, with `imap`).
async fn mail_login(kumo: &Control, service: &str, user: &str, password: &str, source: &str) {
    let body =
        json!({ "username": user, "password": password, "source_ip": source, "service": service });
    let (status, _) = kumo.call(Method::POST, "/auth", Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn refusals(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .filter(|r| r["action"] == "mailbox.login")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_thousand_refused_logins_in_an_hour_are_one_row() {
    let clock = manual_clock();
    let w = world_around(Options {
        clock: Some(clock.clone()),
        domains: inboxgrove::config::DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let domain = with_domain(&w, "flooded.test").await;
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 1 })).await;
    let email = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    let kumo = Control::of(&w.app);

    for i in 0..1000 {
        let guess = format!("Guess-{i}-abcdefgh");
        mail_login(&kumo, "smtp", &email, &guess, "192.0.2.50").await;
    }
    let rows = refusals(&w.app.audit_rows(&w.admin).await);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["metadata"]["count"], 1000, "{row}");
    assert_eq!(row["metadata"]["throttled"], 1000 - PAIR_FREE, "{row}");
    assert_eq!(row["metadata"]["username"], email.as_str());
    assert_eq!(row["metadata"]["service"], "smtp");
    assert_eq!(row["client_ip"], "192.0.2.50");
    assert_eq!(row["status"], "failure");
    assert!(!row.to_string().contains("Guess-"), "{row}");

    // Another source, another service, and names that are no mailbox
    // (however many) each make their own row; IMAP from the same source is
    // its own row too.
    mail_login(&kumo, "smtp", &email, "Wrong-one-abcdefgh", "198.51.100.7").await;
    mail_login(&kumo, "imap", &email, "Wrong-two-abcdefgh", "192.0.2.50").await;
    for i in 0..50 {
        let name = format!("nobody{i}@flooded.test");
        mail_login(&kumo, "smtp", &name, "Whatever-abcdefgh", "192.0.2.51").await;
    }
    let rows = refusals(&w.app.audit_rows(&w.admin).await);
    assert_eq!(rows.len(), 4, "{rows:?}");
    let unknown: Vec<&Value> = rows
        .iter()
        .filter(|r| r["metadata"]["known_mailbox"] == false)
        .collect();
    assert_eq!(unknown.len(), 1, "{rows:?}");
    assert_eq!(unknown[0]["metadata"]["count"], 50);
    assert_eq!(unknown[0]["metadata"]["username"], "nobody49@flooded.test");

    // A new hour starts a new row for the same mailbox and source.
    clock.advance(Duration::hours(1));
    mail_login(&kumo, "smtp", &email, "Next-hour-abcdefgh", "192.0.2.50").await;
    let rows = refusals(&w.app.audit_rows(&w.admin).await);
    assert_eq!(rows.len(), 5, "{rows:?}");
    // Newest first: the new hour's row, counted once.
    assert_eq!(rows[0]["metadata"]["count"], 1, "{rows:?}");
    assert_eq!(rows[0]["client_ip"], "192.0.2.50");
    assert_ne!(rows[0]["metadata"]["hour"], row["metadata"]["hour"]);

    // The audit page shows how often.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = form_sign_in(&w.app, &client).await;
    let (_, page) = page_with_csrf(&w.app, &client, &cookie, "/audit?action=mailbox.login").await;
    assert!(page.contains("×1000"), "{page}");
}
