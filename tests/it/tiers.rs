//! Issue 12, point 8: tiers carry limits an admin edits (domains,
//! mailboxes, daily sending volume per user); past one, adds are refused
//! whole naming the limit, and send-check refuses past the owner's volume.

use chrono::Duration as Days;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, TOKEN, World, world, world_with};
use crate::helpers::{MEMBER_PASSWORD, access, error_code, manual_clock};
use crate::inboxes::Control;
use crate::kumo::check;

async fn set_limits(w: &World, token: &str, tier: &str, body: Value) -> (StatusCode, Value) {
    w.app
        .call(
            Method::PATCH,
            &format!("/api/v1/tiers/{tier}"),
            Some(body),
            Some(token),
        )
        .await
}

async fn tiers(w: &World) -> Value {
    let (status, list) = w.app.get("/api/v1/tiers", &w.admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list
}

/// A manual-DNS domain added by `token`'s user; returns its id.
async fn member_domain(w: &World, token: &str, name: &str) -> String {
    w.zones.add_zone(name);
    let (status, added) = w
        .app
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": name }),
            Some(token),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    added["domain_id"].as_str().unwrap().to_owned()
}

async fn bulk_as(w: &World, token: &str, domain: &str, quantity: u32) -> (StatusCode, Value) {
    w.app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": domain, "quantity": quantity, "daily_limit": 10, "enable_warmup": false }),
            Some(token),
        )
        .await
}

async fn held(w: &World, token: &str) -> Value {
    let (status, usage) = w.app.get("/api/v1/me/usage", token).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    usage
}

fn assert_limit(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(body), "plan_limit_reached", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

#[tokio::test]
async fn a_member_at_the_domain_limit_is_refused_until_an_admin_raises_it() {
    let w = world().await;
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    let (status, free) = set_limits(&w, &w.admin, "free", json!({ "domains": 2 })).await;
    assert_eq!(status, StatusCode::OK, "{free}");
    assert_eq!(free["domains"], 2);
    member_domain(&w, &alice, "one.test").await;
    member_domain(&w, &alice, "two.test").await;

    // With a token of her own, so an add that went through would call
    // Cloudflare: refused before anything is asked or stored.
    w.zones.add_zone("three.test");
    w.cloudflare.clear_requests();
    let third = json!({ "domain_name": "three.test", "cloudflare_api_token": TOKEN });
    let (status, refused) = w
        .app
        .post("/api/v1/domains/add", third.clone(), Some(&alice))
        .await;
    assert_limit(status, &refused, "domains");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("your plan (free) allows 2 domains and you have 2")
            && message.contains("ask an admin"),
        "{message}"
    );
    assert_eq!(w.cloudflare.requests(), Vec::<String>::new());
    let (_, mine) = w.app.get("/api/v1/domains", &alice).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(held(&w, &alice).await["remaining"]["domains"], 0);

    // The admin raises it: the same request succeeds.
    set_limits(&w, &w.admin, "free", json!({ "domains": 3 })).await;
    let (status, added) = w.app.post("/api/v1/domains/add", third, Some(&alice)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["dns_mode"], "cloudflare");

    // Lowered below what she holds: nothing goes, nothing new comes.
    set_limits(&w, &w.admin, "free", json!({ "domains": 1 })).await;
    let (_, mine) = w.app.get("/api/v1/domains", &alice).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 3);
    w.zones.add_zone("four.test");
    let (status, refused) = w
        .app
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": "four.test" }),
            Some(&alice),
        )
        .await;
    assert_limit(status, &refused, "domains");

    // Another plan is not limited by this one.
    set_limits(&w, &w.admin, "pro", json!({ "domains": 5 })).await;
    let (bob_id, bob) = w.app.member(&w.admin, "bob@example.com").await;
    w.app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob_id}"),
            Some(json!({ "subscription_tier": "pro" })),
            Some(&w.admin),
        )
        .await;
    member_domain(&w, &bob, "bob-one.test").await;
    member_domain(&w, &bob, "bob-two.test").await;

    // No limit binds an admin, whatever their plan.
    for tier in ["free", "pro", "enterprise"] {
        set_limits(&w, &w.admin, tier, json!({ "domains": 0 })).await;
    }
    member_domain(&w, &w.admin, "admins.test").await;
}

