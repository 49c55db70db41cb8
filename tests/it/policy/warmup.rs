//! Warmup mail through the policy: the engine's marker header is read,
//! handed to send-check with the Message-ID, and stripped before signing
//! whether or not it is valid, so it never leaves the host.

use chrono::NaiveDate;
use inboxgrove::clock::Clock;
use inboxgrove::warmup::marker;

use super::*;
use crate::domains::{IPV4, world_with};
use crate::helpers::manual_clock;
use crate::send::{enrol, marker_for, warmup_count};

/// The policy's name for the marker header is the appliance's.
#[test]
fn the_policy_strips_the_header_the_appliance_verifies() {
    let source = crate::support::kumo_stub::policy_source();
    assert!(
        source.contains(&format!("local WARMUP_MARKER = '{}'\n", marker::HEADER)),
        "kumo-policy/init.lua must name the marker {}",
        marker::HEADER
    );
}

/// The send-check bodies the policy posted, newest last.
fn send_checks(stub: &KumoStub) -> Vec<Value> {
    stub.http_calls()
        .iter()
        .filter(|c| c.url.ends_with("/kumo/v1/send-check"))
        .map(|c| serde_json::from_str(c.body.as_deref().unwrap()).unwrap())
        .collect()
}

/// Whether the message's bytes name the marker anywhere.
fn carries_marker(stub: &KumoStub, msg: &LuaTable) -> bool {
    stub.raw(msg)
        .to_ascii_lowercase()
        .contains(&marker::HEADER.to_ascii_lowercase())
}

