//! Bulk inboxes and mailbox management through the API, and what the
//! KumoMTA control plane then answers about them.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{World, world};
use crate::helpers::TestApp;

/// The control listener, authenticated with one of the data dir's
/// credentials (KumoMTA's unless told).
pub struct Control {
    base: String,
    secret: String,
    client: reqwest::Client,
}

impl Control {
    pub fn of(app: &TestApp) -> Self {
        Self::with(app, "kumo.secret")
    }

    /// With the credential in `file` in the data dir, as it is now.
    pub fn with(app: &TestApp, file: &str) -> Self {
        Self::with_secret(app, read_secret(app, file))
    }

    pub fn with_secret(app: &TestApp, secret: String) -> Self {
        Self {
            base: app.control.clone(),
            secret,
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/kumo/v1{path}", self.base))
            .bearer_auth(&self.secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn auth(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/auth",
            Some(json!({ "username": username, "password": password })),
        )
        .await
    }
}

/// The secret in `file` in the app's data dir.
pub fn read_secret(app: &TestApp, file: &str) -> String {
    std::fs::read_to_string(app.dir.path().join(file))
        .unwrap()
        .trim()
        .to_owned()
}

/// A world with one manual domain; returns its id.
pub async fn with_domain(w: &World, name: &str) -> String {
    w.zones.add_zone(name);
    let (status, added) = w.add(json!({ "domain_name": name })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    added["domain_id"].as_str().unwrap().to_owned()
}

pub async fn bulk(w: &World, body: Value) -> (StatusCode, Value) {
    w.app
        .post("/api/v1/inboxes/bulk", body, Some(&w.admin))
        .await
}

#[tokio::test]
async fn fifty_inboxes_are_created_and_their_passwords_authenticate_at_once() {
    let w = world().await;
    let domain = with_domain(&w, "fleet.test").await;
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 50, "naming_scheme": "random", "daily_limit": 30, "enable_warmup": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["created_count"], 50);
    assert!(created["warmup_schedule"]["ready_date"].is_string());
    let inboxes = created["inboxes"].as_array().unwrap();
    let emails: HashSet<&str> = inboxes
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 50);
    for i in inboxes {
        let email = i["email"].as_str().unwrap();
        assert!(email.ends_with("@fleet.test"));
        let password = i["password"].as_str().unwrap();
        assert!(password.len() >= 20);
        assert!(
            password.chars().any(|c| c.is_ascii_uppercase())
                && password.chars().any(|c| c.is_ascii_digit())
        );
        assert_eq!(i["smtp_host"], "mail.fleet.test");
        assert_eq!(
            (i["smtp_port"].as_u64(), i["imap_port"].as_u64()),
            (Some(587), Some(993))
        );
        assert_eq!(i["status"], "warming");
        assert_eq!(i["daily_limit"], 30);
        assert!(!i["first_name"].as_str().unwrap().is_empty());
    }

    let kumo = Control::of(&w.app);
    let first = &inboxes[0];
    let (status, ok) = kumo
        .auth(
            first["email"].as_str().unwrap(),
            first["password"].as_str().unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["mailbox_id"], first["inbox_id"]);
    assert_eq!(ok["daily_limit"], 30);
    assert_eq!(ok["sent_today"], 0);
    // Again, on the fast path; and a wrong password never passes.
    assert_eq!(
        kumo.auth(
            first["email"].as_str().unwrap(),
            first["password"].as_str().unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, no) = kumo
        .auth(first["email"].as_str().unwrap(), "Wrong-password-123456")
        .await;
    assert_eq!(
        (status, no),
        (StatusCode::UNAUTHORIZED, json!({ "ok": false }))
    );
    let other = inboxes[1]["password"].as_str().unwrap();
    assert_eq!(
        kumo.auth(first["email"].as_str().unwrap(), other).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        kumo.auth("nobody@fleet.test", other).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Acting as another mailbox is refused.
    let (status, _) = kumo
        .call(
            Method::POST,
            "/auth",
            Some(json!({ "username": first["email"], "password": first["password"], "authz": inboxes[1]["email"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, page) = w
        .app
        .get(
            &format!("/api/v1/inboxes?domain_id={domain}&limit=20"),
            &w.admin,
        )
        .await;
    assert_eq!(page["total"], 50);
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["items"][0].get("password_hash").is_none());

    // More on the same domain never collide with the first fifty.
    let (_, more) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 30, "naming_scheme": "flast" }),
    )
    .await;
    let again: HashSet<&str> = more["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(again.len(), 30);
    assert!(again.is_disjoint(&emails));
}

#[tokio::test]
async fn bad_bulk_requests_name_the_field_and_create_nothing() {
    let w = world().await;
    let domain = with_domain(&w, "strict.test").await;
    let (_, mallory) = w.app.member(&w.admin, "mallory@example.com").await;
    let cases = [
        (
            json!({ "domain_id": domain, "quantity": 0 }),
            422,
            "quantity",
        ),
        (
            json!({ "domain_id": domain, "quantity": 1001 }),
            422,
            "quantity",
        ),
        (
            json!({ "domain_id": domain, "quantity": 2, "daily_limit": 501 }),
            422,
            "daily_limit",
        ),
        (
            json!({ "domain_id": domain, "quantity": 1, "naming_scheme": "fancy" }),
            422,
            "naming_scheme",
        ),
        (
            json!({ "domain_id": domain, "quantity": 2, "naming_scheme": "custom",
                    "names": [{ "first_name": "Ada", "last_name": "Lovelace" }, { "username": "postmaster" }] }),
            422,
            "names[1]",
        ),
        (
            json!({ "domain_id": domain, "quantity": 2, "naming_scheme": "custom",
                    "names": [{ "username": "ada" }, { "username": "ADA" }] }),
            422,
            "names[1]",
        ),
        (
            json!({ "domain_id": domain, "quantity": 3, "naming_scheme": "custom", "names": [{ "username": "ada" }] }),
            422,
            "quantity",
        ),
        (
            json!({ "domain_id": uuid::Uuid::new_v4(), "quantity": 1 }),
            404,
            "",
        ),
    ];
    for (body, want, field) in cases {
        let (status, answer) = bulk(&w, body.clone()).await;
        assert_eq!(status.as_u16(), want, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        }
    }
    // Someone else's domain looks missing.
    let (status, _) = w
        .app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": domain, "quantity": 1 }),
            Some(&mallory),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = w.app.get("/api/v1/inboxes", &w.admin).await;
    assert_eq!(page["total"], 0, "nothing was created");

    let (status, custom) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 2, "naming_scheme": "custom",
                "names": [{ "first_name": "Zoë", "last_name": "O'Brien" }, { "username": "sales.team1" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{custom}");
    assert_eq!(custom["inboxes"][0]["email"], "zoe.obrien@strict.test");
    assert_eq!(custom["inboxes"][0]["first_name"], "Zoë");
    assert_eq!(custom["inboxes"][1]["email"], "sales.team1@strict.test");
    let (status, dup) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 1, "naming_scheme": "custom", "names": [{ "username": "Zoe.OBrien" }] }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "taken, whatever the case: {dup}"
    );
}

#[tokio::test]
async fn pausing_and_password_resets_reach_kumo_at_once() {
    let w = world().await;
    let domain = with_domain(&w, "switch.test").await;
    let (_, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 1, "enable_warmup": false }),
    )
    .await;
    let inbox = &created["inboxes"][0];
    let (id, email, password) = (
        inbox["inbox_id"].as_str().unwrap(),
        inbox["email"].as_str().unwrap(),
        inbox["password"].as_str().unwrap(),
    );
    assert_eq!(inbox["status"], "active");
    let kumo = Control::of(&w.app);
    let path = format!("/api/v1/inboxes/{id}");
    assert_eq!(kumo.auth(email, password).await.0, StatusCode::OK);

    let (status, paused) = w
        .app
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "paused": true })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    assert_eq!(kumo.auth(email, password).await.0, StatusCode::UNAUTHORIZED);
    let (_, lookup) = kumo
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await;
    assert_eq!(lookup["active"], false);