#[tokio::test]
async fn a_bulk_past_the_mailbox_limit_creates_nothing() {
    let w = world().await;
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    set_limits(&w, &w.admin, "free", json!({ "mailboxes": 5 })).await;
    let domain = member_domain(&w, &alice, "fleet.test").await;
    let (status, made) = bulk_as(&w, &alice, &domain, 3).await;
    assert_eq!(status, StatusCode::OK, "{made}");

    let (status, refused) = bulk_as(&w, &alice, &domain, 3).await;
    assert_limit(status, &refused, "mailboxes");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("allows 5 mailboxes and you have 3")
            && message.contains("2 more can be created, not 3"),
        "{message}"
    );
    let (_, page) = w.app.get("/api/v1/inboxes", &alice).await;
    assert_eq!(page["total"], 3, "nothing of the refused bulk is stored");
    let usage = held(&w, &alice).await;
    assert_eq!(
        (
            &usage["subscription_tier"],
            &usage["limits"]["mailboxes"],
            &usage["usage"]["mailboxes"],
            &usage["remaining"]["mailboxes"]
        ),
        (&json!("free"), &json!(5), &json!(3), &json!(2)),
        "{usage}"
    );

    // Up to the limit exactly, then not one more.
    assert_eq!(bulk_as(&w, &alice, &domain, 2).await.0, StatusCode::OK);
    let (status, refused) = bulk_as(&w, &alice, &domain, 1).await;
    assert_limit(status, &refused, "mailboxes");

    // Raised: the same request succeeds; unlimited lifts it.
    set_limits(&w, &w.admin, "free", json!({ "mailboxes": 6 })).await;
    assert_eq!(bulk_as(&w, &alice, &domain, 1).await.0, StatusCode::OK);
    set_limits(&w, &w.admin, "free", json!({ "mailboxes": null })).await;
    assert_eq!(bulk_as(&w, &alice, &domain, 4).await.0, StatusCode::OK);
    let usage = held(&w, &alice).await;
    assert_eq!(usage["remaining"]["mailboxes"], Value::Null, "{usage}");
    assert_eq!(usage["usage"]["mailboxes"], 10);
}

