//! Logins that strangers cannot lock and rate limits that cannot be dodged
//! (issue 12, points 2 and 3): the throttle keys on (account, source) and
//! source, a reservation bounds concurrent guesses, `trusted_proxies`
//! decides whom `X-Forwarded-For` names, and the rate limits key on the
//! verified user or else the source address.

use std::net::IpAddr;

use inboxgrove::auth::throttle::PAIR_FREE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, world_around};
use crate::helpers::*;
use crate::inboxes::{Control, bulk, with_domain};

const GUESSES: usize = 30;

/// `POST /kumo/v1/auth` as KumoMTA (`smtp`) or Dovecot (`imap`) asks it.
async fn mail_login(
    kumo: &Control,
    service: &str,
    email: &str,
    password: &str,
    source: &str,
) -> StatusCode {
    let body =
        json!({ "username": email, "password": password, "source_ip": source, "service": service });
    kumo.call(Method::POST, "/auth", Some(body)).await.0
}

/// A mailbox's address and password on a server whose clock stands still,
/// so a throttle delay never runs out during a test.
async fn mailbox() -> (crate::domains::World, String, String) {
    let w = world_around(Options {
        clock: Some(manual_clock()),
        domains: inboxgrove::config::DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let domain = with_domain(&w, "guarded.test").await;
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 1 })).await;
    let inbox = &created["inboxes"][0];
    let (email, password) = (
        inbox["email"].as_str().unwrap(),
        inbox["password"].as_str().unwrap(),
    );
    (w, email.to_owned(), password.to_owned())
}

#[tokio::test]
async fn thirty_wrong_mail_logins_from_one_address_lock_out_only_that_address() {
    let (w, email, password) = mailbox().await;
    let kumo = Control::of(&w.app);
    for service in ["smtp", "imap"] {
        let stranger = if service == "smtp" {
            "192.0.2.66"
        } else {
            "192.0.2.67"
        };
        let before = w.app.hasher.verifications();
        for i in 0..GUESSES {
            let guess = format!("Guess-number-{i}-abcdef");
            let status = mail_login(&kumo, service, &email, &guess, stranger).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            w.app.hasher.verifications() - before,
            PAIR_FREE as u64,
            "{service}: only the free guesses cost a verification"
        );
        // The stranger's own address stays throttled, even for the right
        // password …
        let status = mail_login(&kumo, service, &email, &password, stranger).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{service}");
        // … while the mailbox's sequencer, elsewhere, logs in at once.
        let status = mail_login(&kumo, service, &email, &password, "198.51.100.10").await;
        assert_eq!(status, StatusCode::OK, "{service}");
    }
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    for service in ["smtp", "imap"] {
        let s = &stats["logins"][service];
        assert_eq!(s["refused"], PAIR_FREE, "{stats}");
        assert_eq!(s["throttled"], GUESSES as u32 - PAIR_FREE + 1, "{stats}");
        assert_eq!(s["ok"], 1, "{stats}");
    }
}

/// A server behind a proxy on loopback: `127.0.0.1` is trusted, so its
/// `X-Forwarded-For` names the client; `127.0.0.2` is not.
async fn behind_proxy() -> TestApp {
    spawn_app_with(Options {
        clock: Some(manual_clock()),
        trusted_proxies: Some("127.0.0.1/32"),
        ..Default::default()
    })
    .await
}

/// A client that connects from `local` (any 127/8 address is this host).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An API login of `email` (the admin's unless given) through `client`,
/// whose `X-Forwarded-For` names `client_ip` after a forged entry.
async fn api_login_as(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    client_ip: &str,
) -> StatusCode {
    client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", format!("6.6.6.6, {client_ip}"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn api_login(
    app: &TestApp,
    client: &reqwest::Client,
    password: &str,
    client_ip: &str,
) -> StatusCode {
    api_login_as(app, client, ADMIN_EMAIL, password, client_ip).await
}

