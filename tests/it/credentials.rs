//! One control credential per client: what Dovecot's and the console's may
//! call, KumoMTA's everywhere the policy calls, and rotation with a grace
//! period the running server follows from the files.

use std::os::unix::fs::PermissionsExt;

use chrono::Duration;
use inboxgrove::clock::Clock;
use inboxgrove::kumo::credentials::{self, Client};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, world, world_with};
use crate::helpers::manual_clock;
use crate::inboxes::{Control, bulk, read_secret, with_domain};
use crate::process::{fresh_dir, run, stdout};

/// One mailbox on a new manual domain `name`: (email, password).
async fn mailbox(w: &crate::domains::World, name: &str) -> (String, String) {
    let domain = with_domain(w, name).await;
    let (status, created) = bulk(
        w,
        json!({ "domain_id": domain, "quantity": 1, "enable_warmup": false }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let text = |k: &str| created["inboxes"][0][k].as_str().unwrap().to_owned();
    (text("email"), text("password"))
}

fn login(email: &str, password: &str, service: &str) -> Option<Value> {
    Some(json!({ "username": email, "password": password, "service": service }))
}

/// The 403 a credential gets off its scope: it names the credential the
/// call takes and the one used, and carries no secret.
fn assert_forbidden((status, body): (StatusCode, Value), needs: &str, secrets: &[&str]) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "wrong_credential", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(needs), "{message}");
    for s in secrets {
        assert!(!body.to_string().contains(s), "{body}");
    }
}

#[tokio::test]
async fn dovecots_credential_checks_imap_logins_and_looks_up_mailboxes_only() {
    let w = world().await;
    let (email, password) = mailbox(&w, "scoped.test").await;
    let dovecot = Control::with(&w.app, "dovecot.secret");
    let secrets = [
        read_secret(&w.app, "dovecot.secret"),
        read_secret(&w.app, "kumo.secret"),
    ];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();

    let (status, ok) = dovecot
        .call(Method::POST, "/auth", login(&email, &password, "imap"))
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["email"], email.as_str());
    let (status, found) = dovecot
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["active"], true);

    // SMTP logins, DKIM keys, log records, send decisions, resyncs: not
    // Dovecot's.
    let smtp = dovecot
        .call(Method::POST, "/auth", login(&email, &password, "smtp"))
        .await;
    assert_forbidden(smtp, "kumo.secret", &secrets);
    // Without a service the policy's default, SMTP, is meant.
    let default = dovecot
        .call(
            Method::POST,
            "/auth",
            Some(json!({ "username": email, "password": password })),
        )
        .await;
    assert_forbidden(default, "kumo.secret", &secrets);
    let calls = [
        (Method::GET, "/dkim/scoped.test".to_owned(), None),
        (Method::POST, "/events".to_owned(), Some(json!([]))),
        (
            Method::POST,
            "/send-check".to_owned(),
            Some(crate::kumo::check(&email, &email, &["x@example.net"])),
        ),
        (Method::GET, "/domains/scoped.test".to_owned(), None),
        (Method::GET, "/egress".to_owned(), None),
        (Method::GET, "/stats".to_owned(), None),
    ];
    for (method, path, body) in calls {
        let answer = dovecot.call(method, &path, body).await;
        assert_forbidden(answer, "the KumoMTA credential (kumo.secret)", &secrets);
    }
    let sync = dovecot.call(Method::POST, "/sync", None).await;
    assert_forbidden(sync, "the console credential (console.secret)", &secrets);
}

#[tokio::test]
async fn kumomtas_credential_calls_what_the_policy_needs_and_the_console_only_resyncs() {
    let w = world().await;
    let (email, password) = mailbox(&w, "policy.test").await;
    w.app.set_domain_status("policy.test", "active");
    let kumo = Control::of(&w.app);
    let ok = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    ok(kumo
        .call(Method::POST, "/auth", login(&email, &password, "smtp"))
        .await);
    ok(kumo.auth(&email, &password).await);
    ok(kumo
        .call(Method::GET, &format!("/mailboxes/{email}"), None)
        .await);
    ok(kumo.call(Method::GET, "/domains/policy.test", None).await);
    let key = ok(kumo.call(Method::GET, "/dkim/policy.test", None).await);
    assert!(key["private_key_pem"].as_str().is_some(), "{key}");
    ok(kumo.call(Method::GET, "/egress", None).await);
    ok(kumo.call(Method::GET, "/stats", None).await);
    ok(kumo.call(Method::POST, "/events", Some(json!([]))).await);
    let decision = ok(kumo
        .call(
            Method::POST,
            "/send-check",
            Some(crate::kumo::check(&email, &email, &["x@example.net"])),
        )
        .await);
    assert_eq!(decision["allow"], true, "{decision}");

    let console = Control::with(&w.app, "console.secret");
    ok(console.call(Method::POST, "/sync", None).await);
    let secret = read_secret(&w.app, "console.secret");
    let auth = console.auth(&email, &password).await;
    assert_forbidden(auth, "kumo.secret", &[&secret]);
    let kumo_sync = kumo.call(Method::POST, "/sync", None).await;
    assert_forbidden(kumo_sync, "console.secret", &[&secret]);
}

