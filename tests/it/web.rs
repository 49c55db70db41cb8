//! The browser admin UI end to end, in headless Chromium against the real
//! server: sign in, add a manual-DNS domain and watch its records verify
//! once the test publishes them, create inboxes, export an Instantly CSV,
//! pause an inbox, a forged form refused, sign out, and a second member
//! kept out of the first one's domain. Screenshots of the main pages go to
//! `target/screenshots/`.

use std::path::PathBuf;

use reqwest::StatusCode;

use inboxgrove::config::{DomainArgs, SequencerArgs};

use crate::domains::lifecycle::create_by_hand;
use crate::domains::{IPV4, world_around};
use crate::helpers::*;
use crate::support::sequencers::{Kind, SequencerDouble};
use crate::support::webdriver::{self, Browser};

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(format!("{name}.png"))
}

async fn sign_in(b: &Browser, base: &str, email: &str, password: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("input[name=email]", email).await;
    b.fill("input[name=password]", password).await;
    b.click("#sign-in").await;
    b.find("#domain-counts").await;
}

#[tokio::test]
async fn a_person_runs_inboxgrove_from_the_browser() {
    if !webdriver::available() {
        return;
    }
    let instantly = SequencerDouble::start(Kind::Instantly, "sk_web_1234").await;
    let w = world_around(Options {
        domains: DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        sequencers: SequencerArgs {
            instantly_api_url: Some(instantly.base_url()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let base = w.app.base.clone();
    let admin = w.app.admin_token().await;
    w.app.member(&admin, "second@example.com").await;
    let b = Browser::start().await;

    // Sign in; the first-run admin is told to change the password.
    sign_in(&b, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.find("#change-password-notice").await;
    b.screenshot(&shot("dashboard")).await;

    // Add a domain in manual mode: its records wait for the person's DNS.
    w.zones.add_zone("web.test");
    b.click("a[href='/domains']").await;
    b.click("#add-domain").await;
    b.fill("input[name=domain_name]", "web.test").await;
    b.click("#add-domain-submit").await;
    b.find("#records").await;
    let domain_url = b.url().await;
    let id = domain_url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(b.text("#domain-status").await, "awaiting_dns");
    b.screenshot(&shot("domain-awaiting-dns")).await;

    // The test publishes the records in the loopback DNS server, as the
    // person would at their DNS host; "Check now" shows them verified.
    let view = w.domain(&id).await;
    for r in view["records"].as_array().unwrap() {
        create_by_hand(&w, "web.test", r);
    }
    b.click("#verify-now").await;
    b.until(
        "every record verified",
        30,
        "const s = [...document.querySelectorAll('.record-state')].map(e => e.textContent.trim()); \
         return s.length > 0 && s.every(x => x === 'verified');",
    )
    .await;
    b.screenshot(&shot("domain-verified")).await;

    // Create 10 inboxes: the credentials are shown once, with a download.
    b.goto(&format!("{base}/inboxes/new?domain={id}")).await;
    b.fill("input[name=quantity]", "10").await;
    b.click("#create-submit").await;
    b.find("#credentials").await;
    let rows = b
        .execute("return document.querySelectorAll('#credentials tbody tr').length;")
        .await;
    assert_eq!(rows, 10);
    let download = b.attribute("#download-credentials", "href").await;
    let csv = reqwest::get(format!("{base}{download}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 11, "{csv}");
    b.screenshot(&shot("inboxes-created")).await;

    // Export the domain for Instantly and check the file's header.
    b.goto(&format!("{base}/exports")).await;
    b.click("#export-format option[value=instantly_csv]").await;
    b.click(&format!("#export-domain option[value='{id}']"))
        .await;
    b.click("#export-submit").await;
    let link = b.attribute("#download-export", "href").await;
    let res = reqwest::get(format!("{base}{link}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    assert!(
        csv.starts_with("Email,First Name,Last Name,IMAP Username,IMAP Password"),
        "{csv}"
    );

    // Push the domain's inboxes into Instantly, keeping the key.
    b.goto(&format!("{base}/exports")).await;
    b.click(&format!("#push-domain option[value='{id}']")).await;
    b.fill("#push-key", "sk_web_1234").await;
    b.click("input[name=save_key]").await;
    b.click("#push-submit").await;
    b.find("#push-results").await;
    let added = b
        .execute("return document.querySelectorAll('#push-results .badge.created').length;")
        .await;
    assert_eq!(added, 10);
    assert_eq!(instantly.accounts().len(), 10);
    b.execute("document.getElementById('pushed').scrollIntoView(); return true;")
        .await;
    b.screenshot(&shot("pushed")).await;
    b.goto(&format!("{base}/exports")).await;
    assert!(b.text("#saved-keys").await.contains("…1234"));

    // Pause an inbox from the list; its row updates in place.
    b.goto(&format!("{base}/inboxes")).await;
    b.click("#inbox-table button.pause").await;
    b.until(
        "an inbox paused",
        15,
        "return [...document.querySelectorAll('.inbox-status')].some(e => e.textContent.trim() === 'paused');",
    )
    .await;
    b.screenshot(&shot("inboxes")).await;

    // A form sent without its CSRF token is refused.
    b.goto(&format!("{base}/tokens")).await;
    b.execute(
        "const f = document.querySelector('form[action=\"/tokens\"]'); \
         f.querySelector('input[name=_csrf]').remove(); \
         f.querySelector('input[name=name]').value = 'forged'; f.submit(); return true;",
    )
    .await;
    assert!(b.text("#error-message").await.contains("CSRF"));
    let (_, tokens) = w.app.get("/api/v1/tokens", &admin).await;
    assert!(
        !tokens["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "forged")
    );

    // Sign out; the pages need signing in again.
    b.goto(&format!("{base}/dashboard")).await;
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    b.goto(&domain_url).await;
    b.find("#sign-in").await;

    // A second member cannot open the first one's domain.
    sign_in(&b, &base, "second@example.com", MEMBER_PASSWORD).await;
    b.goto(&domain_url).await;
    assert!(b.text("h1").await.contains("Not found"));
    assert!(!b.text("main").await.contains("web.test"));

    // The phone-sized dashboard, for the README.
    b.resize(400, 860).await;
    b.goto(&format!("{base}/dashboard")).await;
    b.screenshot(&shot("dashboard-phone")).await;
    b.quit().await;
}

/// Signs in through the form without a browser; the `Cookie` header value.
pub async fn form_sign_in(app: &TestApp, client: &reqwest::Client) -> String {
    let res = client
        .post(format!("{}/login", app.base))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    set.split(';').next().unwrap().to_owned()
}

/// A signed-in page and the session's CSRF token from its form.
pub async fn page_with_csrf(
    app: &TestApp,
    client: &reqwest::Client,
    cookie: &str,
    path: &str,
) -> (String, String) {
    let page = client
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (csrf, page)
}

#[tokio::test]
async fn pages_are_locked_down_and_assets_cached_by_hash() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    let csp = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    let page = login.text().await.unwrap();

    // The page links its assets by content hash: cached for a year, and
    // revalidated by ETag.
    let css = page
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(css.starts_with("/assets/app.css?v="), "{css}");
    let res = client
        .get(format!("{}{css}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = res.headers()["etag"].clone();
    let again = client
        .get(format!("{}{css}", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Signed out, a page sends the person to sign in.
    let res = client
        .get(format!("{}/domains", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login");

    // A login form posted from another site is refused.
    let res = client
        .post(format!("{}/login", app.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Signed in, a post without the CSRF token is refused, with it accepted.
    let cookie = form_sign_in(&app, &client).await;
    let res = client
        .post(format!("{}/tokens", app.base))
        .header("cookie", &cookie)
        .form(&[("name", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (csrf, _) = page_with_csrf(&app, &client, &cookie, "/tokens").await;
    let res = client
        .post(format!("{}/tokens", app.base))
        .header("cookie", &cookie)
        .form(&[("name", "with token"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("shown only once"));

    // Signing out ends the session: the old cookie no longer works.
    let res = client
        .post(format!("{}/logout", app.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = client
        .get(format!("{}/dashboard", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/login");

    // A browser at an address nothing serves gets a page; the API its JSON.
    let res = client
        .get(format!("{}/no-such-page", app.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers().contains_key("content-security-policy"));
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("no page at this address")
    );
    for (path, accept) in [
        ("/no-such-page", "application/json"),
        ("/api/v1/nothing", "text/html"),
    ] {
        let res = client
            .get(format!("{}{path}", app.base))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body), "not_found", "{path}");
    }
}
