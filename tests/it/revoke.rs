//! Revocation is immediate: removing a domain, disabling a user or deleting
//! a mailbox stops its SMTP and IMAP logins with the next request, and
//! KumoMTA is told to drop its caches. A fault inside InboxGrove is "try
//! again later", never a refusal or a failed login.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp};
use crate::inboxes::Control;
use crate::kumo::{app_with_ip, check};

/// A server with a member who owns `domain` with two mailboxes.
struct Fleet {
    app: TestApp,
    admin: String,
    member_id: String,
    member: String,
    domain_id: String,
    /// (id, address, password)
    mailboxes: Vec<(String, String, String)>,
}

async fn fleet(opts: Options, domain: &str) -> Fleet {
    let app = app_with_ip(opts).await;
    let admin = app.admin_token().await;
    let (member_id, member) = app.member(&admin, "owner@example.com").await;
    let (domain_id, mailboxes) = add_with_mailboxes(&app, &member, domain).await;
    Fleet {
        app,
        admin,
        member_id,
        member,
        domain_id,
        mailboxes,
    }
}

async fn add_with_mailboxes(
    app: &TestApp,
    token: &str,
    domain: &str,
) -> (String, Vec<(String, String, String)>) {
    let (status, added) = app
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": domain }),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    let domain_id = added["domain_id"].as_str().unwrap().to_owned();
    let (status, created) = app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": domain_id, "quantity": 2, "enable_warmup": false }),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let mailboxes = created["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap().to_owned();
            (s("inbox_id"), s("email"), s("password"))
        })
        .collect();
    (domain_id, mailboxes)
}

/// `/kumo/v1/auth` over SMTP and IMAP, and the lookup's `exists`.
async fn access(kumo: &Control, email: &str, password: &str) -> (StatusCode, StatusCode, Value) {
    let login = |service: &str| {
        let body = json!({ "username": email, "password": password, "service": service });
        async move { kumo.call(Method::POST, "/auth", Some(body)).await.0 }
    };
    let smtp = login("smtp").await;
    let imap = login("imap").await;
    let (status, found) = kumo
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    (smtp, imap, found["exists"].clone())
}

const OPEN: (StatusCode, StatusCode, bool) = (StatusCode::OK, StatusCode::OK, true);
const SHUT: (StatusCode, StatusCode, bool) =
    (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, false);

async fn state(kumo: &Control, email: &str, password: &str) -> (StatusCode, StatusCode, bool) {
    let (smtp, imap, exists) = access(kumo, email, password).await;
    (smtp, imap, exists.as_bool().unwrap())
}

#[tokio::test]
async fn removing_a_domain_revokes_its_mailboxes_at_once_and_a_new_one_finds_nothing_old() {
    let f = fleet(Options::default(), "gone.test").await;
    let kumo = Control::of(&f.app);
    let (_, email, password) = &f.mailboxes[0];
    assert_eq!(state(&kumo, email, password).await, OPEN);
    let (local, _) = email.split_once('@').unwrap();
    let before = f.app.datasource.get("gone.test", local).unwrap().unwrap();

    let (status, body) = f
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/domains/{}?force=true", f.domain_id),
            None,
            Some(&f.member),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    // Asked right after the call returned: no waiting.
    for (_, email, password) in &f.mailboxes {
        assert_eq!(state(&kumo, email, password).await, SHUT, "{email}");
    }

    // An entry an interrupted removal left behind (written straight into
    // the datasource) is found until the name is added again …
    let stale = serde_json::to_vec(&before).unwrap();
    f.app
        .datasource
        .put_raw("gone.test", local, &stale)
        .unwrap();
    assert_eq!(state(&kumo, email, password).await, OPEN);
    // … and adding it again clears it before anyone can use it.
    let (_, again) = add_with_mailboxes(&f.app, &f.member, "gone.test").await;
    assert_eq!(state(&kumo, email, password).await, SHUT);
    for (_, email, password) in &again {
        assert_eq!(state(&kumo, email, password).await, OPEN, "{email}");
    }
}