/// Alice (free, volume 3) with two mailboxes on one active domain, Bob
/// with one on another; returns (alice's two, bob's one).
async fn senders(w: &World, volume: u32) -> ([String; 2], String, String) {
    let (status, body) = set_limits(w, &w.admin, "free", json!({ "daily_volume": volume })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    let (_, bob) = w.app.member(&w.admin, "bob@example.com").await;
    let mut emails = Vec::new();
    for (token, name, n) in [(&alice, "alice.test", 2), (&bob, "bob.test", 1)] {
        let domain = member_domain(w, token, name).await;
        w.app.set_domain_status(name, "active");
        let (status, made) = bulk_as(w, token, &domain, n).await;
        assert_eq!(status, StatusCode::OK, "{made}");
        for i in made["inboxes"].as_array().unwrap() {
            emails.push(i["email"].as_str().unwrap().to_owned());
        }
    }
    (
        [emails[0].clone(), emails[1].clone()],
        emails[2].clone(),
        alice,
    )
}

async fn send(kumo: &Control, from: &str) -> Value {
    let (status, decision) = kumo
        .call(
            Method::POST,
            "/send-check",
            Some(check(from, from, &["lead@example.net"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    decision
}

#[tokio::test]
async fn send_check_refuses_past_the_owners_daily_volume() {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let ([a, b], bobs, alice) = senders(&w, 3).await;
    let kumo = Control::of(&w.app);

    let first = send(&kumo, &a).await;
    assert_eq!(first["allow"], true, "{first}");
    // The mailbox may send 9 more, the plan only 2 more today.
    assert_eq!(first["remaining_today"], 2);
    assert_eq!(send(&kumo, &b).await["allow"], true);
    assert_eq!(send(&kumo, &a).await["allow"], true);
    for mailbox in [&a, &b] {
        let over = send(&kumo, mailbox).await;
        assert_eq!(
            (over["allow"].as_bool(), over["code"].as_u64()),
            (Some(false), Some(452)),
            "{over}"
        );
        let reason = over["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("4.7.1 ") && reason.contains("plan (free: 3 messages a day)"),
            "{reason}"
        );
    }
    // A refused message is not counted, for the mailbox or the plan.
    let (_, seen) = kumo
        .call(Method::GET, &format!("/mailboxes/{b}"), None)
        .await;
    assert_eq!(seen["sent_today"], 1);
    assert_eq!(held(&w, &alice).await["usage"]["sent_today"], 3);
    // Bob's mailboxes are his own plan's business.
    assert_eq!(send(&kumo, &bobs).await["allow"], true);

    // A count given back by send-release frees one message of the plan.
    let (status, _) = kumo
        .call(
            Method::POST,
            "/send-release",
            Some(json!({ "authn_id": a })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(held(&w, &alice).await["usage"]["sent_today"], 2);
    assert_eq!(send(&kumo, &b).await["allow"], true);
    assert_eq!(send(&kumo, &b).await["allow"], false);

    // The admin raises the volume: the next message passes.
    set_limits(&w, &w.admin, "free", json!({ "daily_volume": 4 })).await;
    assert_eq!(send(&kumo, &a).await["allow"], true);
    assert_eq!(send(&kumo, &a).await["allow"], false);

    // A new sending day starts the plan's count again.
    clock.advance(Days::days(1));
    assert_eq!(send(&kumo, &b).await["allow"], true);
    let alice = access(&w.app.login("alice@example.com", MEMBER_PASSWORD).await);
    assert_eq!(held(&w, &alice).await["usage"]["sent_today"], 1);
}

#[tokio::test]
async fn concurrent_send_checks_at_the_volume_limit_let_exactly_one_through() {
    let w = world().await;
    let ([a, b], _, _) = senders(&w, 6).await;
    let kumo = Control::of(&w.app);
    for from in [&a, &b, &a, &b, &a] {
        assert_eq!(send(&kumo, from).await["allow"], true);
    }
    let checks = (0..20).map(|i| {
        let (kumo, from) = (&kumo, if i % 2 == 0 { &a } else { &b });
        async move { send(kumo, from).await["allow"].as_bool().unwrap() }
    });
    let allowed = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|allowed| *allowed)
        .count();
    assert_eq!(allowed, 1);
}

#[tokio::test]
async fn bad_tier_changes_name_the_field_and_store_nothing() {
    let w = world().await;
    let before = tiers(&w).await;
    let cases = [
        ("free", json!({ "domains": -1 }), "domains"),
        ("free", json!({ "mailboxes": 2.5 }), "mailboxes"),
        ("free", json!({ "daily_volume": "100" }), "daily_volume"),
        (
            "free",
            json!({ "daily_volume": 100_000_000_001_u64 }),
            "daily_volume",
        ),
        ("pro", json!({ "domains": 4, "seats": 10 }), "seats"),
        ("pro", json!({}), "body"),
        ("gold", json!({ "domains": 4 }), "tier"),
    ];
    for (tier, body, field) in cases {
        let (status, answer) = set_limits(&w, &w.admin, tier, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    assert_eq!(tiers(&w).await, before);

    // Members neither read nor change the limits.
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    let (status, answer) = set_limits(&w, &alice, "free", json!({ "domains": 100 })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        w.app.get("/api/v1/tiers", &alice).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(tiers(&w).await, before);

    // An admin's change is stored and audited with the new limits.
    let (status, pro) = set_limits(
        &w,
        &w.admin,
        "pro",
        json!({ "mailboxes": 300, "daily_volume": null }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pro}");
    let listed = tiers(&w).await;
    let pro_listed = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == "pro")
        .unwrap();
    assert_eq!(
        (&pro_listed["mailboxes"], &pro_listed["daily_volume"]),
        (&json!(300), &Value::Null)
    );
    assert_eq!(pro_listed["domains"], before["items"][1]["domains"]);
    let rows = w.app.audit_rows(&w.admin).await;
    let row = rows
        .iter()
        .find(|r| r["resource_type"] == "tier")
        .expect("the change is audited");
    assert_eq!(row["resource_id"], "pro");
    assert_eq!(
        (
            &row["metadata"]["mailboxes"],
            &row["metadata"]["daily_volume"]
        ),
        (&json!(300), &json!("unlimited")),
        "{row}"
    );
}

#[tokio::test]
async fn the_users_page_edits_plans_and_shows_a_bad_limit_in_its_form() {
    let w = world().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (alice, _) = w.app.member(&w.admin, "alice@example.com").await;
    let cookie = crate::web::form_sign_in(&w.app, &client).await;
    let (csrf, page) = crate::web::page_with_csrf(&w.app, &client, &cookie, "/users").await;
    assert!(page.contains("action=\"/tiers/pro\""), "{page}");
    let save = |tier: &'static str, fields: [(&'static str, &'static str); 3]| {
        let (client, cookie, csrf) = (&client, &cookie, &csrf);
        let base = w.app.base.clone();
        async move {
            let mut form = fields.to_vec();
            form.push(("_csrf", csrf));
            client
                .post(format!("{base}/tiers/{tier}"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let before = tiers(&w).await;
    let bad = save(
        "pro",
        [("domains", "-2"), ("mailboxes", "40"), ("daily_volume", "")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown = bad.text().await.unwrap();
    assert!(
        shown.contains("id=\"plan-error\">domains: must be a whole number"),
        "{shown}"
    );
    assert_eq!(tiers(&w).await, before, "nothing of the form is stored");

    let ok = save(
        "pro",
        [
            ("domains", "7"),
            ("mailboxes", " 40 "),
            ("daily_volume", ""),
        ],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let pro = tiers(&w).await["items"][1].clone();
    assert_eq!(
        (
            &pro["tier"],
            &pro["domains"],
            &pro["mailboxes"],
            &pro["daily_volume"]
        ),
        (&json!("pro"), &json!(7), &json!(40), &Value::Null)
    );

    // A member's plan is chosen in their row.
    let res = client
        .post(format!("{}/users/{alice}", w.app.base))
        .header("cookie", &cookie)
        .form(&[
            ("subscription_tier", "enterprise"),
            ("_csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, users) = w.app.get("/api/v1/users", &w.admin).await;
    let row = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == alice.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["subscription_tier"], "enterprise", "{row}");
}

#[tokio::test]
async fn two_bulks_that_fit_alone_but_not_together_create_one() {
    let w = world().await;
    let (_, alice) = w.app.member(&w.admin, "alice@example.com").await;
    set_limits(&w, &w.admin, "free", json!({ "mailboxes": 5 })).await;
    let domain = member_domain(&w, &alice, "race.test").await;
    // Both pass the early check, then meet at the one writer.
    let (one, two) = tokio::join!(
        bulk_as(&w, &alice, &domain, 3),
        bulk_as(&w, &alice, &domain, 3)
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::FORBIDDEN],
        "{one:?} {two:?}"
    );
    let (_, page) = w.app.get("/api/v1/inboxes", &alice).await;
    assert_eq!(page["total"], 3);
}
