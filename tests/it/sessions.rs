use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_returns_a_bearer_pair_that_reaches_me() {
    let app = spawn_app().await;
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("igr_")
    );
    let (status, me) = app.get("/api/v1/me", &access(&tokens)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");
    assert!(me.get("password_hash").is_none());

    // Emails are matched case-insensitively.
    app.login("Root@Example.com", ADMIN_PASSWORD).await;

    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            json!({ "email": ADMIN_EMAIL, "password": "not the password" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_credentials");

    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            json!({ "email": "nobody@example.com", "password": ADMIN_PASSWORD }),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unknown account answers the same"
    );
    assert_eq!(error_code(&body), "invalid_credentials");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let refresh = |t: &str| {
        let t = t.to_owned();
        let app = &app;
        async move {
            app.post("/api/v1/auth/refresh", json!({ "refresh_token": t }), None)
                .await
        }
    };

    let (status, second) = refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, _) = app.get("/api/v1/me", &access(&second)).await;
    assert_eq!(status, StatusCode::OK);

    // The spent token comes back: someone else holds it.
    let (status, body) = refresh(first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "refresh_token_reused");

    // Every token of that session is now dead: the rotated refresh token
    // and the access tokens of both generations.
    let (status, body) = refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_refresh_token");
    for t in [&first, &second] {
        let (status, body) = app.get("/api/v1/me", &access(t)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "invalid_token");
    }

    // Another session of the same user is untouched.
    let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/me", &access(&other)).await.0,
        StatusCode::OK
    );

    let (status, body) = refresh("igr_made-up").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_refresh_token");
}

#[tokio::test]
async fn logout_ends_access_and_refresh_at_once() {
    let app = spawn_app().await;
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = access(&tokens);
    let (status, body) = app
        .call(Method::POST, "/api/v1/auth/logout", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.get("/api/v1/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An API token is not a session: it is deleted, not logged out.
    let admin = app.admin_token().await;
    let (_, created) = app
        .post("/api/v1/tokens", json!({ "name": "ci" }), Some(&admin))
        .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(created["token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "not_a_session");
}

#[tokio::test]
async fn access_tokens_last_15_minutes_and_refresh_tokens_7_days() {
    let clock = manual_clock();
    let app = spawn_app_with(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    clock.advance(Duration::minutes(14));
    assert_eq!(
        app.get("/api/v1/me", &access(&tokens)).await.0,
        StatusCode::OK
    );
    clock.advance(Duration::minutes(1));
    assert_eq!(
        app.get("/api/v1/me", &access(&tokens)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Refreshing within 7 days works and slides the window.
    clock.advance(Duration::days(6));
    let (status, renewed) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(Duration::days(7));
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": renewed["refresh_token"] }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_refresh_token");
}

#[tokio::test]
async fn logins_and_changes_are_audited_without_secrets() {
    let app = spawn_app().await;
    let _ = app
        .post(
            "/api/v1/auth/login",
            json!({ "email": ADMIN_EMAIL, "password": "wrong guess 1234" }),
            None,
        )
        .await;
    let admin = app.admin_token().await;
    let (_, created) = app
        .post("/api/v1/tokens", json!({ "name": "sync" }), Some(&admin))
        .await;
    let rows = app.audit_rows(&admin).await;
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("wrong guess 1234"));
    assert!(!text.contains(ADMIN_PASSWORD));
    assert!(!text.contains(created["token"].as_str().unwrap()));

    let logins: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "POST /api/v1/auth/login")
        .collect();
    assert_eq!(logins.len(), 2, "{rows:#?}");
    assert!(logins.iter().any(|r| r["status"] == "failure"));
    assert!(logins.iter().any(|r| r["status"] == "success"));
    for r in &logins {
        assert!(r["user_id"].is_string(), "the account is named: {r}");
        assert_eq!(r["metadata"]["email"], ADMIN_EMAIL);
        assert!(r["request_id"].is_string());
    }
    let token_row = rows
        .iter()
        .find(|r| r["action"] == "POST /api/v1/tokens")
        .unwrap();
    assert_eq!(token_row["status"], "success");
    assert_eq!(token_row["resource_type"], "api_token");
    assert_eq!(token_row["resource_id"], created["id"]);
}

#[tokio::test]
async fn audit_log_pages_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for i in 0..7 {
        let (status, _) = app
            .post(
                "/api/v1/tokens",
                json!({ "name": format!("t{i}") }),
                Some(&admin),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let everything = app.audit_rows(&admin).await;
    assert_eq!(everything.len(), 8, "one login and seven token creations");

    let mut seen = Vec::new();
    let mut path = "/api/v1/audit-logs?limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|r| r["id"].clone()));
        match page["next_before"].as_str() {
            Some(cursor) => path = format!("/api/v1/audit-logs?limit=3&before={cursor}"),
            None => break,
        }
    }
    let all_ids: Vec<_> = everything.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        seen, all_ids,
        "pages concatenate to the whole log, in order"
    );
    let times: Vec<_> = everything
        .iter()
        .map(|r| chrono::DateTime::parse_from_rfc3339(r["created_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
}
