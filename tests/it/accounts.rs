use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn api_tokens_are_shown_once_work_as_bearer_and_can_be_deleted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, created) = app
        .post(
            "/api/v1/tokens",
            json!({ "name": "instantly sync", "expires_in_days": 30 }),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("igt_"));
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert!(created["expires_at"].is_string());

    let (status, me) = app.get("/api/v1/me", &secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], ADMIN_EMAIL);

    let (_, list) = app.get("/api/v1/tokens", &secret).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("token").is_none(), "never shown again: {list}");
    assert_eq!(items[0]["name"], "instantly sync");

    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/tokens/{id}");
    let (status, _) = app.call(Method::DELETE, &path, None, Some(&admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/me", &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_token");
    let (status, _) = app.call(Method::DELETE, &path, None, Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x", "expires_in_days": 0 }),
    ] {
        let (status, body) = app.post("/api/v1/tokens", bad, Some(&admin)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/users",
        "/api/v1/audit-logs",
    ] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(error_code(&body), "unauthenticated");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Bearer")
        );
    }
    for junk in [
        "igt_nope",
        "not.a.jwt",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ] {
        let (status, body) = app.get("/api/v1/me", junk).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{junk}");
        assert_eq!(error_code(&body), "invalid_token");
    }
}

#[tokio::test]
async fn members_see_only_their_own_and_others_look_missing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, alice) = app.member(&admin, "alice@example.com").await;
    let (_, bob) = app.member(&admin, "bob@example.com").await;

    let (_, alice_token) = app
        .post("/api/v1/tokens", json!({ "name": "alice's" }), Some(&alice))
        .await;
    let alice_token_id = alice_token["id"].as_str().unwrap();

    // Bob cannot see or delete Alice's token: it answers exactly as a
    // token that does not exist.
    let (_, bobs) = app.get("/api/v1/tokens", &bob).await;
    assert_eq!(bobs["items"], json!([]));
    let theirs = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{alice_token_id}"),
            None,
            Some(&bob),
        )
        .await;
    let missing = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()),
            None,
            Some(&bob),
        )
        .await;
    assert_eq!(theirs.0, StatusCode::NOT_FOUND);
    assert_eq!(theirs, missing);
    let (status, _) = app
        .get("/api/v1/me", alice_token["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "still alive");

    // The admin sees everyone's.
    let (_, all) = app.get("/api/v1/tokens", &admin).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);

    // Members do not manage users.
    let (status, body) = app.get("/api/v1/users", &bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");

    // Audit rows: a member sees only their own.
    let (_, page) = app.get("/api/v1/audit-logs", &bob).await;
    let bob_me = app.get("/api/v1/me", &bob).await.1;
    for row in page["items"].as_array().unwrap() {
        assert_eq!(row["user_id"], bob_me["id"], "{row}");
    }
    assert!(!page["items"].as_array().unwrap().is_empty());

    // Filters apply to the whole log, not one page: a token creation is
    // found however many rows came after it.
    for _ in 0..5 {
        app.get("/api/v1/me", &admin).await;
        let wrong = json!({ "email": "nobody@example.com", "password": "wrong password" });
        app.post("/api/v1/auth/login", wrong, None).await;
    }
    let (status, found) = app
        .get(
            "/api/v1/audit-logs?limit=1&action=POST%20/API/v1/TOKENS&status=success",
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "POST /api/v1/tokens");
    let (_, failures) = app
        .get("/api/v1/audit-logs?status=failure&limit=200", &admin)
        .await;
    let failures = failures["items"].as_array().unwrap();
    assert!(failures.len() >= 5);
    assert!(failures.iter().all(|r| r["status"] == "failure"));
    let (status, bad) = app.get("/api/v1/audit-logs?status=maybe", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
}

#[tokio::test]
async fn admins_manage_users_and_disabling_ends_access() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (carol_id, carol) = app.member(&admin, "carol@example.com").await;
    let (_, carol_api) = app
        .post("/api/v1/tokens", json!({ "name": "c" }), Some(&carol))
        .await;

    let (status, dup) = app
        .post(
            "/api/v1/users",
            json!({ "email": "CAROL@example.com", "password": MEMBER_PASSWORD }),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{dup}");

    let patch = |body: Value| {
        let path = format!("/api/v1/users/{carol_id}");
        let app = &app;
        let admin = admin.clone();
        async move {
            app.call(Method::PATCH, &path, Some(body), Some(&admin))
                .await
        }
    };
    let (status, user) = patch(json!({ "subscription_tier": "pro" })).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["subscription_tier"], "pro");

    let (status, user) = patch(json!({ "disabled": true })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["disabled"], true);
    assert_eq!(
        app.get("/api/v1/me", &carol).await.0,
        StatusCode::UNAUTHORIZED
    );
    let api = carol_api["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", api).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            json!({ "email": "carol@example.com", "password": MEMBER_PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "account_disabled");

    let (status, _) = patch(json!({ "disabled": false, "password": "a brand new password" })).await;
    assert_eq!(status, StatusCode::OK);
    app.login("carol@example.com", "a brand new password").await;

    let (status, body) = patch(json!({ "role": "superuser" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "role");

    // The last admin cannot lock everyone out.
    let (_, me) = app.get("/api/v1/me", &admin).await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            Some(json!({ "role": "member" })),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "last_admin");
    let (_, me_again) = app.get("/api/v1/me", &admin).await;
    assert_eq!(me_again["role"], "admin", "nothing half-written");

    let (status, list) = app.get("/api/v1/users", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            Some(json!({ "disabled": true })),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_listener_separation() {
    let app = spawn_app().await;
    let get = |url: String| async move {
        let res = reqwest::get(&url).await.unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(get(format!("{}/healthz", app.base)).await.0, StatusCode::OK);
    let (status, ready) = get(format!("{}/readyz", app.base)).await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    assert_eq!(
        get(format!("{}/kumo/v1/health", app.control)).await.0,
        StatusCode::OK
    );

    // Control routes never answer publicly, and the API never on control.
    let (status, body) = get(format!("{}/kumo/v1/health", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    for path in ["/healthz", "/api/v1/me", "/api/v1/auth/login"] {
        let (status, _) = get(format!("{}{path}", app.control)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} on control");
    }
}
