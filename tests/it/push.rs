//! One-click push to Instantly, Smartlead and Reply.io through the real
//! server, against local doubles of their account APIs: the request shape
//! each tool gets, one outcome per mailbox through duplicates, refusals,
//! 429s and 500s, refused keys, and keys saved sealed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::at_rest::{contains, db_bytes};
use crate::domains::{IPV4, World, world_around};
use crate::helpers::{Options, error_code};
use crate::inboxes::{Control, bulk, with_domain};
use crate::support::sequencers::{Fault, Kind, SequencerDouble};
use inboxgrove::config::{DomainArgs, SequencerArgs};

const KEY: &str = "sk_live_9f8e7d6c5b4a";

struct Fixture {
    w: World,
    instantly: SequencerDouble,
    smartlead: SequencerDouble,
    replyio: SequencerDouble,
    domain: String,
    /// (mailbox id, email), in the order created.
    mailboxes: Vec<(String, String)>,
}

async fn fixture(quantity: usize) -> Fixture {
    let instantly = SequencerDouble::start(Kind::Instantly, KEY).await;
    let smartlead = SequencerDouble::start(Kind::Smartlead, KEY).await;
    let replyio = SequencerDouble::start(Kind::ReplyIo, KEY).await;
    let w = world_around(Options {
        domains: DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        sequencers: SequencerArgs {
            instantly_api_url: Some(instantly.base_url()),
            smartlead_api_url: Some(smartlead.base_url()),
            replyio_api_url: Some(replyio.base_url()),
        },
        ..Default::default()
    })
    .await;
    let domain = with_domain(&w, "push.test").await;
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": quantity, "naming_scheme": "random",
                "daily_limit": 35, "enable_warmup": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let mailboxes = created["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["inbox_id"].as_str().unwrap().to_owned(),
                i["email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Fixture {
        w,
        instantly,
        smartlead,
        replyio,
        domain,
        mailboxes,
    }
}

impl Fixture {
    async fn push(&self, tool: &str, body: Value, token: &str) -> (StatusCode, Value) {
        self.w
            .app
            .post(
                &format!("/api/v1/integrations/{tool}/push"),
                body,
                Some(token),
            )
            .await
    }

    fn outcome_of<'a>(report: &'a Value, email: &str) -> &'a Value {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == email)
            .unwrap_or_else(|| panic!("no result for {email} in {report}"))
    }
}

#[tokio::test]
async fn instantly_gets_each_mailbox_with_its_real_credentials() {
    let f = fixture(5).await;
    let emails: Vec<&str> = f.mailboxes.iter().map(|(_, e)| e.as_str()).collect();
    f.instantly.existing(emails[1]);
    f.instantly
        .refuse(emails[2], "IMAP connection failed: could not connect");
    // The first calls meet a rate limit and an outage; both are retried.
    f.instantly
        .fail_next(&[Fault::RateLimited, Fault::ServerError]);

    let (status, report) = f
        .push(
            "instantly",
            json!({ "domain_id": f.domain, "api_key": KEY }),
            &f.w.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["tool"], "instantly");
    assert_eq!(report["results"].as_array().unwrap().len(), 5);
    assert_eq!(
        (
            &report["created"],
            &report["already_exists"],
            &report["failed"]
        ),
        (&json!(3), &json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(
        Fixture::outcome_of(&report, emails[1])["outcome"],
        "already_exists"
    );
    let refused = Fixture::outcome_of(&report, emails[2]);
    assert_eq!(refused["outcome"], "failed");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("IMAP connection failed"),
        "{refused}"
    );

    // What Instantly received: bearer key, provider code 1, integer ports,
    // and passwords that log in here.
    let seen = f.instantly.seen();
    assert!(seen.iter().all(|s| s.key.as_deref() == Some(KEY)));
    let creates: Vec<_> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.body["email"] != emails[2])
        .filter(|s| s.path == "/api/v2/accounts")
        .collect();
    assert_eq!(creates.len(), 3, "{creates:#?}");
    let kumo = Control::of(&f.w.app);
    for c in &creates {
        let b = &c.body;
        assert_eq!(b["provider_code"], 1);
        assert_eq!(b["imap_port"], 993);
        assert_eq!(b["smtp_port"], 587);
        assert_eq!(b["daily_limit"], 35);
        assert_eq!(b["imap_username"], b["email"]);
        assert_eq!(b["smtp_host"], "mail.push.test");
        assert!(b["warmup"].is_object(), "warming mailboxes turn warmup on");
        let (status, _) = kumo
            .auth(
                b["email"].as_str().unwrap(),
                b["smtp_password"].as_str().unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // The existing account was looked up, never posted.
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "POST" && s.body["email"] == emails[1])
    );
    // The 429 and the 500 were answered before the 5 look-ups went through.
    let gets = seen.iter().filter(|s| s.method == "GET").count();
    assert_eq!(gets, 5 + 2);
    assert_eq!(f.instantly.accounts().len(), 4);

    // Pushing again changes nothing: all are there but the refused one.
    let (_, again) = f
        .push(
            "instantly",
            json!({ "domain_id": f.domain, "api_key": KEY }),
            &f.w.admin,
        )
        .await;
    assert_eq!(
        (&again["created"], &again["already_exists"]),
        (&json!(0), &json!(4))
    );

    // Each push is audited as a credential export, with its counts and
    // never the key.
    let rows = f.w.app.audit_rows(&f.w.admin).await;
    let pushes: Vec<&Value> = rows
        .iter()
        .filter(|r| r["metadata"]["credential_export"] == "push:instantly")
        .collect();
    assert_eq!(pushes.len(), 2, "{rows:#?}");
    assert_eq!(pushes[1]["metadata"]["created"], 3);
    assert!(!serde_json::to_string(&rows).unwrap().contains(KEY));
}

