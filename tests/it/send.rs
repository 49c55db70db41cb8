//! Send-check over HTTP: who may send as whom (the From and Sender headers),
//! only from a verified domain, and giving a count back.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::world;
use crate::inboxes::{Control, bulk, with_domain};
use crate::kumo::check;

/// A world with one active-sending mailbox on `domain`; its address.
async fn sender(domain: &str, daily_limit: u32) -> (crate::domains::World, String) {
    let w = world().await;
    let id = with_domain(&w, domain).await;
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": id, "quantity": 1, "daily_limit": daily_limit, "enable_warmup": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let email = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    (w, email)
}

async fn send_check(kumo: &Control, body: Value) -> (StatusCode, Value) {
    kumo.call(Method::POST, "/send-check", Some(body)).await
}

#[tokio::test]
async fn the_from_header_must_be_the_mailbox_and_nothing_else() {
    let (w, me) = sender("mine.test", 100).await;
    w.app.set_domain_status("mine.test", "active");
    let kumo = Control::of(&w.app);
    let with = |from: Value, sender: Value| {
        json!({
            "authn_id": me, "envelope_from": me, "from_headers": from,
            "sender_headers": sender, "recipients": ["r@example.net"]
        })
    };
    let refused = [
        (
            json!([format!("<ceo@bank.example> (<{me}>)")]),
            json!({}),
            "must be",
        ),
        (
            json!([format!("{me}, ceo@bank.example")]),
            json!({}),
            "exactly one address",
        ),
        (json!([me.clone(), me.clone()]), json!([]), "2 From headers"),
        (
            json!([format!("\"{me}\" <ceo@bank.example>")]),
            json!({}),
            "must be",
        ),
        (
            json!([format!("\"{me}\" <{me}>")]),
            json!({}),
            "display name",
        ),
        (json!({}), json!({}), "no From header"),
        (json!([]), json!([]), "no From header"),
        (
            json!([me.clone()]),
            json!(["ceo@bank.example"]),
            "Sender header must be",
        ),
    ];
    for (from, sender, says) in refused {
        let (status, d) = send_check(&kumo, with(from.clone(), sender)).await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(
            (&d["allow"], &d["code"]),
            (&json!(false), &json!(550)),
            "{from}: {d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("5.7.1 ") && reason.contains(says),
            "{from}: {reason}"
        );
    }
    let (_, ok) = send_check(
        &kumo,
        with(
            json!([format!("=?utf-8?q?J=C3=BCrgen?= <{me}>")]),
            json!([me.clone()]),
        ),
    )
    .await;
    assert_eq!(ok["allow"], true, "{ok}");

    // The old shape, or another type, is a JSON error, not a decision.
    for bad in [
        json!({ "authn_id": me, "envelope_from": me, "header_from": me, "recipients": [] }),
        json!({ "authn_id": me, "envelope_from": me, "from_headers": me, "sender_headers": [], "recipients": [] }),
        json!({ "authn_id": me, "envelope_from": me, "from_headers": { "1": me }, "sender_headers": [], "recipients": [] }),
    ] {
        let (status, e) = send_check(&kumo, bad).await;
        assert!(status.is_client_error(), "{status} {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
}

#[tokio::test]
async fn a_mailbox_sends_only_while_its_domain_is_verified() {
    let (w, me) = sender("waiting.test", 100).await;
    let kumo = Control::of(&w.app);
    let message = check(&me, &me, &["r@example.net"]);
    for state in ["pending", "publishing", "verifying", "awaiting_dns"] {
        w.app.set_domain_status("waiting.test", state);
        let (_, d) = send_check(&kumo, message.clone()).await;
        assert_eq!(
            (&d["allow"], &d["code"]),
            (&json!(false), &json!(451)),
            "{d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("4.7.1 waiting.test is {state}"))
                && reason.contains("try again later"),
            "{reason}"
        );
    }
    // A status change holds from the next message on.
    w.app.set_domain_status("waiting.test", "active");
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    w.app.set_domain_status("waiting.test", "failed");
    let (_, d) = send_check(&kumo, message.clone()).await;
    assert_eq!(d["code"], 550, "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("5.7.1 waiting.test")
    );
    // Refused messages were not counted.
    let (_, seen) = kumo
        .call(Method::GET, &format!("/mailboxes/{me}"), None)
        .await;
    assert_eq!(seen["sent_today"], 1);
}

#[tokio::test]
async fn a_count_given_back_frees_the_send_and_never_goes_below_zero() {
    let (w, me) = sender("release.test", 1).await;
    w.app.set_domain_status("release.test", "active");
    let kumo = Control::of(&w.app);
    let message = check(&me, &me, &["r@example.net"]);
    let release = |authn: &str| {
        kumo.call(
            Method::POST,
            "/send-release",
            Some(json!({ "authn_id": authn })),
        )
    };
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    assert_eq!(send_check(&kumo, message.clone()).await.1["code"], 452);
    let (status, released) = release(&me).await;
    assert_eq!(
        (status, &released["sent_today"]),
        (StatusCode::OK, &json!(0))
    );
    // The limit has room again.
    assert_eq!(send_check(&kumo, message.clone()).await.1["allow"], true);
    release(&me).await;
    let (status, twice) = release(&me.to_uppercase()).await;
    assert_eq!((status, &twice["sent_today"]), (StatusCode::OK, &json!(0)));

    let (status, e) = release("ghost@release.test").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, e) = release("not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "authn_id");
    let (status, e) = kumo
        .call(
            Method::POST,
            "/send-release",
            Some(json!({ "authn_id": me, "count": 2 })),
        )
        .await;
    assert!(status.is_client_error(), "{e}");
}
