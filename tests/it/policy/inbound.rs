//! Port 25: RCPT for live mailboxes only, and delivery into the maildir
//! InboxGrove names, where Dovecot reads it.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mail_reaches_only_live_mailboxes_in_their_own_maildir() {
    let w = world().await;
    let boxes = mailboxes(&w, "inbound.test", 2, 50).await;
    let (a, b) = (&boxes[0], &boxes[1]);
    let kumo = Control::of(&w.app);
    let stub = policy(&w);
    let mx = inbound(&stub);
    assert_eq!(stub.mail_from(&mx, "prospect@example.net").0, 250);
    let rcpt = |email: &str| stub.rcpt_to(&mx, email);
    let ok = |(code, _): (u16, String)| code == 250;
    let refused = |code: u16, text: &str| (code, text.to_owned());

    assert!(ok(rcpt(&a.email)));
    assert!(ok(rcpt(&a.email.to_uppercase())));
    assert_eq!(
        rcpt("nobody@inbound.test"),
        refused(550, "5.1.1 No such mailbox here")
    );
    assert_eq!(rcpt("../../etc/passwd@inbound.test").0, 550);
    assert_eq!(
        rcpt("someone@foreign.test"),
        refused(
            550,
            &format!("5.7.1 relaying not permitted for {PROSPECT_MTA}")
        )
    );

    // A paused mailbox: the cached "active" answer stands until InboxGrove
    // bumps the config epoch; then senders are told to retry.
    assert!(ok(rcpt(&b.email)));
    let (status, _) = w
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/inboxes/{}", b.id),
            Some(json!({ "paused": true })),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ok(rcpt(&b.email)));
    stub.bump_epoch();
    assert_eq!(
        rcpt(&b.email),
        refused(450, "4.2.1 Mailbox disabled, try again later")
    );

    // A reply from a prospect, start to end.
    let session = inbound(&stub);
    assert_eq!(stub.mail_from(&session, "prospect@example.net").0, 250);
    assert_eq!(stub.rcpt_to(&session, &a.email).0, 250);
    let (code, text, mut received) = stub.data(
        &session,
        json!({ "headers": [["Return-Path", "<forged@example.org>"], ["From", "prospect@example.net"],
                            ["Subject", "Re: Quick question"]],
                "body": "Thanks, Thursday works.\r\n" }),
    );
    assert_eq!(code, 250, "{text}");
    let msg = received.pop().unwrap();
    let (user, domain) = a.email.split_once('@').unwrap();
    let mail_root = w.app.dir.path().join("mail");
    assert_eq!(stub.meta(&msg, "queue"), "inboxgrove.maildir");
    let return_path: Vec<String> = msg
        .call_method("get_all_named_header_values", "Return-Path")
        .unwrap();
    assert_eq!(return_path, ["<prospect@example.net>"]);
    // The MX listener's trace headers: kumod's Received (naming the peer),
    // no X-KumoRef; nothing is signed.
    let received = stub.header(&msg, "Received").unwrap();
    assert!(
        received.starts_with("from mx.example.net (203.0.113.25)")
            && received.contains("by mail.grove.test"),
        "{received}"
    );
    assert_eq!(stub.header(&msg, "X-KumoRef"), None);
    assert_eq!(stub.header(&msg, "DKIM-Signature"), None);
    assert_eq!(stub.header(&msg, "List-Unsubscribe"), None);
    assert_eq!(
        sent_today(&kumo, &a.email).await,
        0,
        "inbound is not sending"
    );

    // Delivery through the queue the policy chose, rendered as kumod
    // renders it: the file lands in new/ of the maildir Dovecot reads,
    // group-shared with it.
    let files = stub.deliver(&msg).unwrap();
    let maildir = mail_root.join(domain).join(user).join("Maildir");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].parent().unwrap(), maildir.join("new"));
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), stub.raw(&msg));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&files[0]), 0o660);
    for sub in ["cur", "new", "tmp"] {
        assert_eq!(mode(&maildir.join(sub)), 0o2770, "{sub}");
    }
    assert!(
        std::fs::read_dir(maildir.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );

    // A message the policy gave no maildir: the template renders empty,
    // as in kumod, and the harness refuses the relative path.
    let stray = stub.message(
        json!({ "sender": "x@example.net", "recipients": [a.email], "headers": [["From", "x@example.net"]] }),
        &mx,
    );
    stray
        .call_method::<()>("set_meta", ("queue", "inboxgrove.maildir"))
        .unwrap();
    let err = stub.deliver(&stray).unwrap_err();
    assert!(err.contains("not absolute"), "{err}");

    // Mail for anywhere else keeps KumoMTA's default (SMTP) queue.
    let onward = stub.message(
        json!({ "sender": "x@inbound.test", "recipients": ["friend@example.net"], "headers": [["From", "x@inbound.test"]] }),
        &mx,
    );
    let err = stub.deliver(&onward).unwrap_err();
    assert!(
        err.contains("queue example.net does not deliver to a maildir"),
        "{err}"
    );

    let down = policy_with_appliance_down(&w);
    let out = down.fire(
        "smtp_server_rcpt_to",
        (down.address(&a.email), inbound(&down)),
    );
    assert_eq!(
        out.rejected(),
        (451, "4.3.0 Mailbox lookup failed, try again later")
    );
    // In a session the domain lookup comes first and fails: kumod answers
    // 421 and hangs up, and the sender retries later.
    let session = inbound(&down);
    assert_eq!(down.mail_from(&session, "prospect@example.net").0, 250);
    assert_eq!(
        down.rcpt_to(&session, &a.email),
        (
            421,
            "4.3.0 mail.grove.test technical difficulties".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_at_its_quota_is_refused_for_now_at_rcpt_and_at_data() {
    let w = world().await;
    let boxes = mailboxes(&w, "quota.test", 2, 50).await;
    let (under, full) = (&boxes[0], &boxes[1]);
    const FULL: (u16, &str) = (452, "4.2.2 Mailbox full, try again later");
    // Maildir++ as Dovecot writes it; the default quota is 1 GiB.
    w.app
        .write_maildirsize(&under.email, "1073741824S\n1073741000 20\n");
    w.app
        .write_maildirsize(&full.email, "1073741824S\n1073741000 20\n824 1\n");
    let stub = policy(&w);
    let mx = inbound(&stub);
    let rcpt = |email: &str| stub.fire("smtp_server_rcpt_to", (stub.address(email), mx.clone()));
    let data = |email: &str| {
        let msg = stub.message(
            json!({ "sender": "prospect@example.net", "recipients": [email],
                    "headers": [["From", "prospect@example.net"]] }),
            &mx,
        );
        stub.receive(&msg, &mx)
    };

    assert!(returned_nil(&rcpt(&under.email)));
    assert!(returned_nil(&data(&under.email)));
    assert_eq!(rcpt(&full.email).rejected(), FULL);
    assert_eq!(data(&full.email).rejected(), FULL);

    // Filling up bumps no epoch: the cached answer stands for the
    // mailbox cache's TTL (10 seconds), then the mailbox is refused.
    w.app
        .write_maildirsize(&under.email, "1073741824S\n1073741000 20\n2000 1\n");
    assert!(returned_nil(&rcpt(&under.email)));
    stub.advance(10);
    assert_eq!(rcpt(&under.email).rejected(), FULL);
    // An expunge (a negative delta) makes room again.
    w.app
        .write_maildirsize(&full.email, "1073741824S\n1073741000 20\n824 1\n-5000 -1\n");
    stub.advance(10);
    assert!(returned_nil(&rcpt(&full.email)));
}
