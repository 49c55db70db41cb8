//! IMAP through a real Dovecot (Debian's 2.3) configured by
//! `inboxgrove dovecot-config`, authenticating every login against the
//! running appliance: client → Dovecot → `inboxgrove checkpassword` →
//! `/kumo/v1/auth`.

use inboxgrove::dovecot::quota;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{World, world};
use crate::inboxes::{Control, bulk, with_domain};
use crate::support::dovecot::{self, Dovecot};
use crate::support::imap_client::{Imap, pinned_connector};

const FOLDERS: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
];

/// One mailbox on `domain`: (id, email, password).
pub async fn mailbox(w: &World, domain: &str) -> (String, String, String) {
    let (status, created) = bulk(
        w,
        json!({ "domain_id": domain, "quantity": 1, "enable_warmup": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let inbox = &created["inboxes"][0];
    let text = |k: &str| inbox[k].as_str().unwrap().to_owned();
    (text("inbox_id"), text("email"), text("password"))
}

/// Whether `email`/`password` log in over IMAPS.
async fn logs_in(d: &Dovecot, email: &str, password: &str) -> bool {
    let mut imap = Imap::tls(d.imaps, &pinned_connector(&d.cert)).await;
    let ok = imap.login(email, password).await.ok();
    imap.logout().await;
    ok
}

#[tokio::test]
async fn dovecot_serves_generated_mailboxes_over_tls_with_their_folders_and_mail() {
    if !dovecot::available() {
        return;
    }
    let w = world().await;
    let domain = with_domain(&w, "imap.test").await;
    let (id, email, password) = mailbox(&w, &domain).await;
    let d = Dovecot::start(&w.app.control, w.app.dir.path()).await;
    let tls = pinned_connector(&d.cert);

    // The exported row is what a sequencer imports: it logs in as it is.
    let (status, export) = w
        .app
        .post(
            "/api/v1/inboxes/export",
            json!({ "mailbox_ids": [id], "format": "generic_csv", "include_passwords": true }),
            Some(&w.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let csv = reqwest::get(export["file_url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    let (imap_host, imap_port, imap_user, row_password) = (&row[5], &row[6], &row[7], &row[1]);
    assert_eq!(imap_host, "mail.imap.test");
    assert_eq!(
        imap_port, "993",
        "the port the rendered config serves IMAPS on"
    );
    assert_eq!(imap_user, email);

    // Over IMAPS, with the address in any case (as a person may type it).
    let mut imap = Imap::tls(d.imaps, &tls).await;
    assert!(imap.greeting.starts_with("* OK"), "{}", imap.greeting);
    let login = imap.login(&imap_user.to_uppercase(), row_password).await;
    assert!(login.ok(), "{login:?}\n{}", d.log());

    // SPECIAL-USE folders exist and are subscribed at first login.
    let list = imap.command("LIST \"\" \"*\"").await;
    assert!(list.ok(), "{list:?}");
    for (name, attribute) in FOLDERS {
        assert!(
            list.untagged
                .iter()
                .any(|l| l.contains(attribute) && l.ends_with(name)),
            "{name} with {attribute} in {}",
            list.text()
        );
    }
    let subscribed = imap.command("LSUB \"\" \"*\"").await.text();
    for (name, _) in FOLDERS {
        assert!(subscribed.contains(name), "{name} subscribed: {subscribed}");
    }
    // What Dovecot makes (here the maildir, as INBOX is opened) stays
    // writable by the mail group, so KumoMTA (another user in it) can
    // still deliver into it.
    let status = imap.command("STATUS INBOX (MESSAGES)").await;
    assert!(status.text().contains("MESSAGES 0"), "{status:?}");
    d.assert_group_shared(&email);
    let quota = imap.command("GETQUOTAROOT INBOX").await;
    assert!(
        quota.text().contains("STORAGE 0 1048576"),
        "1 GiB quota: {quota:?}"
    );

    // Mail KumoMTA delivers (tmp → new) is listed and fetched intact.
    let message = format!(
        "Return-Path: <sender@example.net>\r\nFrom: Sender <sender@example.net>\r\nTo: {email}\r\nSubject: Re: our call\r\nMessage-ID: <reply-1@example.net>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nSounds good, talk Tuesday.\r\n"
    );
    d.deliver(&email, "1772445600.M1P1.kumo", message.as_bytes());
    let select = imap.command("SELECT INBOX").await;
    assert!(select.text().contains("* 1 EXISTS"), "{select:?}");
    let fetched = imap
        .command("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID FROM)] BODY.PEEK[TEXT])")
        .await;
    assert!(fetched.ok(), "{fetched:?}");
    let text = fetched.text();
    for part in [
        "Subject: Re: our call",
        "Message-ID: <reply-1@example.net>",
        "From: Sender <sender@example.net>",
        "Sounds good, talk Tuesday.",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }

    // Warmup: a message appended to Junk and moved to INBOX ends up there.
    let warm = b"From: peer@example.org\r\nSubject: warmup 7\r\nMessage-ID: <warm-7@example.org>\r\n\r\nhello\r\n";
    let appended = imap.append("Junk", warm).await;
    assert!(appended.ok(), "{appended:?}");
    assert!(
        imap.command("SELECT Junk")
            .await
            .text()
            .contains("* 1 EXISTS")
    );
    let moved = imap.command("MOVE 1 INBOX").await;
    assert!(moved.ok(), "{moved:?}");
    assert!(
        imap.command("SELECT Junk")
            .await
            .text()
            .contains("* 0 EXISTS")
    );
    assert!(
        imap.command("SELECT INBOX")
            .await
            .text()
            .contains("* 2 EXISTS")
    );
    let found = imap
        .command("SEARCH HEADER Message-ID <warm-7@example.org>")
        .await;
    assert!(found.text().contains("* SEARCH 2"), "{found:?}");
    // Dovecot's Maildir++ quota counted the APPEND in maildirsize, in the
    // format InboxGrove reads to refuse deliveries to a full mailbox.
    let maildirsize = d.maildir(&email).join("maildirsize");
    let text = std::fs::read_to_string(&maildirsize).unwrap();
    assert!(text.starts_with("1073741824S"), "{text}");
    let used = quota::read_usage(&maildirsize).unwrap();
    assert!(used > 0 && used <= warm.len() as u64, "{used} in {text}");
    imap.logout().await;

    // A wrong password is refused.
    assert!(!logs_in(&d, &email, "Wrong-password-123456789").await);

    // Plain IMAP: LOGIN is refused without TLS, accepted after STARTTLS.
    let mut plain = Imap::plain(d.imap).await;
    let refused = plain.login(&email, &password).await;
    assert!(
        plain.greeting.contains("LOGINDISABLED"),
        "{}",
        plain.greeting
    );
    assert!(
        refused.status.starts_with("NO [PRIVACYREQUIRED]"),
        "plaintext login: {refused:?}"
    );
    let mut upgraded = plain.starttls(&tls).await;
    assert!(upgraded.login(&email, &password).await.ok(), "{}", d.log());
    upgraded.logout().await;

    // The control endpoint counted the logins as IMAP and audited the
    // refusal with its service.
    let kumo = Control::of(&w.app);
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    assert!(
        stats["logins"]["imap"]["ok"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(stats["logins"]["imap"]["refused"], 1, "{stats}");
    assert_eq!(stats["logins"]["smtp"]["ok"], 0, "{stats}");
    let rows = w.app.audit_rows(&w.admin).await;
    let refusal: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "mailbox.login")
        .collect();
    assert_eq!(refusal.len(), 1, "{rows:?}");
    assert_eq!(refusal[0]["metadata"]["service"], "imap");
    assert_eq!(refusal[0]["status"], "failure");
    assert!(!refusal[0].to_string().contains("Wrong-password"));
}

#[tokio::test]
async fn dovecot_takes_new_paused_reset_and_deleted_mailboxes_at_once() {
    if !dovecot::available() {
        return;
    }
    let w = world().await;
    let domain = with_domain(&w, "changes.test").await;
    // Dovecot is up before the mailbox exists: nothing is reloaded.
    let d = Dovecot::start(&w.app.control, w.app.dir.path()).await;
    let (id, email, password) = mailbox(&w, &domain).await;
    assert!(logs_in(&d, &email, &password).await, "{}", d.log());

    let path = format!("/api/v1/inboxes/{id}");
    let patch = |paused: bool| {
        let (w, path) = (&w, &path);
        async move {
            let (status, body) = w
                .app
                .call(
                    Method::PATCH,
                    path,
                    Some(json!({ "paused": paused })),
                    Some(&w.admin),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    patch(true).await;
    assert!(!logs_in(&d, &email, &password).await, "paused");
    patch(false).await;
    assert!(logs_in(&d, &email, &password).await, "resumed");

    let (status, reset) = w
        .app
        .post(&format!("{path}/reset-password"), json!({}), Some(&w.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = reset["password"].as_str().unwrap();
    assert!(!logs_in(&d, &email, &password).await, "old password");
    assert!(logs_in(&d, &email, fresh).await, "new password");

    let (status, _) = w
        .app
        .call(Method::DELETE, &path, None, Some(&w.admin))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!logs_in(&d, &email, fresh).await, "deleted");
}

#[tokio::test]
async fn dovecot_imap_guesses_throttle_the_mailbox_like_smtp_ones() {
    if !dovecot::available() {
        return;
    }
    let w = world().await;
    let domain = with_domain(&w, "guarded.test").await;
    let (_, email, password) = mailbox(&w, &domain).await;
    let d = std::sync::Arc::new(Dovecot::start(&w.app.control, w.app.dir.path()).await);
    let kumo = Control::of(&w.app);
    let failures = || async {
        let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
        let imap = &stats["logins"]["imap"];
        imap["refused"].as_u64().unwrap() + imap["throttled"].as_u64().unwrap()
    };
    // At once: Dovecot delays later attempts from an address that failed
    // (its own auth penalty), which would hide the appliance's throttle.
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (d, email) = (d.clone(), email.clone());
        guesses
            .spawn(async move { logs_in(&d, &email, &format!("Guess-number-{i}-abcdef")).await });
    }
    for _ in 0..1000 {
        if failures().await >= 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(failures().await, 8);
    // One throttle per (mailbox, source) for both services: from the
    // guessing address the right password now waits over SMTP too, while
    // the mailbox's sequencer elsewhere is not locked out.
    let smtp = |source: &'static str| {
        let body = json!({ "username": email, "password": password, "source_ip": source });
        let kumo = &kumo;
        async move { kumo.call(Method::POST, "/auth", Some(body)).await }
    };
    assert_eq!(
        smtp("127.0.0.1").await,
        (StatusCode::UNAUTHORIZED, json!({ "ok": false }))
    );
    assert_eq!(smtp("198.51.100.10").await.0, StatusCode::OK);
    while let Some(ok) = guesses.join_next().await {
        assert!(!ok.unwrap());
    }
    let (_, stats) = kumo.call(Method::GET, "/stats", None).await;
    assert_eq!(stats["logins"]["smtp"]["throttled"], 1, "{stats}");
}

#[tokio::test]
async fn dovecot_config_refuses_unsafe_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inboxgrove"))
        .args(["dovecot-config", "--data-dir"])
        .arg(dir.path())
        .args(["--secret-file", "/etc/dove cot/secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret file"), "{err}");
    // The self-signed certificate was made for a first run.
    assert!(dir.path().join("certs/self-signed/cert.pem").exists());
}

/// Runs `inboxgrove checkpassword` as Dovecot does: user\0password\0\0 on
/// fd 3, the reply read from fd 4. Returns (exit code, fd 4).
fn checkpassword(
    control: &str,
    secret: &std::path::Path,
    input: &[u8],
    env: &[(&str, &str)],
) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let (fd3, fd4) = (dir.path().join("fd3"), dir.path().join("fd4"));
    std::fs::write(&fd3, input).unwrap();
    let status = std::process::Command::new("bash")
        .args(["-c", "exec \"$0\" checkpassword --control-url \"$1\" --secret-file \"$2\" /usr/lib/dovecot/checkpassword-reply 3<\"$3\" 4>\"$4\""])
        .arg(env!("CARGO_BIN_EXE_inboxgrove"))
        .arg(control)
        .arg(secret)
        .arg(&fd3)
        .arg(&fd4)
        .envs(env.iter().copied())
        .status()
        .unwrap();
    (
        status.code().unwrap(),
        std::fs::read_to_string(&fd4).unwrap(),
    )
}

#[tokio::test]
async fn checkpassword_speaks_dovecots_protocol_on_fds_3_and_4() {
    let w = world().await;
    let domain = with_domain(&w, "fds.test").await;
    let (_, email, password) = mailbox(&w, &domain).await;
    let secret = w.app.dir.path().join("dovecot.secret");
    let control = w.app.control.clone();
    let run = move |input: Vec<u8>, env: Vec<(&'static str, &'static str)>| {
        let (control, secret) = (control.clone(), secret.clone());
        tokio::task::spawn_blocking(move || checkpassword(&control, &secret, &input, &env))
    };
    let input = |user: &str, pw: &str| format!("{user}\0{pw}\0\0").into_bytes();

    let ok = run(
        input(&email.to_uppercase(), &password),
        vec![("TCPREMOTEIP", "192.0.2.9")],
    );
    assert_eq!(ok.await.unwrap(), (0, format!("user={email}")));
    let wrong = run(input(&email, "Wrong-password-123456789"), vec![]);
    assert_eq!(wrong.await.unwrap(), (1, String::new()));
    // AUTHORIZED=1: a lookup without a password (doveadm, userdb checks).
    let found = run(input(&email, ""), vec![("AUTHORIZED", "1")]);
    assert_eq!(found.await.unwrap(), (2, format!("user={email}")));
    let unknown = run(input("ghost@fds.test", ""), vec![("AUTHORIZED", "1")]);
    assert_eq!(unknown.await.unwrap().0, 3);

    // The appliance down is a temporary failure, never "wrong password".
    let secret = w.app.dir.path().join("dovecot.secret");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = checkpassword(
        &format!("http://{closed}"),
        &secret,
        &input(&email, &password),
        &[],
    );
    assert_eq!(down.0, 111);
    let garbled = checkpassword(&w.app.control, &secret, b"no separators", &[]);
    assert_eq!(garbled.0, 111);
}
