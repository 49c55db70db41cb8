use reqwest::StatusCode;
use serde_json::json;

use inboxgrove::auth::throttle::PAIR_FREE;

use crate::helpers::*;

#[tokio::test]
async fn requests_over_the_limit_get_429_with_retry_after() {
    let app = spawn_app_with(Options {
        per_minute: 60,
        burst: 5,
        ..Default::default()
    })
    .await;
    let token = app.admin_token().await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let res = app
            .client
            .get(format!("{}/api/v1/me", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = res.headers().get("retry-after").cloned();
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(error_code(&body), "rate_limited");
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(
        ok, 5,
        "the burst passes, then the limit bites: {statuses:?}"
    );
    assert_eq!(statuses[7], StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!(
        (1..=2).contains(&secs),
        "one request per second refills: {secs}"
    );

    // Another token of the same user shares the user's bucket: minting
    // tokens does not dodge the limit.
    let other = app.admin_token().await;
    assert_ne!(other, token);
    assert_eq!(
        app.get("/api/v1/me", &other).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn repeated_login_failures_are_throttled_and_audited() {
    let app = spawn_app().await;
    let wrong = json!({ "email": ADMIN_EMAIL, "password": "guessing wrong 1" });
    for _ in 0..PAIR_FREE {
        let (status, _) = app.post("/api/v1/auth/login", wrong.clone(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let res = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "login_throttled");

    let store = inboxgrove::store::Store::open(app.dir.path()).unwrap();
    let failures: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit_logs WHERE action = 'POST /api/v1/auth/login' AND status = 'failure'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        failures,
        i64::from(PAIR_FREE) + 1,
        "the free wrong passwords and one throttled attempt"
    );
}
