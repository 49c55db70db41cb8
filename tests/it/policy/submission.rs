//! Port 587 after DATA: the send check and its limits, List-Unsubscribe,
//! and DKIM signing with the key InboxGrove holds.

use super::*;
use crate::kumo::record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_checked_counted_made_unsubscribable_and_signed() {
    let w = world().await;
    let boxes = mailboxes(&w, "send.test", 2, 1).await;
    let (a, b) = (&boxes[0], &boxes[1]);
    let kumo = Control::of(&w.app);
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, a);

    let msg = mail(&stub, &conn, &a.email, "Prospect@Example.net", &[]);
    let out = stub.fire("smtp_server_message_received", (msg.clone(), conn.clone()));
    assert!(returned_nil(&out), "{out:?}");
    assert_eq!(stub.meta(&msg, "mailbox_id"), json!(a.id));

    // RFC 8058: the appliance's one-click link and a mailto, plus the POST
    // marker; the link really unsubscribes (checked after the signing).
    let unsubscribe = stub.header(&msg, "List-Unsubscribe").unwrap();
    let url = unsubscribe
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix(&format!(">, <mailto:{}?subject=unsubscribe>", a.email)))
        .unwrap_or_else(|| panic!("{unsubscribe}"))
        .to_owned();
    assert!(url.starts_with(&format!("{}/u/", w.app.base)), "{url}");
    assert_eq!(
        stub.header(&msg, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // Signed last, with the domain's key from /dkim.
    let (_, key) = kumo.call(Method::GET, "/dkim/send.test", None).await;
    let signatures = stub.signatures(&msg);
    assert_eq!(signatures.len(), 1);
    assert_eq!(signatures[0]["signer"]["selector"], key["selector"]);
    let at_signing = signatures[0]["headers"].as_array().unwrap();
    assert!(at_signing.contains(&json!("List-Unsubscribe")));
    assert!(at_signing.contains(&json!("List-Unsubscribe-Post")));
    assert_eq!(stub.header_names(&msg)[0], "DKIM-Signature");
    let signer = &stub.signers()[0];
    assert_eq!(signer["domain"], "send.test");
    assert_eq!(signer["selector"], key["selector"]);
    assert_eq!(signer["key_data"], key["private_key_pem"]);
    assert_eq!(signer["over_sign"], true);
    for h in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ] {
        assert!(
            signer["headers"].as_array().unwrap().contains(&json!(h)),
            "{h}"
        );
    }

    // Daily limit 1: the next message waits for tomorrow (452); a spoofed
    // From is refused for good whatever the count.
    let again = mail(&stub, &conn, &a.email, "other@example.net", &[]);
    let out = stub.fire("smtp_server_message_received", (again, conn.clone()));
    let (code, text) = out.rejected();
    assert_eq!(code, 452);
    assert!(text.starts_with("4.7.1 "), "{text}");
    let spoof = stub.message(
        json!({ "sender": a.email, "recipients": ["x@example.net"],
                "headers": [["From", format!("Boss <{}>", b.email)]] }),
        &conn,
    );
    let out = stub.fire("smtp_server_message_received", (spoof, conn.clone()));
    let (code, text) = out.rejected();
    assert_eq!((code, text.contains("From header")), (550, true), "{text}");
    assert_eq!(sent_today(&kumo, &a.email).await, 1);

    // A hard bounce suppresses the address for every mailbox of the owner.
    let bounce = record(
        "Bounce",
        "policy-bounce-1",
        &b.email,
        "gone@example.net",
        json!({ "bounce_classification": "InvalidRecipient",
                "response": { "code": 550, "enhanced_code": { "class": 5, "subject": 1, "detail": 1 },
                              "content": "no such user", "command": null } }),
    );
    let (status, _) = kumo.call(Method::POST, "/events", Some(bounce)).await;
    assert_eq!(status, StatusCode::OK);
    let conn_b = submission(&stub);
    login(&stub, &conn_b, b);
    let out = stub.fire(
        "smtp_server_message_received",
        (
            mail(&stub, &conn_b, &b.email, "gone@example.net", &[]),
            conn_b.clone(),
        ),
    );
    let (code, text) = out.rejected();
    assert_eq!((code, text.contains("suppressed")), (550, true), "{text}");
    assert_eq!(sent_today(&kumo, &b.email).await, 0);

    // The prospect follows the link from the first message: from now on
    // no mailbox of this owner may write to them.
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let out = stub.fire(
        "smtp_server_message_received",
        (
            mail(&stub, &conn_b, &b.email, "prospect@example.net", &[]),
            conn_b.clone(),
        ),
    );
    let (code, text) = out.rejected();
    assert_eq!((code, text.contains("suppressed")), (550, true), "{text}");

    // The sender's own List-Unsubscribe is kept as it is. The domain's key
    // is fetched once and cached; the signer is built per message, since
    // KumoMTA cannot memoize a signer.
    let own = mail(
        &stub,
        &conn_b,
        &b.email,
        "friend@example.net",
        &[("List-Unsubscribe", "<mailto:leave@send.test>")],
    );
    let out = stub.fire("smtp_server_message_received", (own.clone(), conn_b));
    assert!(returned_nil(&out), "{out:?}");
    let values: Vec<String> = own
        .call_method("get_all_named_header_values", "List-Unsubscribe")
        .unwrap();
    assert_eq!(values, ["<mailto:leave@send.test>"]);
    assert_eq!(stub.header(&own, "List-Unsubscribe-Post"), None);
    assert_eq!(stub.signatures(&own).len(), 1);
    let key_fetches = stub
        .http_calls()
        .iter()
        .filter(|c| c.url.ends_with("/kumo/v1/dkim/send.test"))
        .count();
    assert_eq!(key_fetches, 1, "the key is memoized");
    assert!(stub.signers().len() >= 2, "a signer per message");

    // No appliance: 451, and nothing is signed.
    let down = policy_with_appliance_down(&w);
    let conn = down.conn(json!({
        "x_listener": "submission", "authn_id": b.email,
        "x_mailbox_email": b.email, "x_mailbox_id": b.id,
    }));
    let msg = mail(&down, &conn, &b.email, "late@example.net", &[]);
    let out = down.fire("smtp_server_message_received", (msg.clone(), conn));
    assert_eq!(out.rejected().0, 451);
    assert!(down.signatures(&msg).is_empty());
}
