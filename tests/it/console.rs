//! Console commands beside a running server, with the real binary: their
//! changes reach it through its control listener at once, at the address
//! the flags or the config file give, or the command fails saying why.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::json;

use crate::process::{Server, first_credentials, fresh_dir, run, stdout};

#[tokio::test]
async fn inbox_commands_reach_the_running_server_at_once() {
    let (_tmp, data) = fresh_dir();
    assert!(run(&["init"], &data, None).status.success());
    let server = Server::start(&data, &[("INBOXGROVE_PUBLIC_IPV4", "203.0.113.5")]);
    let port = server.control.rsplit(':').next().unwrap().to_owned();
    let control_listen = format!("127.0.0.1:{port}");
    let added = run(
        &[
            "domain",
            "--public-ipv4",
            "203.0.113.5",
            "--control-listen",
            &control_listen,
            "add",
            "console.test",
        ],
        &data,
        None,
    );
    assert!(added.status.success(), "{added:?}");
    let inbox = |rest: &[&str]| {
        let mut args = vec!["inbox", "--control-listen", control_listen.as_str()];
        args.extend_from_slice(rest);
        run(&args, &data, None)
    };

    let bulk = inbox(&[
        "bulk",
        "--domain",
        "console.test",
        "--quantity",
        "3",
        "--no-warmup",
    ]);
    assert!(bulk.status.success(), "{bulk:?}");
    let out = stdout(&bulk);
    let (email, password) = first_credentials(&out);
    assert!(email.ends_with("@console.test"), "{out}");

    let secret = std::fs::read_to_string(data.join("kumo.secret")).unwrap();
    let auth = |password: String| {
        let (url, secret, email) = (
            format!("{}/kumo/v1/auth", server.control),
            secret.trim().to_owned(),
            email.clone(),
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(secret)
                .json(&json!({ "username": email, "password": password }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(auth(password.clone()).await, StatusCode::OK);

    assert!(stdout(&inbox(&["pause", &email])).contains("is paused"));
    assert_eq!(
        auth(password.clone()).await,
        StatusCode::UNAUTHORIZED,
        "paused at once"
    );
    assert!(stdout(&inbox(&["resume", &email])).contains("is active"));
    assert_eq!(auth(password.clone()).await, StatusCode::OK);

    let reset = stdout(&inbox(&["reset-password", &email]));
    let fresh = reset.trim().split_once('\t').unwrap().1.to_owned();
    assert_eq!(auth(password).await, StatusCode::UNAUTHORIZED);
    assert_eq!(auth(fresh).await, StatusCode::OK);

    let listed = stdout(&inbox(&["list", "--domain", "console.test"]));
    assert!(
        listed.contains("3 mailboxes") && listed.contains(&email),
        "{listed}"
    );
    assert!(stdout(&inbox(&["show", &email])).contains("sent today: 0/40"));
    let missing = inbox(&["show", "ghost@console.test"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a mailbox"));

    let file = data.parent().unwrap().join("accounts.csv");
    let export = run(
        &[
            "export",
            "--domain",
            "console.test",
            "--format",
            "instantly_csv",
            "-o",
            file.to_str().unwrap(),
        ],
        &data,
        None,
    );
    assert!(export.status.success(), "{export:?}");
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("Email,First Name,Last Name,IMAP Username"));
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and three mailboxes: {csv}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    server.stop();
}

/// A loopback port nothing listens on (bound, then let go).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn console_changes_reach_the_server_at_its_configured_address_or_say_why_not() {
    let (tmp, data) = fresh_dir();
    assert!(run(&["init"], &data, None).status.success());
    // The server's control listener on a port other than the default,
    // from the config file every command is given.
    let port = unused_port();
    let config = tmp.path().join("inboxgrove.toml");
    std::fs::write(
        &config,
        format!("control_listen = \"127.0.0.1:{port}\"\npublic_ipv4 = \"203.0.113.7\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let server = Server::start_with(
        &data,
        &["--config", &config, "serve", "--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(
        server.control.ends_with(&format!(":{port}")),
        "{}",
        server.control
    );
    let with_config =
        |args: &[&str]| run(&[&["--config", &config][..], args].concat(), &data, None);

    let added = with_config(&["domain", "add", "configured.test"]);
    assert!(added.status.success(), "{added:?}");
    let bulk = with_config(&[
        "inbox",
        "bulk",
        "--domain",
        "configured.test",
        "--quantity",
        "1",
        "--no-warmup",
    ]);
    assert!(bulk.status.success(), "{bulk:?}");
    let out = stdout(&bulk);
    let (email, password) = first_credentials(&out);
    let secret = std::fs::read_to_string(data.join("kumo.secret")).unwrap();
    let auth = async || {
        reqwest::Client::new()
            .post(format!("{}/kumo/v1/auth", server.control))
            .bearer_auth(secret.trim())
            .json(&json!({ "username": email, "password": password }))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        auth().await,
        StatusCode::OK,
        "the server took the new mailbox"
    );
    let paused = with_config(&["inbox", "pause", &email]);
    assert!(stdout(&paused).contains("is paused"), "{paused:?}");
    assert_eq!(auth().await, StatusCode::UNAUTHORIZED, "paused at once");

    let member = with_config(&["user", "create", "--email", "m@example.com"]);
    assert!(member.status.success(), "{member:?}");
    // At a wrong address no server answers: the command says so, with the
    // address it tried and what to do, prints no success and fails.
    let wrong = format!("127.0.0.1:{}", unused_port());
    for args in [
        vec!["inbox", "--control-listen", &wrong, "resume", &email],
        vec![
            "user",
            "--control-listen",
            &wrong,
            "disable",
            "--email",
            "m@example.com",
        ],
        vec![
            "domain",
            "--control-listen",
            &wrong,
            "add",
            "elsewhere.test",
        ],
    ] {
        let o = with_config(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {o:?}");
        assert!(
            err.contains(&format!("did not answer at http://{wrong}/kumo/v1/sync"))
                && err.contains("--control-listen"),
            "{args:?}: {err}"
        );
        assert!(!stdout(&o).contains("is active"), "{args:?}");
    }
    server.stop();
}