async fn web_login(
    app: &TestApp,
    client: &reqwest::Client,
    password: &str,
    client_ip: &str,
) -> StatusCode {
    client
        .post(format!("{}/login", app.base))
        .header("x-forwarded-for", client_ip)
        .form(&[("email", ADMIN_EMAIL), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn thirty_wrong_api_and_web_logins_from_one_client_do_not_lock_out_another() {
    let app = behind_proxy().await;
    let proxy = client_from("127.0.0.1");
    for (path, stranger, ok) in [
        ("api", "203.0.113.1", StatusCode::OK),
        ("web", "203.0.113.2", StatusCode::SEE_OTHER),
    ] {
        let login = async |password: &str, ip: &str| match path {
            "api" => api_login(&app, &proxy, password, ip).await,
            _ => web_login(&app, &proxy, password, ip).await,
        };
        let mut statuses = Vec::new();
        for i in 0..GUESSES {
            statuses.push(login(&format!("wrong guess {i}"), stranger).await);
        }
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let throttled = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(
            (refused, throttled),
            (PAIR_FREE as usize, GUESSES - PAIR_FREE as usize),
            "{path}: {statuses:?}"
        );
        assert_eq!(
            login(ADMIN_PASSWORD, stranger).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}"
        );
        assert_eq!(login(ADMIN_PASSWORD, "198.51.100.20").await, ok, "{path}");
    }
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_peer() {
    let app = behind_proxy().await;
    let proxy = client_from("127.0.0.1");
    let stranger = "203.0.113.9";
    for i in 0..PAIR_FREE {
        let status = api_login(&app, &proxy, &format!("wrong guess {i}"), stranger).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        api_login(&app, &proxy, ADMIN_PASSWORD, stranger).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An untrusted peer naming the throttled client is not believed: it is
    // itself, and its own address has no failures.
    let direct = client_from("127.0.0.2");
    assert_eq!(
        api_login(&app, &direct, ADMIN_PASSWORD, stranger).await,
        StatusCode::OK
    );

    // With no proxy trusted at all, a header per guess changes nothing:
    // every guess counts against the peer.
    let app = spawn_app_with(Options {
        clock: Some(manual_clock()),
        ..Default::default()
    })
    .await;
    for i in 0..PAIR_FREE {
        let status = api_login(
            &app,
            &proxy,
            &format!("wrong guess {i}"),
            &format!("203.0.113.{i}"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        api_login(&app, &proxy, ADMIN_PASSWORD, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The audit row names the client the server believed.
    let token = access(&app.login_from(&direct).await);
    let rows = app.audit_rows(&token).await;
    assert!(
        rows.iter().any(|r| r["client_ip"] == "127.0.0.2"),
        "{rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r["client_ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("203."))),
        "{rows:?}"
    );
}

#[tokio::test]
async fn fifty_concurrent_wrong_logins_cost_at_most_the_free_verifications() {
    let app = spawn_app_with(Options {
        clock: Some(manual_clock()),
        ..Default::default()
    })
    .await;
    let admin = app.admin_token().await;
    let member = "member@example.com";
    app.member(&admin, member).await;
    let client = client_from("127.0.0.1");
    for path in ["web", "api"] {
        let before = app.hasher.verifications();
        let guesses = (0..50).map(|i| {
            let (app, client) = (&app, &client);
            async move {
                let password = format!("concurrent guess {i}");
                match path {
                    "web" => web_login(app, client, &password, "-").await,
                    // Another account: the address's own budget is larger.
                    _ => api_login_as(app, client, member, &password, "-").await,
                }
            }
        });
        let statuses = futures_util::future::join_all(guesses).await;
        let spent = app.hasher.verifications() - before;
        assert!(
            statuses
                .iter()
                .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
            "{path}: {statuses:?}"
        );
        assert_eq!(spent, u64::from(PAIR_FREE), "{path}: {statuses:?}");
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!(refused, PAIR_FREE as usize, "{path}");
    }
}

#[tokio::test]
async fn random_bearer_tokens_from_one_address_are_limited_but_not_a_verified_user() {
    // One request a minute refills: nothing comes back during the test.
    let app = spawn_app_with(Options {
        per_minute: 1,
        burst: 10,
        ..Default::default()
    })
    .await;
    let admin = app.admin_token().await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let random = format!("igt_random-{i:04}-{}", "x".repeat(40));
        let (status, body) = app.get("/api/v1/me", &random).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), "rate_limited");
        }
        statuses.push(status);
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // The admin's login took one of the address's ten.
    assert_eq!(limited, 11, "{statuses:?}");
    // The address is spent: the per-address routes answer 429 too, with
    // Retry-After …
    for path in ["/login", "/u/some-token", "/api/v1/exports/some-token"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(res.headers().contains_key("retry-after"), "{path}");
    }
    // … but a verified user counts on their own bucket.
    assert_eq!(app.get("/api/v1/me", &admin).await.0, StatusCode::OK);
}

impl TestApp {
    /// The admin's API login through `client`.
    async fn login_from(&self, client: &reqwest::Client) -> Value {
        let res = client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

#[tokio::test]
async fn bad_trusted_proxies_stop_the_start_saying_why() {
    use crate::process::{fresh_dir, run};
    let (tmp, data) = fresh_dir();
    for (given, says) in [
        ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ("0.0.0.0/0", "trusts every address"),
        ("::/0", "trusts every address"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an address or CIDR"),
        (
            "proxy.internal",
            "'proxy.internal' is not an address or CIDR",
        ),
        ("10.0.0.0/8,;", "';' is not an address or CIDR"),
    ] {
        let out = run(&["serve", "--trusted-proxies", given], &data, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{given}: {err}");
        assert!(
            err.contains("--trusted-proxies") && err.contains(says),
            "{given}: {err}"
        );
        assert!(!data.exists(), "{given}: nothing is created");
    }
    let config = tmp.path().join("ig.toml");
    std::fs::write(
        &config,
        "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1/24\"]\n",
    )
    .unwrap();
    let out = run(
        &["--config", config.to_str().unwrap(), "serve"],
        &data,
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("trusted_proxies") && err.contains("did you mean 192.0.2.0/24"),
        "{err}"
    );
    assert!(!data.exists());
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins_of_the_account() {
    let app = behind_proxy().await;
    let proxy = client_from("127.0.0.1");
    let owner = "198.51.100.5";
    let res = proxy
        .post(format!("{}/login", app.base))
        .header("x-forwarded-for", owner)
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (csrf, _) = crate::web::page_with_csrf(&app, &proxy, &cookie, "/settings").await;
    let change = async |current: &str, from: &str| {
        proxy
            .post(format!("{}/settings/password", app.base))
            .header("cookie", &cookie)
            .header("x-forwarded-for", from)
            .form(&[
                ("current_password", current),
                ("new_password", "a brand new password 1"),
                ("_csrf", &csrf),
            ])
            .send()
            .await
            .unwrap()
            .status()
    };
    // Someone at the session's keyboard elsewhere (a stolen cookie) guesses.
    let thief = "203.0.113.50";
    for i in 0..PAIR_FREE {
        assert_eq!(
            change(&format!("guess {i}"), thief).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        change(ADMIN_PASSWORD, thief).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The same account's login from there waits too; the owner does not.
    assert_eq!(
        web_login(&app, &proxy, ADMIN_PASSWORD, thief).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(change(ADMIN_PASSWORD, owner).await, StatusCode::SEE_OTHER);
}
