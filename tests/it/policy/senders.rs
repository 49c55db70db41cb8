//! Who may send as whom, through the policy: every From and Sender header
//! reaches the send check, a domain sends only once verified, and a message
//! is counted only if it is queued.

use super::*;

/// A message from `m`'s session with exactly `headers` (no From added).
pub(super) fn with_headers(
    stub: &KumoStub,
    conn: &LuaTable,
    m: &Mailbox,
    headers: &[(&str, &str)],
) -> LuaTable {
    let mut all: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
    all.push(json!(["To", "prospect@example.net"]));
    all.push(json!(["Subject", "Quick question"]));
    stub.message(
        json!({ "sender": m.email, "recipients": ["prospect@example.net"], "headers": all, "body": "Hi\r\n" }),
        conn,
    )
}

/// The forged headers the policy must refuse for mailbox `me`, each with
/// why.
pub(super) fn forgeries(me: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "another address, ours in a comment",
            vec![("From", format!("<ceo@bank.example> (<{me}>)"))],
        ),
        (
            "a list with ours first",
            vec![("From", format!("{me}, ceo@bank.example"))],
        ),
        (
            "ours as the display name",
            vec![("From", format!("\"{me}\" <ceo@bank.example>"))],
        ),
        (
            "two From headers",
            vec![
                ("From", me.to_owned()),
                ("From", "ceo@bank.example".to_owned()),
            ],
        ),
        (
            "a group",
            vec![("From", format!("Board: {me}, ceo@bank.example;"))],
        ),
        ("no From at all", vec![("Reply-To", me.to_owned())]),
        (
            "someone else's Sender",
            vec![
                ("From", me.to_owned()),
                ("Sender", "ceo@bank.example".to_owned()),
            ],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_from_and_sender_header_must_be_the_mailbox() {
    let w = world().await;
    let boxes = mailboxes(&w, "senders.test", 1, 50).await;
    let a = &boxes[0];
    let kumo = Control::of(&w.app);
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, a);

    for (why, headers) in forgeries(&a.email) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let msg = with_headers(&stub, &conn, a, &headers);
        let out = stub.receive(&msg, &conn);
        let (code, text) = out.rejected();
        assert_eq!(code, 550, "{why}: {text}");
        assert!(text.starts_with("5.7.1 "), "{why}: {text}");
    }
    assert_eq!(
        sent_today(&kumo, &a.email).await,
        0,
        "no refusal is counted"
    );

    // The mailbox itself, with a name, and its own Sender, goes.
    let own = with_headers(
        &stub,
        &conn,
        a,
        &[
            ("From", &format!("Ada Lovelace <{}>", a.email)),
            ("Sender", &a.email),
        ],
    );
    let out = stub.receive(&own, &conn);
    assert!(returned_nil(&out), "{out:?}");
    assert_eq!(sent_today(&kumo, &a.email).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_sends_once_verified_and_never_once_failed() {
    let w = world().await;
    let id = with_domain(&w, "pending.test").await;
    let a = mailboxes_on(&w, &id, 1, 50).await.remove(0);
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, &a);
    let send = || {
        let msg = mail(&stub, &conn, &a.email, "prospect@example.net", &[]);
        stub.receive(&msg, &conn)
    };

    // Its DNS is not verified yet: the client keeps the message and
    // retries, since the domain may become sendable.
    let out = send();
    let (code, text) = out.rejected();
    assert_eq!(code, 451, "{text}");
    assert!(
        text.starts_with("4.7.1 ") && text.contains("awaiting_dns"),
        "{text}"
    );
    w.app.set_domain_status("pending.test", "failed");
    let out = send();
    let (code, text) = out.rejected();
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with("5.7.1 ") && text.contains("failed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_policy_cannot_sign_is_never_counted() {
    let w = world().await;
    let a = mailboxes(&w, "unsigned.test", 1, 50).await.remove(0);
    let kumo = Control::of(&w.app);
    without_dkim_key(&w.app, "unsigned.test");
    let stub = policy(&w);
    let conn = submission(&stub);
    login(&stub, &conn, &a);
    let msg = mail(&stub, &conn, &a.email, "prospect@example.net", &[]);
    let out = stub.receive(&msg, &conn);
    assert_eq!(
        out.rejected(),
        (451, "4.3.0 Signing key unavailable, try again later")
    );
    assert_eq!(sent_today(&kumo, &a.email).await, 0);
}

/// Takes a domain's DKIM key away behind the appliance's back, so
/// `/kumo/v1/dkim/{domain}` cannot answer while the send check still can.
pub(super) fn without_dkim_key(app: &TestApp, domain: &str) {
    let path = inboxgrove::store::Store::path_in(app.dir.path());
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let n = conn
        .execute(
            "DELETE FROM dkim_keys WHERE domain_id = (SELECT id FROM domains WHERE domain_name = ?1)",
            [domain],
        )
        .unwrap();
    assert!(n > 0, "{domain} had no key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datasource_fault_is_try_again_later_at_every_step() {
    let w = world().await;
    let boxes = mailboxes(&w, "fault.test", 2, 50).await;
    let (a, b) = (&boxes[0], &boxes[1]);
    let stub = policy(&w);
    let sending = submission(&stub);
    login(&stub, &sending, a);
    // Both mailboxes' entries unreadable behind the appliance's back.
    for m in [a, b] {
        let (local, domain) = m.email.split_once('@').unwrap();
        w.app
            .datasource
            .put_raw(domain, local, b"\x00 not an entry")
            .unwrap();
    }

    // AUTH: RFC 4954's temporary failure, never 535.
    let (code, text) = auth(&stub, &submission(&stub), &b.email, &b.password);
    assert_eq!(
        (code, text.as_str()),
        (
            454,
            "4.7.0 Temporary authentication failure, try again later"
        )
    );
    // RCPT on port 25: try later, never 550 5.1.1.
    let mx = inbound(&stub);
    assert_eq!(stub.mail_from(&mx, "prospect@example.net").0, 250);
    let (code, text) = stub.rcpt_to(&mx, &b.email);
    assert_eq!(code, 451, "{text}");
    // After DATA in a session that logged in before the fault.
    let msg = mail(&stub, &sending, &a.email, "prospect@example.net", &[]);
    let out = stub.receive(&msg, &sending);
    assert_eq!(out.rejected().0, 451, "{out:?}");

    // None of it counted as a wrong password.
    let (_, stats) = Control::of(&w.app).call(Method::GET, "/stats", None).await;
    assert_eq!(stats["logins"]["smtp"]["refused"], 0, "{stats}");
    assert_eq!(stats["logins"]["smtp"]["throttled"], 0, "{stats}");
}