/// A world on a manual clock with two mailboxes (daily limit 2) on a
/// verified domain: the first warming and enrolled today (day 1 of its
/// warmup, a quiet day for campaign mail), the second active.
async fn pool() -> (World, Vec<Mailbox>, NaiveDate) {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let domain = with_domain(&w, "pool.test").await;
    for r in w.domain(&domain).await["records"].as_array().unwrap() {
        create_by_hand(&w, "pool.test", r);
    }
    assert_eq!(w.verify(&domain).await["status"], "active");
    let (status, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 1, "daily_limit": 2, "enable_warmup": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let inbox = &created["inboxes"][0];
    assert_eq!(inbox["status"], "warming", "{inbox}");
    let warming = Mailbox {
        email: inbox["email"].as_str().unwrap().to_owned(),
        password: inbox["password"].as_str().unwrap().to_owned(),
        id: inbox["inbox_id"].as_str().unwrap().to_owned(),
    };
    let today = clock.now().date_naive();
    enrol(&w.app, &warming.id, today);
    let mut boxes = vec![warming];
    boxes.extend(mailboxes_on(&w, &domain, 1, 2).await);
    (w, boxes, today)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_marker_sends_warmup_mail_on_a_quiet_day_and_never_leaves_the_host() {
    let (w, boxes, today) = pool().await;
    let a = &boxes[0];
    let kumo = Control::of(&w.app);
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, a);

    // `mail` gives every message the Message-ID <m1@grove.test>.
    let good = marker_for(&w.app, "<m1@grove.test>", &a.email);
    let msg = mail(
        &stub,
        &conn,
        &a.email,
        "peer@example.net",
        &[(marker::HEADER, &good)],
    );
    let out = stub.receive(&msg, &conn);
    assert!(returned_nil(&out), "{out:?}");
    let asked = send_checks(&stub);
    assert_eq!(asked[0]["warmup_marker"], json!(good));
    assert_eq!(asked[0]["message_id"], "<m1@grove.test>");

    // Counted as warmup, not against the campaign allowance of 0.
    assert_eq!(warmup_count(&w.app, &a.id), (1, Some(today.to_string())));
    assert_eq!(sent_today(&kumo, &a.email).await, 0);

    // The signed copy carries no marker, and is signed.
    assert_eq!(stub.header(&msg, marker::HEADER), None);
    assert!(!carries_marker(&stub, &msg), "{}", stub.raw(&msg));
    assert!(stub.header(&msg, "DKIM-Signature").is_some());

    // Campaign mail of the same mailbox waits for the end of its quiet
    // week; a message without the marker, or without a Message-ID, sends
    // no field for what it lacks.
    let campaign = mail(&stub, &conn, &a.email, "prospect@example.net", &[]);
    let out = stub.receive(&campaign, &conn);
    let (code, text) = out.rejected();
    assert_eq!(code, 452);
    assert!(
        text.contains("is warming up: it may send 0 campaign messages today (day 1"),
        "{text}"
    );
    let last = send_checks(&stub).pop().unwrap();
    assert_eq!(
        (last.get("warmup_marker"), &last["message_id"]),
        (None, &json!("<m1@grove.test>")),
        "{last}"
    );
    let bare = stub.message(
        json!({ "sender": a.email, "recipients": ["prospect@example.net"],
                "headers": [["From", a.email], ["To", "prospect@example.net"]], "body": "Hi\r\n" }),
        &conn,
    );
    assert_eq!(stub.receive(&bare, &conn).rejected().0, 452);
    let last = send_checks(&stub).pop().unwrap();
    let fields = last.as_object().unwrap();
    assert!(
        !fields.contains_key("warmup_marker") && !fields.contains_key("message_id"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_marker_is_stripped_too_and_counts_as_campaign_mail() {
    let (w, boxes, _) = pool().await;
    let a = &boxes[0];
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, a);

    // A marker made for another message, first; the valid one after it is
    // not the one read. Both go, whatever the answer.
    let other = marker_for(&w.app, "<elsewhere@grove.test>", &a.email);
    let good = marker_for(&w.app, "<m1@grove.test>", &a.email);
    let msg = mail(
        &stub,
        &conn,
        &a.email,
        "peer@example.net",
        &[
            (marker::HEADER, &other),
            (&marker::HEADER.to_ascii_lowercase(), &good),
        ],
    );
    let out = stub.receive(&msg, &conn);
    let (code, text) = out.rejected();
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("is warming up"), "{text}");
    assert!(!carries_marker(&stub, &msg), "{}", stub.raw(&msg));
    assert_eq!(warmup_count(&w.app, &a.id).0, 0);

    // A mailbox past its quiet days would have sent it as campaign mail,
    // counted there, and still without the marker.
    let b = &boxes[1];
    let conn = submission(&stub);
    login(&stub, &conn, b);
    let forged = mail(
        &stub,
        &conn,
        &b.email,
        "peer@example.net",
        &[(marker::HEADER, "00ff")],
    );
    assert!(returned_nil(&stub.receive(&forged, &conn)));
    assert!(!carries_marker(&stub, &forged), "{}", stub.raw(&forged));
    let kumo = Control::of(&w.app);
    assert_eq!(sent_today(&kumo, &b.email).await, 1);
    assert_eq!(warmup_count(&w.app, &b.id).0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_mailbox_sends_campaign_mail_up_to_its_daily_limit_and_warmup_apart() {
    let (w, boxes, _) = pool().await;
    let b = &boxes[1];
    let kumo = Control::of(&w.app);
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, b);
    for to in ["one@example.net", "two@example.net"] {
        let msg = mail(&stub, &conn, &b.email, to, &[]);
        assert!(returned_nil(&stub.receive(&msg, &conn)), "{to}");
    }
    let over = mail(&stub, &conn, &b.email, "three@example.net", &[]);
    assert_eq!(
        stub.receive(&over, &conn).rejected(),
        (452, "4.7.1 daily sending limit reached; try again tomorrow")
    );
    // Its limit reached, warmup mail still goes, counted apart.
    let good = marker_for(&w.app, "<m1@grove.test>", &b.email);
    let warm = mail(
        &stub,
        &conn,
        &b.email,
        "peer@example.net",
        &[(marker::HEADER, &good)],
    );
    assert!(returned_nil(&stub.receive(&warm, &conn)));
    assert_eq!(sent_today(&kumo, &b.email).await, 2);
    assert_eq!(warmup_count(&w.app, &b.id).0, 1);
}