#[tokio::test]
async fn a_rotated_secret_is_accepted_until_its_grace_period_ends() {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let (email, password) = mailbox(&w, "rotate.test").await;
    let dir = w.app.dir.path();
    let old_dovecot = Control::with(&w.app, "dovecot.secret");
    let old_kumo = Control::of(&w.app);
    let imap = || login(&email, &password, "imap");

    let rotated =
        credentials::rotate(dir, Client::Dovecot, Duration::minutes(10), clock.now()).unwrap();
    assert_eq!(
        rotated.previous_until,
        Some(clock.now() + Duration::minutes(10))
    );
    let new_dovecot = Control::with(&w.app, "dovecot.secret");
    let mode = std::fs::metadata(&rotated.file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    assert_eq!(
        new_dovecot.call(Method::POST, "/auth", imap()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        old_dovecot.call(Method::POST, "/auth", imap()).await.0,
        StatusCode::OK
    );
    clock.advance(Duration::minutes(10) - Duration::seconds(1));
    assert_eq!(
        old_dovecot.call(Method::POST, "/auth", imap()).await.0,
        StatusCode::OK
    );
    clock.advance(Duration::seconds(1));
    let (status, body) = old_dovecot.call(Method::POST, "/auth", imap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(
        new_dovecot.call(Method::POST, "/auth", imap()).await.0,
        StatusCode::OK
    );
    // The old Dovecot secret never became another client's.
    let (status, _) = old_dovecot.call(Method::GET, "/stats", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // No grace: refused at once; the other clients' credentials untouched.
    credentials::rotate(dir, Client::Kumo, Duration::zero(), clock.now()).unwrap();
    assert_eq!(
        old_kumo.auth(&email, &password).await.0,
        StatusCode::UNAUTHORIZED
    );
    let new_kumo = Control::of(&w.app);
    assert_eq!(new_kumo.auth(&email, &password).await.0, StatusCode::OK);
    assert_eq!(
        new_dovecot.call(Method::POST, "/auth", imap()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_broken_previous_file_is_a_temporary_failure_not_a_refusal() {
    let w = world().await;
    let kumo = Control::of(&w.app);
    std::fs::write(w.app.dir.path().join("kumo.secret.previous"), "garbage\n").unwrap();
    let (status, body) = kumo.call(Method::GET, "/stats", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    std::fs::remove_file(w.app.dir.path().join("kumo.secret.previous")).unwrap();
    assert_eq!(
        kumo.call(Method::GET, "/stats", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotate_control_secret_updates_the_installed_copies_and_prints_no_secret() {
    let (tmp, data) = fresh_dir();
    assert!(run(&["init"], &data, None).status.success());
    let read = |name: &str| {
        std::fs::read_to_string(data.join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let old: Vec<String> = Client::ALL.iter().map(|c| read(c.file_name())).collect();
    // KumoMTA's copy as the installer leaves it (0640); Dovecot's missing.
    let kumo_copy = tmp.path().join("kumo-installed.secret");
    std::fs::write(&kumo_copy, format!("{}\n", old[0])).unwrap();
    std::fs::set_permissions(&kumo_copy, std::fs::Permissions::from_mode(0o640)).unwrap();
    let dovecot_copy = tmp.path().join("absent/dovecot.secret");
    // Run as root (as here) the command must keep each file's owner: the
    // data dir's belongs to the server's user, the copy to root:kumod.
    // Without the right to chown, only modes are checked.
    let owners = std::os::unix::fs::chown(&kumo_copy, Some(0), Some(65534))
        .and_then(|()| std::os::unix::fs::chown(data.join("kumo.secret"), Some(65534), Some(65534)))
        .is_ok();

    let out = run(
        &[
            "rotate-control-secret",
            "--grace",
            "10m",
            "--kumo-secret-file",
            kumo_copy.to_str().unwrap(),
            "--dovecot-secret-file",
            dovecot_copy.to_str().unwrap(),
        ],
        &data,
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let (printed, errors) = (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let new: Vec<String> = Client::ALL.iter().map(|c| read(c.file_name())).collect();
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(o, n);
        assert!(
            !printed.contains(o.as_str()) && !printed.contains(n.as_str()),
            "{printed}"
        );
        assert!(
            !errors.contains(o.as_str()) && !errors.contains(n.as_str()),
            "{errors}"
        );
    }
    assert_eq!(std::fs::read_to_string(&kumo_copy).unwrap().trim(), new[0]);
    let mode = std::fs::metadata(&kumo_copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    if owners {
        use std::os::unix::fs::MetadataExt;
        let copy = std::fs::metadata(&kumo_copy).unwrap();
        assert_eq!((copy.uid(), copy.gid()), (0, 65534));
        for name in ["kumo.secret", "kumo.secret.previous"] {
            let own = std::fs::metadata(data.join(name)).unwrap();
            assert_eq!(
                (own.uid(), own.gid(), own.mode() & 0o777),
                (65534, 65534, 0o600)
            );
        }
    }
    assert!(
        printed.contains("would run `systemctl reload-or-restart kumomta`"),
        "{printed}"
    );
    assert!(
        errors.contains(&format!("{} does not exist", dovecot_copy.display())),
        "{errors}"
    );
    // The previous secret waits out its grace beside the new one.
    let previous = std::fs::read_to_string(data.join("kumo.secret.previous")).unwrap();
    assert_eq!(previous.lines().next(), Some(old[0].as_str()));

    let bad = run(&["rotate-control-secret", "--grace", "soon"], &data, None);
    assert!(!bad.status.success());
    assert_eq!(
        read("kumo.secret"),
        new[0],
        "a refused command changes nothing"
    );
}
