//! Run-time server settings: changed by an admin through the API or the
//! settings form, in force for the next domain without a restart, pinned
//! when given by flag or env, the token sealed and never shown, and kept
//! across a restart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use inboxgrove::config::DomainArgs;

use crate::at_rest::{contains, db_bytes};
use crate::domains::{IPV4, world_with};
use crate::helpers::*;
use crate::web::{form_sign_in, page_with_csrf};

const CF_TOKEN: &str = "cf-KNOWN-settings-token-4821";

async fn patch(app: &TestApp, body: Value, token: &str) -> (StatusCode, Value) {
    app.call(Method::PATCH, "/api/v1/settings", Some(body), Some(token))
        .await
}

#[tokio::test]
async fn an_admin_changes_what_the_next_domain_uses_without_a_restart() {
    let w = world_with(None, None).await;
    let admin = w.admin.clone();
    let (status, body) = w.add(json!({ "domain_name": "before.test" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "public_ip_missing");

    let (status, body) = patch(
        &w.app,
        json!({ "public_ipv4": IPV4, "mail_host_pattern": "mx.{domain}" }),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["public_ipv4"],
        json!({ "value": IPV4, "source": "saved" })
    );
    assert_eq!(
        body["public_ipv6"],
        json!({ "value": null, "source": "default" })
    );
    assert_eq!(body["mail_host_pattern"]["value"], "mx.{domain}");

    let (status, added) = w.add(json!({ "domain_name": "after.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    let records = added["records"].to_string();
    assert!(records.contains("mx.after.test"), "{records}");
    assert!(records.contains(IPV4), "{records}");

    // Bulk creation and exports read the mail host at use time too.
    let domain = added["domain_id"].as_str().unwrap();
    let (status, created) = w
        .app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": domain, "quantity": 1 }),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["inboxes"][0]["smtp_host"], "mx.after.test");
    let export_host = || async {
        let (status, export) = w
            .app
            .post(
                "/api/v1/inboxes/export",
                json!({ "domain_id": domain, "format": "generic_csv" }),
                Some(&admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{export}");
        reqwest::get(export["file_url"].as_str().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(export_host().await.contains(",mx.after.test,"));

    // Bad values: 422 naming the field, and nothing of the submit saved.
    for (body, field) in [
        (
            json!({ "public_ipv4": "203.0.113", "timezone": "Asia/Tokyo" }),
            "public_ipv4",
        ),
        (
            json!({ "mail_host_pattern": "mail.example.com" }),
            "mail_host_pattern",
        ),
        (json!({ "timezone": "Mars/Olympus" }), "timezone"),
        (
            json!({ "cloudflare_api_token": "two words" }),
            "cloudflare_api_token",
        ),
        (
            json!({ "dmarc_quarantine_after_days": 9000 }),
            "dmarc_quarantine_after_days",
        ),
    ] {
        let (status, err) = patch(&w.app, body, &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (_, now) = w.app.get("/api/v1/settings", &admin).await;
    assert_eq!(
        now["timezone"],
        json!({ "value": "UTC", "source": "default" })
    );
    assert_eq!(now["public_ipv4"]["value"], IPV4);

    // Members neither see nor change server settings.
    let (_, member) = w.app.member(&admin, "member@example.com").await;
    assert_eq!(
        w.app.get("/api/v1/settings", &member).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = patch(&w.app, json!({ "public_ipv4": "192.0.2.9" }), &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // `null` forgets a saved value: the default applies again.
    let (status, body) = patch(&w.app, json!({ "mail_host_pattern": null }), &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["mail_host_pattern"],
        json!({ "value": "mail.{domain}", "source": "default" })
    );
    assert!(export_host().await.contains(",mail.after.test,"));
}

#[tokio::test]
async fn the_token_is_sealed_never_returned_and_settings_survive_a_restart() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, body) = patch(
        &app,
        json!({ "cloudflare_api_token": CF_TOKEN, "timezone": "Europe/Berlin" }),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["cloudflare_api_token"],
        json!({ "value": { "set": true }, "source": "saved" })
    );
    assert!(!body.to_string().contains(CF_TOKEN));
    let (_, shown) = app.get("/api/v1/settings", &admin).await;
    assert!(!shown.to_string().contains(CF_TOKEN));
    let audit = app.audit_rows(&admin).await;
    let row = audit
        .iter()
        .find(|r| r["resource_type"] == "settings")
        .expect("the change is audited");
    assert_eq!(row["metadata"]["cloudflare_api_token"], "set", "{row}");
    assert!(!Value::Array(audit.clone()).to_string().contains(CF_TOKEN));

    let dir = app.stop().await;
    assert!(!contains(&db_bytes(dir.path()), CF_TOKEN));

    let app = spawn_app_in(dir, Options::default()).await;
    let admin = app.admin_token().await;
    let (_, shown) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(
        shown["cloudflare_api_token"]["value"],
        json!({ "set": true })
    );
    assert_eq!(
        shown["timezone"],
        json!({ "value": "Europe/Berlin", "source": "saved" })
    );
    let (status, body) = patch(&app, json!({ "cloudflare_api_token": null }), &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["cloudflare_api_token"],
        json!({ "value": { "set": false }, "source": "default" })
    );
}

#[tokio::test]
async fn a_value_given_by_flag_or_env_is_pinned() {
    let app = spawn_app_with(Options {
        domains: DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        timezone: Some("Europe/Berlin".into()),
        ..Default::default()
    })
    .await;
    let admin = app.admin_token().await;
    let (_, shown) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(
        shown["public_ipv4"],
        json!({ "value": IPV4, "source": "flag_or_env" })
    );
    // One pinned field refuses the whole submit.
    let (status, err) = patch(
        &app,
        json!({ "mail_host_pattern": "mx.{domain}", "timezone": "UTC" }),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(error_code(&err), "setting_pinned");
    assert_eq!(err["error"]["field"], "timezone");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("INBOXGROVE_TIMEZONE"), "{message}");
    let (_, now) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(now["mail_host_pattern"]["source"], "default");
}

#[tokio::test]
async fn the_settings_form_saves_and_reports_errors() {
    let app = spawn_app_with(Options {
        domains: DomainArgs {
            tracking_host: Some("t.example.net".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = form_sign_in(&app, &client).await;
    let (csrf, page) = page_with_csrf(&app, &client, &cookie, "/settings").await;
    assert!(page.contains("id=\"server-settings-form\""), "{page}");
    assert!(
        page.contains("--tracking-host / INBOXGROVE_TRACKING_HOST"),
        "{page}"
    );
    assert!(
        page.contains("name=\"tracking_host\" value=\"t.example.net\" disabled"),
        "pinned: disabled"
    );

    let post = |fields: Vec<(&'static str, String)>| {
        let client = client.clone();
        let cookie = cookie.clone();
        let url = format!("{}/settings/server", app.base);
        async move {
            let res = client
                .post(url)
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (status, page) = post(vec![
        ("_csrf", csrf.clone()),
        ("public_ipv4", IPV4.into()),
        ("timezone", "Asia/Tokyo".into()),
        ("cloudflare_api_token", String::new()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("server-settings-saved"), "{page}");

    let (status, page) = post(vec![
        ("_csrf", csrf),
        ("public_ipv4", "10.0.0.1".into()),
        ("timezone", "Nowhere/Land".into()),
    ])
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("server-settings-error") && page.contains("IANA"),
        "{page}"
    );

    let admin = app.admin_token().await;
    let (_, shown) = app.get("/api/v1/settings", &admin).await;
    assert_eq!(shown["public_ipv4"]["value"], IPV4);
    assert_eq!(shown["timezone"]["value"], "Asia/Tokyo");
    assert_eq!(shown["tracking_host"]["source"], "flag_or_env");
}