#[tokio::test]
async fn disabling_a_user_revokes_their_mailboxes_and_enabling_brings_them_back() {
    let f = fleet(Options::default(), "owned.test").await;
    let kumo = Control::of(&f.app);
    let user = format!("/api/v1/users/{}", f.member_id);
    let set = |disabled: bool| {
        f.app.call(
            Method::PATCH,
            &user,
            Some(json!({ "disabled": disabled })),
            Some(&f.admin),
        )
    };
    let (status, body) = set(true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (_, email, password) in &f.mailboxes {
        assert_eq!(state(&kumo, email, password).await, SHUT, "{email}");
    }
    let (status, body) = set(false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (_, email, password) in &f.mailboxes {
        assert_eq!(state(&kumo, email, password).await, OPEN, "{email}");
    }
}

#[tokio::test]
async fn deleting_a_mailbox_revokes_it_at_once() {
    let f = fleet(Options::default(), "one.test").await;
    let kumo = Control::of(&f.app);
    let (id, email, password) = &f.mailboxes[0];
    let (status, body) = f
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/inboxes/{id}"),
            None,
            Some(&f.member),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(state(&kumo, email, password).await, SHUT);
    let (_, other, other_password) = &f.mailboxes[1];
    assert_eq!(state(&kumo, other, other_password).await, OPEN);
}

#[tokio::test]
async fn a_damaged_datasource_is_try_again_later_and_no_failed_login() {
    let f = fleet(Options::default(), "fault.test").await;
    f.app.set_domain_status("fault.test", "active");
    let kumo = Control::of(&f.app);
    let (_, email, password) = &f.mailboxes[0];
    let (local, _) = email.split_once('@').unwrap();
    f.app
        .datasource
        .put_raw("fault.test", local, b"\x00 not an entry")
        .unwrap();

    // More attempts than the throttle lets through, all with the right
    // password: none may count as a wrong one.
    for service in ["smtp", "imap", "smtp", "imap", "smtp", "imap", "smtp"] {
        let body = json!({ "username": email, "password": password, "service": service });
        let (status, answer) = kumo.call(Method::POST, "/auth", Some(body)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert_eq!(answer["error"]["code"], "temporarily_unavailable");
    }
    let (status, _) = kumo
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = kumo
        .call(
            Method::POST,
            "/send-check",
            Some(check(email, email, &["r@example.net"])),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    for service in ["smtp", "imap"] {
        let counts = &stats["logins"][service];
        assert_eq!(
            (&counts["refused"], &counts["throttled"]),
            (&json!(0), &json!(0))
        );
    }
    let rows = f.app.audit_rows(&f.admin).await;
    assert!(
        !rows.iter().any(|r| r["action"] == "mailbox.login"),
        "{rows:?}"
    );

    // Repaired from SQLite (the console's call), the right password logs in
    // at once.
    let console = Control::with(&f.app, "console.secret");
    let (status, _) = console.call(Method::POST, "/sync", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state(&kumo, email, password).await, OPEN);
    let (_, sent) = kumo
        .call(
            Method::POST,
            "/send-check",
            Some(check(email, email, &["r@example.net"])),
        )
        .await;
    assert_eq!(sent["allow"], true, "{sent}");
}

#[tokio::test]
async fn mailbox_changes_tell_kumomta_to_drop_its_caches() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // KumoMTA's admin listener, reduced to the one endpoint.
    let bumps = Arc::new(AtomicUsize::new(0));
    let counter = bumps.clone();
    let kumod = axum::Router::new().route(
        "/api/admin/bump-config-epoch",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kumod_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, kumod).await });

    let f = fleet(
        Options {
            kumo_http_url: Some(kumod_url),
            ..Default::default()
        },
        "epoch.test",
    )
    .await;
    // The bump is sent in the background: wait for it to arrive.
    let bumped_by = async |change: (Method, String, Option<Value>, &str)| {
        let before = bumps.load(Ordering::SeqCst);
        let (method, path, body, token) = change;
        let (status, answer) = f.app.call(method, &path, body, Some(token)).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while bumps.load(Ordering::SeqCst) == before {
            assert!(std::time::Instant::now() < deadline, "no bump after {path}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let a = &f.mailboxes[0].0;
    let inbox = |id: &str| format!("/api/v1/inboxes/{id}");
    let user = format!("/api/v1/users/{}", f.member_id);
    for change in [
        (
            Method::PATCH,
            inbox(a),
            Some(json!({ "paused": true })),
            &f.member,
        ),
        (
            Method::POST,
            format!("{}/reset-password", inbox(a)),
            None,
            &f.member,
        ),
        (Method::DELETE, inbox(a), None, &f.member),
        (
            Method::PATCH,
            user,
            Some(json!({ "disabled": true })),
            &f.admin,
        ),
        (
            Method::DELETE,
            format!("/api/v1/domains/{}?force=true", f.domain_id),
            None,
            &f.admin,
        ),
    ] {
        bumped_by((change.0, change.1, change.2, change.3.as_str())).await;
    }
}