#[tokio::test]
async fn smartlead_gets_its_fields_with_the_key_in_the_query() {
    let f = fixture(3).await;
    let (ids, emails): (Vec<&str>, Vec<&str>) = f
        .mailboxes
        .iter()
        .map(|(i, e)| (i.as_str(), e.as_str()))
        .unzip();
    f.smartlead.existing(emails[0]);
    let (status, report) = f
        .push(
            "smartlead",
            json!({ "mailbox_ids": ids, "api_key": KEY,
                    "options": { "warmup": false, "daily_limit": 20 } }),
            &f.w.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            &report["created"],
            &report["already_exists"],
            &report["failed"]
        ),
        (&json!(2), &json!(1), &json!(0)),
        "{report}"
    );
    // Results come back in the order the ids were given.
    let order: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mailbox_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ids);
    let seen = f.smartlead.seen();
    assert!(seen.iter().all(|s| s.key.as_deref() == Some(KEY)));
    assert_eq!(seen[0].path, "/api/v1/email-accounts/", "listed first");
    let saves: Vec<_> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(saves.len(), 2);
    for s in saves {
        assert_eq!(s.path, "/api/v1/email-accounts/save");
        assert_eq!(s.body["id"], Value::Null);
        assert_eq!(s.body["warmup_enabled"], false);
        assert_eq!(s.body["max_email_per_day"], 20);
        assert_eq!(s.body["user_name"], s.body["from_email"]);
        assert_eq!(s.body["imap_port"], 993);
    }
}

#[tokio::test]
async fn replyio_duplicates_and_outages_get_their_own_outcome() {
    let f = fixture(3).await;
    let emails: Vec<&str> = f.mailboxes.iter().map(|(_, e)| e.as_str()).collect();
    f.replyio.existing(emails[2]);
    // More 500s than the retries allow: that mailbox fails, the rest go on.
    f.replyio.down_for(emails[1], 4);
    let (status, report) = f
        .push(
            "replyio",
            json!({ "domain_id": f.domain, "api_key": KEY }),
            &f.w.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            &report["created"],
            &report["already_exists"],
            &report["failed"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{report}"
    );
    let failed = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "failed")
        .unwrap();
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("Reply.io failed (HTTP 500)"),
        "{failed}"
    );
    let seen = f.replyio.seen();
    let tries = seen.iter().filter(|s| s.body["email"] == emails[1]).count();
    assert_eq!(tries, 4, "each of the policy's attempts");
    let post = seen
        .into_iter()
        .find(|s| s.body["email"] == emails[0])
        .unwrap();
    assert_eq!(post.path, "/v3/email-accounts");
    assert_eq!(post.key.as_deref(), Some(KEY));
    assert_eq!(post.body["smtpSsl"], true);
    assert_eq!(post.body["dailyLimit"], 35);
    assert!(post.body["senderName"].as_str().unwrap().contains(' '));
}

