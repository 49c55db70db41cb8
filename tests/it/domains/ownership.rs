//! Issue 12, point 1: the server's Cloudflare token publishes only domains
//! of admins and of members an admin allowed; a given zone id must be the
//! domain's own (closest enclosing) zone, checked before anything is
//! stored.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TOKEN, World, world};

const WAIT: Duration = Duration::from_secs(20);

/// Sets the server-wide Cloudflare token, as an admin does on the
/// settings page.
async fn server_token(w: &World) {
    let (status, body) = w
        .app
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(json!({ "cloudflare_api_token": TOKEN })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn add_as(w: &World, token: &str, body: Value) -> (StatusCode, Value) {
    w.app.post("/api/v1/domains/add", body, Some(token)).await
}

async fn set_flag(w: &World, as_token: &str, user: &str, value: Value) -> (StatusCode, Value) {
    w.app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{user}"),
            Some(json!({ "may_use_server_token": value })),
            Some(as_token),
        )
        .await
}

/// The user row as `GET /api/v1/users` shows it to the admin.
async fn listed_user(w: &World, id: &str) -> Value {
    let (status, list) = w.app.get("/api/v1/users", &w.admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap_or_else(|| panic!("no user {id}: {list}"))
        .clone()
}

async fn domain_count(w: &World) -> usize {
    let (_, list) = w.app.get("/api/v1/domains", &w.admin).await;
    list["items"].as_array().unwrap().len()
}

fn managed(w: &World, zone: &str) -> usize {
    let ours = |r: &&crate::support::zones::Record| r.comment.is_some();
    w.zones.records(zone).iter().filter(ours).count()
}

#[tokio::test]
async fn a_member_gets_the_server_token_only_while_an_admin_allows_it() {
    let w = world().await;
    server_token(&w).await;
    let victim = w.zones.add_zone("victim.test");
    w.zones.add_record(
        "victim.test",
        "TXT",
        "victim.test",
        "\"v=spf1 include:_spf.google.com ~all\"",
        None,
    );
    w.zones.add_zone("allowed.test");
    let before = w.zones.records("victim.test");
    let (alice_id, alice) = w.app.member(&w.admin, "alice@example.com").await;
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        false
    );
    w.cloudflare.clear_requests();

    // Without the flag and without a token of her own: manual DNS, and the
    // answer says why. The server's token is never used for her.
    let (status, added) = add_as(&w, &alice, json!({ "domain_name": "victim.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["dns_mode"], "manual");
    assert_eq!(added["status"], "awaiting_dns");
    let note = added["dns_note"].as_str().unwrap();
    assert!(
        note.contains("only domains of admins and of members an admin allowed")
            && note.contains("your own cloudflare_api_token"),
        "{note}"
    );
    let id = added["domain_id"].as_str().unwrap().to_owned();
    w.verify(&id).await;
    assert_eq!(w.cloudflare.requests(), Vec::<String>::new());
    assert_eq!(
        w.zones.records("victim.test"),
        before,
        "the zone is untouched"
    );

    // A zone or account id would have the server's token look zones up for
    // her: refused, and nothing stored or asked.
    for (field, value) in [
        ("cloudflare_zone_id", json!(victim)),
        (
            "cloudflare_account_id",
            json!("acct0000000000000000000000000001"),
        ),
    ] {
        let body = json!({ "domain_name": "other.victim.test", field: value });
        let (status, answer) = add_as(&w, &alice, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("manual DNS"),
            "{answer}"
        );
    }
    assert_eq!(domain_count(&w).await, 1);
    assert_eq!(w.cloudflare.requests(), Vec::<String>::new());

    // She cannot allow herself; an admin can.
    let (status, answer) = set_flag(&w, &alice, &alice_id, json!(true)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        false
    );
    let (status, user) = set_flag(&w, &w.admin, &alice_id, json!(true)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["may_use_server_token"], true);
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        true
    );

    // Now the server's token publishes her domain.
    let (status, added) = add_as(&w, &alice, json!({ "domain_name": "allowed.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["dns_mode"], "cloudflare");
    let allowed = added["domain_id"].as_str().unwrap().to_owned();
    let active = w.until_status(&allowed, "active", WAIT).await;
    assert!(
        active["dns_note"]
            .as_str()
            .unwrap()
            .contains("server's token"),
        "{active}"
    );
    assert_eq!(managed(&w, "allowed.test"), 5, "A, MX, SPF, DKIM, DMARC");
    assert_eq!(w.cloudflare.batch_calls(), 1);

    // Taken back: publishing again is refused and says why; her own
    // removal of the records too. An admin may still take them back.
    let (status, _) = set_flag(&w, &w.admin, &alice_id, json!(false)).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/api/v1/domains/{allowed}");
    let patch = Some(json!({ "dmarc_policy": "quarantine" }));
    let (status, answer) = w.app.call(Method::PATCH, &path, patch, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let failed = w.until_status(&allowed, "failed", WAIT).await;
    let why = failed["last_error"].as_str().unwrap();
    assert!(why.contains("may_use_server_token"), "{why}");
    assert_eq!(
        w.cloudflare.batch_calls(),
        1,
        "nothing sent after the flag went"
    );

    let removal = format!("{path}?remove_records=true");
    let (status, answer) = w
        .app
        .call(Method::DELETE, &removal, None, Some(&alice))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "server_token_not_allowed");
    assert_eq!(managed(&w, "allowed.test"), 5, "A, MX, SPF, DKIM, DMARC");
    assert_eq!(
        w.app.get(&path, &alice).await.0,
        StatusCode::OK,
        "still there"
    );
    let (status, _) = w
        .app
        .call(Method::DELETE, &removal, None, Some(&w.admin))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(managed(&w, "allowed.test"), 0);
}

#[tokio::test]
async fn a_member_without_the_flag_publishes_with_her_own_token() {
    let w = world().await;
    server_token(&w).await;
    w.zones.add_zone("own.test");
    w.cloudflare.user_token("bobs-own-token-123");
    let (_, bob) = w.app.member(&w.admin, "bob@example.com").await;
    let body = json!({ "domain_name": "own.test", "cloudflare_api_token": "bobs-own-token-123" });
    let (status, added) = add_as(&w, &bob, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let active = w.until_status(&id, "active", WAIT).await;
    assert!(
        active["dns_note"].as_str().unwrap().contains("own token"),
        "{active}"
    );
    assert_eq!(managed(&w, "own.test"), 5, "A, MX, SPF, DKIM, DMARC");
}

#[tokio::test]
async fn a_zone_id_of_another_zone_is_refused_before_anything_is_stored() {
    let w = world().await;
    w.zones.add_zone("right.test");
    let other = w.zones.add_zone("other.test");
    let child = w.zones.add_zone("deep.right.test");
    for (zone, names) in [(&other, "other.test"), (&child, "deep.right.test")] {
        let body = json!({
            "domain_name": "right.test", "cloudflare_api_token": TOKEN, "cloudflare_zone_id": zone,
        });
        let (status, answer) = w.add(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "cloudflare_zone_id", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(names) && message.contains("neither"),
            "{message}"
        );
    }
    let (status, answer) = w
        .add(json!({
            "domain_name": "right.test", "cloudflare_api_token": TOKEN,
            "cloudflare_zone_id": "0123456789abcdef0123456789abcdef",
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "cloudflare_zone_id", "{answer}");
    assert_eq!(domain_count(&w).await, 0, "no domain row");
    assert_eq!(w.cloudflare.batch_calls(), 0, "no record at Cloudflare");
    assert!(w.zones.records("right.test").is_empty());

    // The right id is taken and published into.
    let right = w.zones.lock()[0].id.clone();
    let body = json!({
        "domain_name": "right.test", "cloudflare_api_token": TOKEN, "cloudflare_zone_id": right,
    });
    let (status, added) = w.add(body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    assert_eq!(added["cloudflare_zone_id"], right.as_str());
    let id = added["domain_id"].as_str().unwrap().to_owned();
    w.until_status(&id, "active", WAIT).await;
    assert_eq!(managed(&w, "right.test"), 5, "A, MX, SPF, DKIM, DMARC");
    assert!(w.zones.records("other.test").is_empty());
}

#[tokio::test]
async fn the_closest_enclosing_zone_is_the_one_published_into() {
    let w = world().await;
    let parent = w.zones.add_zone("example.test");
    let closest = w.zones.add_zone("a.example.test");

    // Given the parent's id while a closer zone answers for the name.
    let body = json!({
        "domain_name": "mail.a.example.test", "cloudflare_api_token": TOKEN,
        "cloudflare_zone_id": parent,
    });
    let (status, answer) = w.add(body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "cloudflare_zone_id");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&closest),
        "names the closer zone: {answer}"
    );
    assert_eq!(domain_count(&w).await, 0);

    // Found by name: the closest enclosing zone, and DNS (which answers
    // from the most specific zone) sees every record.
    let body = json!({ "domain_name": "mail.a.example.test", "cloudflare_api_token": TOKEN });
    let (status, added) = w.add(body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    let id = added["domain_id"].as_str().unwrap().to_owned();
    let active = w.until_status(&id, "active", WAIT).await;
    assert_eq!(active["cloudflare_zone_id"], closest.as_str());
    assert_eq!(managed(&w, "a.example.test"), 5, "A, MX, SPF, DKIM, DMARC");
    assert!(w.zones.records("example.test").is_empty());
}

#[tokio::test]
async fn bad_values_of_the_new_fields_are_refused_and_change_nothing() {
    let w = world().await;
    let (alice_id, _) = w.app.member(&w.admin, "alice@example.com").await;
    let before = listed_user(&w, &alice_id).await;
    for bad in [json!("yes"), json!(1), json!([true]), json!({})] {
        let (status, answer) = set_flag(&w, &w.admin, &alice_id, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
        assert_eq!(answer["error"]["field"], "may_use_server_token", "{answer}");
    }
    assert_eq!(listed_user(&w, &alice_id).await, before, "nothing stored");

    w.zones.add_zone("zoned.test");
    let long = "a".repeat(65);
    for bad in [
        json!(""),
        json!("  "),
        json!("../user/tokens"),
        json!("a b"),
        json!(long),
        json!(7),
    ] {
        let body = json!({
            "domain_name": "zoned.test", "cloudflare_api_token": TOKEN, "cloudflare_zone_id": bad,
        });
        let (status, answer) = w.add(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
        assert_eq!(
            answer["error"]["field"], "cloudflare_zone_id",
            "{bad}: {answer}"
        );
    }
    assert_eq!(domain_count(&w).await, 0);
    assert_eq!(
        w.cloudflare.requests(),
        Vec::<String>::new(),
        "refused before any call"
    );
}

#[tokio::test]
async fn an_admin_allows_a_member_on_the_users_page_with_the_csrf_token() {
    let w = world().await;
    let (alice_id, _) = w.app.member(&w.admin, "alice@example.com").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = crate::web::form_sign_in(&w.app, &client).await;
    let (csrf, page) = crate::web::page_with_csrf(&w.app, &client, &cookie, "/users").await;
    assert!(
        page.contains("not allowed") && page.contains(">Allow</button>"),
        "{page}"
    );
    let url = format!("{}/users/{alice_id}", w.app.base);
    let post = |form: Vec<(&'static str, String)>| {
        client
            .post(&url)
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };

    let res = post(vec![("may_use_server_token", "true".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        false
    );

    let form = vec![
        ("may_use_server_token", "true".into()),
        ("_csrf", csrf.clone()),
    ];
    let res = post(form).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        true
    );
    let (_, page) = crate::web::page_with_csrf(&w.app, &client, &cookie, "/users").await;
    assert!(page.contains(">Withdraw</button>"), "{page}");

    let form = vec![("may_use_server_token", "false".into()), ("_csrf", csrf)];
    assert_eq!(post(form).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(
        listed_user(&w, &alice_id).await["may_use_server_token"],
        false
    );
}
