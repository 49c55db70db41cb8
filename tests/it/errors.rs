use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app.client.post(format!("{}{path}", app.base)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {status} {text}"));
    (status, body)
}

#[tokio::test]
async fn malformed_json_is_400_and_says_so() {
    let app = spawn_app().await;
    let login = "/api/v1/auth/login";
    let (status, body) = raw(
        &app,
        login,
        Some("application/json"),
        b"{\"email\": ".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "malformed_json");
    let (status, body) = raw(&app, login, Some("application/json"), Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("empty"));
    let (status, body) = raw(
        &app,
        login,
        Some("application/json"),
        br#"{"email":"a@example.com","password":"x"} trailing"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn validation_errors_are_422_and_name_the_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let cases = [
        (
            json!({ "email": "root@example.com", "password": "x", "remember": true }),
            "remember",
            "unknown field",
        ),
        (
            json!({ "email": "not-an-email", "password": "x" }),
            "email",
            "@",
        ),
        (json!({ "email": 42, "password": "x" }), "email", "string"),
        (json!({ "password": "x" }), "body", "email"),
    ];
    for (input, field, hint) in cases {
        let (status, body) = app.post("/api/v1/auth/login", input.clone(), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {body}");
        assert_eq!(error_code(&body), "validation_failed");
        assert_eq!(body["error"]["field"], field, "{input}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(hint), "{input}: {msg}");
    }
    let (status, body) = app
        .post(
            "/api/v1/users",
            json!({ "email": "dave@example.com", "password": "short" }),
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "password");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("short\"")
    );

    let (status, body) = app.get("/api/v1/audit-logs?limit=5000", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "limit");
    let (status, _) = app.get("/api/v1/audit-logs?page=2", &admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bodies_over_1_mib_are_413_and_non_json_is_415() {
    let app = spawn_app().await;
    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(1024 * 1024 + 1));
    let (status, body) = raw(
        &app,
        "/api/v1/auth/login",
        Some("application/json"),
        big.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "payload_too_large");

    let (status, body) = raw(
        &app,
        "/api/v1/auth/login",
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    let (status, _) = raw(&app, "/api/v1/auth/login", None, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_json_shape() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, body) = app.get("/api/v1/nope", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    let (status, body) = app
        .call(Method::PUT, "/api/v1/me", None, Some(&admin))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method_not_allowed");
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/tokens/not-a-uuid",
            None,
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn junk_input_never_crashes_the_server() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let junk: [&[u8]; 6] = [
        b"\xff\xfe\x00",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"null",
        b"\"\\ud800\"",
        b"{\"email\":\"a@b.c\",\"password\":{\"x\":1}}",
        b"{\"name\":\"\\u0000\"}",
    ];
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/tokens",
        "/api/v1/users",
    ] {
        for body in junk {
            let res = app
                .client
                .post(format!("{}{path}", app.base))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert!(status.is_client_error(), "{path} {body:?}: {status}");
            let v: Value = res.json().await.unwrap();
            assert!(v["error"]["code"].is_string());
        }
    }
    assert_eq!(app.get("/api/v1/me", &admin).await.0, StatusCode::OK);
}
