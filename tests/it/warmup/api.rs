//! The warmup API: settings are validated whole and name the field at
//! fault, members reach only their own mailboxes' warmup, peers are added
//! only after both logins work (and a refused one says why, never the
//! password), and only admins share them.

use std::sync::Arc;

use inboxgrove::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::rig::{PEERS, Rig};
use crate::helpers::error_code;
use crate::support::dovecot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_settings_peers_and_who_may_touch_them() {
    if !dovecot::available() {
        return;
    }
    let clock = Arc::new(ManualClock::new("2030-03-18T00:05:00Z".parse().unwrap()));
    let rig = Rig::start(clock, None).await;
    let (app, admin) = (&rig.w.app, rig.w.admin.as_str());
    let inbox = &rig.mailboxes[0];
    let path = format!("/api/v1/inboxes/{}/warmup", inbox.id);

    // Bulk creation enrolled it: day 0 of the spec's 14-day ramp.
    let (status, view) = app.get(&path, admin).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        (
            view["enabled"].clone(),
            view["status"].clone(),
            view["ramp_days"].clone()
        ),
        (json!(true), json!("warming"), json!(14))
    );
    assert_eq!(view["ready_date"], "2030-04-01", "{view}");
    assert_eq!(view["campaign_allowance_today"], 0);

    // Bad settings: 422 naming the field, nothing saved.
    for (body, field) in [
        (json!({ "reply_rate_pct": 150 }), "reply_rate_pct"),
        (
            json!({ "ramp": { "preset": "linear", "start": 0, "increment": 1, "ceiling": 5 } }),
            "ramp.start",
        ),
        (json!({ "timezone": "Mars/Olympus" }), "timezone"),
        (json!({ "enabled": "yes" }), "enabled"),
        (json!({ "colour": "green" }), "settings"),
        (json!([1, 2]), "body"),
    ] {
        let (status, err) = app
            .call(Method::PATCH, &path, Some(body.clone()), Some(admin))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (_, after) = app.get(&path, admin).await;
    assert_eq!(
        after["settings"], view["settings"],
        "a refused patch changes nothing"
    );
    let (status, changed) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "reply_rate_pct": 40, "weekdays_only": true })),
            Some(admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["settings"]["reply_rate_pct"], 40);
    assert_eq!(changed["settings"]["variation_pct"], 20, "the rest is kept");

    // A member sees none of it: another's mailbox is not found.
    let (_, member) = app.member(admin, "member@agency.test").await;
    let (status, _) = app.get(&path, &member).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .post(&format!("{path}/pause"), json!({}), Some(&member))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A peer whose password is wrong is refused with the reason, and
    // nothing is saved.
    let peer = |password: &str, shared: bool| {
        json!({
            "email": PEERS[0].0, "imap_host": "127.0.0.1", "imap_port": rig.provider.imaps.port(),
            "imap_implicit_tls": true, "smtp_host": "127.0.0.1",
            "smtp_port": rig.provider_smtp.addr.port(), "password": password, "shared": shared,
        })
    };
    let (status, err) = app
        .post(
            "/api/v1/warmup/peers",
            peer("not-the-password", false),
            Some(&member),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(error_code(&err), "peer_login_failed");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("IMAP login"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    // Only an admin shares a peer.
    let (status, err) = app
        .post(
            "/api/v1/warmup/peers",
            peer(PEERS[0].1, true),
            Some(&member),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("shared"))
    );
    let (status, own) = app
        .post(
            "/api/v1/warmup/peers",
            peer(PEERS[0].1, false),
            Some(&member),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_eq!(own["provider"], "gmail");
    assert!(own.get("password").is_none() && own.get("password_sealed").is_none());
    let (status, _) = app
        .post(
            "/api/v1/warmup/peers",
            peer(PEERS[0].1, false),
            Some(&member),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "one peer per address and owner"
    );

    // The admin's shared peer is listed to the member, who may not remove
    // it; the member's own peer is theirs alone.
    let (status, shared) = app
        .post("/api/v1/warmup/peers", peer(PEERS[0].1, true), Some(admin))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    let (_, listed) = app.get("/api/v1/warmup/peers", &member).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    let shared_id = shared["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/warmup/peers/{shared_id}"),
            None,
            Some(&member),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let own_id = own["id"].as_str().unwrap();
    let (status, tested) = app
        .post(
            &format!("/api/v1/warmup/peers/{own_id}/test"),
            json!({}),
            Some(&member),
        )
        .await;
    assert_eq!(
        (status, tested["status"].clone()),
        (StatusCode::OK, json!("active")),
        "{tested}"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/warmup/peers/{own_id}"),
            None,
            Some(&member),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Pausing a domain pauses its mailboxes' warmup.
    let (_, domains) = app.get("/api/v1/domains", admin).await;
    let domain = domains["items"][0]["domain_id"]
        .as_str()
        .or(domains["items"][0]["id"].as_str())
        .unwrap()
        .to_owned();
    let (status, paused) = app
        .post(
            &format!("/api/v1/domains/{domain}/warmup/pause"),
            json!({}),
            Some(admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["mailboxes"], 2);
}
