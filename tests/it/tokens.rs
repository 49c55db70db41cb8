//! API tokens do not outlive the account they were made for: an admin's
//! password reset or a disable deletes them, and so does one's own password
//! change when asked.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn api_token(app: &TestApp, bearer: &str, name: &str) -> String {
    let (status, created) = app
        .post("/api/v1/tokens", json!({ "name": name }), Some(bearer))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().unwrap().to_owned()
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.get("/api/v1/me", token).await.0 == StatusCode::OK
}

#[tokio::test]
async fn resets_and_disables_by_an_admin_delete_the_users_api_tokens() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, session) = app.member(&admin, "junior@agency.test").await;
    let token = api_token(&app, &session, "script").await;
    assert!(works(&app, &token).await);

    // A change that is not a reset or a disable keeps it.
    let patch = |body: Value| {
        let path = format!("/api/v1/users/{id}");
        let (app, admin) = (&app, admin.clone());
        async move {
            app.call(Method::PATCH, &path, Some(body), Some(&admin))
                .await
        }
    };
    let (status, body) = patch(json!({ "subscription_tier": "pro" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Verified before the change, it is not served from a stale cache.
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["subscription_tier"], "pro", "{me}");

    let (status, body) = patch(json!({ "password": "a brand new password 1" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!works(&app, &token).await, "the reset deleted it");

    let fresh = access(
        &app.login("junior@agency.test", "a brand new password 1")
            .await,
    );
    let second = api_token(&app, &fresh, "again").await;
    patch(json!({ "disabled": true })).await;
    patch(json!({ "disabled": false })).await;
    assert!(!works(&app, &second).await, "disabling deleted it for good");
}

#[tokio::test]
async fn ones_own_password_change_deletes_api_tokens_only_when_asked() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, session) = app.member(&admin, "owner@agency.test").await;
    let token = api_token(&app, &session, "sequencer sync").await;
    let change = |bearer: String, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/me/password",
                Some(body),
                Some(&bearer),
            )
            .await
        }
    };

    // Bad input: named, nothing changed.
    let (status, body) = change(
        session.clone(),
        json!({ "current_password": "wrong", "new_password": "another password 22" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "current_password", "{body}");
    let (status, body) = change(
        session.clone(),
        json!({ "current_password": MEMBER_PASSWORD, "new_password": "short" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "new_password", "{body}");
    assert!(works(&app, &session).await, "nothing changed");

    let (status, _) = change(
        session.clone(),
        json!({ "current_password": MEMBER_PASSWORD, "new_password": "another password 22" }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!works(&app, &session).await, "every session ended");
    assert!(works(&app, &token).await, "tokens stay unless asked");

    let session = access(&app.login("owner@agency.test", "another password 22").await);
    let (status, _) = change(
        session,
        json!({ "current_password": "another password 22", "new_password": "a third password 333",
                "revoke_api_tokens": true }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!works(&app, &token).await, "asked: deleted");
}