#[tokio::test]
async fn a_refused_key_fails_every_mailbox_without_calling_for_each() {
    let f = fixture(12).await;
    let (status, report) = f
        .push(
            "instantly",
            json!({ "domain_id": f.domain, "api_key": "wrong-key", "save_key": true }),
            &f.w.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["failed"], 12);
    assert_eq!(report["key_saved"], false, "a refused key is not saved");
    let message = report["results"][11]["message"].as_str().unwrap();
    assert!(message.contains("refused the API key"), "{message}");
    assert!(!message.contains("wrong-key"));
    // At most the calls already in flight when the first refusal came.
    assert!(
        f.instantly.seen().len() <= 4,
        "{}",
        f.instantly.seen().len()
    );
    let (_, keys) = f.w.app.get("/api/v1/integrations", &f.w.admin).await;
    assert_eq!(keys["items"][0]["saved"], false);
}

#[tokio::test]
async fn saved_keys_are_sealed_listed_by_hint_and_used_when_none_is_given() {
    let f = fixture(2).await;
    let app = &f.w.app;
    let body = json!({ "domain_id": f.domain });
    let (status, missing) = f.push("smartlead", body.clone(), &f.w.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");
    assert_eq!(error_code(&missing), "api_key_missing");

    let (status, saved) = app
        .call(
            Method::PUT,
            "/api/v1/integrations/smartlead",
            Some(json!({ "api_key": format!("  {KEY}\n") })),
            Some(&f.w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["hint"], "5b4a");
    let (_, keys) = app.get("/api/v1/integrations", &f.w.admin).await;
    let listed = keys.to_string();
    assert!(!listed.contains(KEY), "{listed}");
    let tools: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["instantly", "smartlead", "replyio"]);
    assert_eq!(keys["items"][1]["saved"], true);

    let (status, report) = f.push("smartlead", body.clone(), &f.w.admin).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 2);
    assert!(
        f.smartlead
            .seen()
            .iter()
            .all(|s| s.key.as_deref() == Some(KEY))
    );
    assert!(!contains(&db_bytes(app.dir.path()), KEY), "sealed at rest");

    // Another user has no key of their own, and cannot use this one.
    let (_, member) = app.member(&f.w.admin, "m@example.com").await;
    let (_, theirs) = app.get("/api/v1/integrations", &member).await;
    assert_eq!(theirs["items"][1]["saved"], false);

    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/integrations/smartlead",
            None,
            Some(&f.w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/integrations/smartlead",
            None,
            Some(&f.w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.push("smartlead", body, &f.w.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A push that works with save_key keeps the key.
    let (_, report) = f
        .push(
            "replyio",
            json!({ "domain_id": f.domain, "api_key": KEY, "save_key": true }),
            &f.w.admin,
        )
        .await;
    assert_eq!(report["key_saved"], true, "{report}");
    let (_, keys) = app.get("/api/v1/integrations", &f.w.admin).await;
    assert_eq!(keys["items"][2]["saved"], true);
}

#[tokio::test]
async fn bad_pushes_are_refused_before_any_call() {
    let f = fixture(1).await;
    let app = &f.w.app;
    let (_, member) = app.member(&f.w.admin, "other@example.com").await;
    let cases = [
        (
            "instantly",
            json!({ "domain_id": f.domain, "api_key": KEY }),
            member.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            "instantly",
            json!({ "mailbox_ids": [f.mailboxes[0].0], "api_key": KEY }),
            member.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            "mailchimp",
            json!({ "domain_id": f.domain, "api_key": KEY }),
            f.w.admin.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            "instantly",
            json!({ "api_key": KEY }),
            f.w.admin.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "instantly",
            json!({ "domain_id": f.domain, "api_key": "two words" }),
            f.w.admin.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "instantly",
            json!({ "domain_id": f.domain, "api_key": KEY, "options": { "daily_limit": 0 } }),
            f.w.admin.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "instantly",
            json!({ "domain_id": f.domain, "api_key": KEY, "options": { "turbo": true } }),
            f.w.admin.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "instantly",
            json!({ "domain_id": f.domain, "save_key": true }),
            f.w.admin.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (tool, body, token, want) in cases {
        let (status, answer) = f.push(tool, body.clone(), token).await;
        assert_eq!(status, want, "{tool} {body}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    assert!(f.instantly.seen().is_empty());
}