    let (_, resumed) = w
        .app
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "paused": false, "daily_limit": 12, "first_name": "Grace" })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(
        (resumed["status"].as_str(), resumed["daily_limit"].as_u64()),
        (Some("active"), Some(12))
    );
    assert_eq!(resumed["first_name"], "Grace");
    let (_, ok) = kumo.auth(email, password).await;
    assert_eq!(ok["daily_limit"], 12);

    let (status, reset) = w
        .app
        .post(&format!("{path}/reset-password"), json!({}), Some(&w.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = reset["password"].as_str().unwrap();
    assert_ne!(fresh, password);
    assert_eq!(
        kumo.auth(email, password).await.0,
        StatusCode::UNAUTHORIZED,
        "old password ends at once"
    );
    assert_eq!(kumo.auth(email, fresh).await.0, StatusCode::OK);

    let (status, _) = w
        .app
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "daily_limit": 0 })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = w
        .app
        .call(Method::DELETE, &path, None, Some(&w.admin))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kumo.auth(email, fresh).await.0, StatusCode::UNAUTHORIZED);
    let (_, gone) = kumo
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await;
    assert_eq!(gone, json!({ "exists": false, "active": false }));
}

#[tokio::test]
async fn guessing_a_mailbox_password_is_throttled() {
    let w = world().await;
    let domain = with_domain(&w, "guarded.test").await;
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 1 })).await;
    let email = created["inboxes"][0]["email"].as_str().unwrap();
    let password = created["inboxes"][0]["password"].as_str().unwrap();
    let kumo = Control::of(&w.app);
    for i in 0..6 {
        let (status, _) = kumo.auth(email, &format!("Guess-number-{i}-abcdef")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = kumo.auth(email, password).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({ "ok": false })),
        "even the right password waits"
    );
}
