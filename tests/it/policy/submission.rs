//! Port 587 after DATA: the send check and its limits, List-Unsubscribe,
//! and DKIM signing with the key InboxGrove holds, verified through DNS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::{AuthenticatedMessage, DkimResult};

use super::*;
use crate::dns::dkim::{authenticator, verify};
use crate::events::{record, sent};

/// The one signature's verdict, `d=` and `h=` (as mail-auth read them).
async fn dkim(w: &World, raw: &str) -> (DkimResult, String, Vec<String>) {
    let message = AuthenticatedMessage::parse(raw.as_bytes()).unwrap();
    let outputs = authenticator(w.dns.addr()).verify_dkim(&message).await;
    assert_eq!(outputs.len(), 1, "one DKIM-Signature in {raw}");
    let signature = outputs[0].signature().expect("a parsed signature");
    let h = signature.h.iter().map(|n| n.to_ascii_lowercase()).collect();
    (outputs[0].result().clone(), signature.d.clone(), h)
}

/// `raw` with `header` added on top, where a relay adds its headers.
fn with_header(raw: &str, header: &str) -> String {
    format!("{header}\r\n{raw}")
}

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
    // kumod copies the connection meta into the message at DATA.
    for key in ["authn_id", "x_mailbox_id", "x_listener", "received_from"] {
        assert_eq!(stub.meta(&msg, key), stub.meta(&conn, key), "{key}");
    }
    let out = stub.receive(&msg, &conn);
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

    // The submission listener's trace headers: no Received (it would show
    // the client's address), and X-KumoRef carrying the mailbox id, added
    // after the event and so outside the signature.
    assert_eq!(stub.header(&msg, "Received"), None);
    assert_eq!(stub.header_names(&msg)[0], "X-KumoRef");
    let kumo_ref: Value = serde_json::from_slice(
        &STANDARD
            .decode(stub.header(&msg, "X-KumoRef").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(kumo_ref["x_mailbox_id"], json!(a.id));
    assert_eq!(kumo_ref["recipient"], "Prospect@Example.net");

    // Signed with the domain's key: the bytes verify through DNS against
    // the record the appliance asks the person to publish (`mailboxes`
    // published every planned record as a person would).
    let raw = stub.raw(&msg);
    let (result, d, h) = dkim(&w, &raw).await;
    assert_eq!(result, DkimResult::Pass, "{raw}");
    assert_eq!(d, "send.test");
    for name in [
        "from",
        "to",
        "subject",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(h.contains(&name.to_owned()), "{name} signed: {h:?}");
    }
    // Over-signed: a listed header added on top after signing, a second
    // From or a second List-Unsubscribe, breaks the signature (verifiers
    // take instances from the bottom, so without over-signing the added
    // one would be ignored); an unlisted one does not.
    let auth = authenticator(w.dns.addr());
    let relayed = with_header(&raw, "Comments: relayed");
    assert_eq!(verify(&auth, &relayed).await, DkimResult::Pass);
    for added in [
        "From: Boss <boss@send.test>",
        "List-Unsubscribe: <https://evil.example/u>",
    ] {
        let tampered = with_header(&raw, added);
        assert!(
            matches!(verify(&auth, &tampered).await, DkimResult::Fail(_)),
            "{added} must break the signature"
        );
    }
    let (_, key) = kumo.call(Method::GET, "/dkim/send.test", None).await;
    let signer = &stub.signers()[0];
    assert_eq!(signer["selector"], key["selector"]);
    assert_eq!(signer["key_data"], key["private_key_pem"]);

    // Daily limit 1: the next message waits for tomorrow (452); a spoofed
    // From is refused for good whatever the count.
    let again = mail(&stub, &conn, &a.email, "other@example.net", &[]);
    let out = stub.receive(&again, &conn);
    let (code, text) = out.rejected();
    assert_eq!(code, 452);
    assert!(text.starts_with("4.7.1 "), "{text}");
    let spoof = stub.message(
        json!({ "sender": a.email, "recipients": ["x@example.net"],
                "headers": [["From", format!("Boss <{}>", b.email)]] }),
        &conn,
    );
    let out = stub.receive(&spoof, &conn);
    let (code, text) = out.rejected();
    assert_eq!((code, text.contains("From header")), (550, true), "{text}");
    assert_eq!(sent_today(&kumo, &a.email).await, 1);

    // A hard bounce of a message b sent suppresses the address for every
    // mailbox of the owner.
    let reception = sent(
        "policy-bounce-1",
        &b.id,
        &b.email,
        "gone@example.net",
        "b1@send.test",
    );
    let (status, _) = kumo.call(Method::POST, "/events", Some(reception)).await;
    assert_eq!(status, StatusCode::OK);
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
    let out = stub.receive(
        &mail(&stub, &conn_b, &b.email, "gone@example.net", &[]),
        &conn_b,
    );
    let (code, text) = out.rejected();
    assert_eq!((code, text.contains("suppressed")), (550, true), "{text}");
    assert_eq!(sent_today(&kumo, &b.email).await, 0);

    // The prospect's mail client sends the one-click POST for the first
    // message (RFC 8058 §3.1): from now on no mailbox of this owner may
    // write to them.
    let res = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let out = stub.receive(
        &mail(&stub, &conn_b, &b.email, "prospect@example.net", &[]),
        &conn_b,
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
    let out = stub.receive(&own, &conn_b);
    assert!(returned_nil(&out), "{out:?}");
    let values: Vec<String> = own
        .call_method("get_all_named_header_values", "List-Unsubscribe")
        .unwrap();
    assert_eq!(values, ["<mailto:leave@send.test>"]);
    assert_eq!(stub.header(&own, "List-Unsubscribe-Post"), None);
    let (result, _, _) = dkim(&w, &stub.raw(&own)).await;
    assert_eq!(result, DkimResult::Pass);
    let key_fetches = stub
        .http_calls()
        .iter()
        .filter(|c| c.url.ends_with("/kumo/v1/dkim/send.test"))
        .count();
    assert_eq!(key_fetches, 1, "the key is memoized");
    assert!(stub.signers().len() >= 2, "a signer per message");

    // The appliance goes away mid-session: the next message is refused
    // for now (451) and nothing is signed.
    let msg = mail(&stub, &conn_b, &b.email, "late@example.net", &[]);
    let World { app, .. } = w;
    app.stop().await;
    let out = stub.receive(&msg, &conn_b);
    assert_eq!(out.rejected().0, 451, "{out:?}");
    assert_eq!(stub.header(&msg, "DKIM-Signature"), None);
}
