//! The real binary: bootstrap, restarts, the CLI beside a running server,
//! and jobs that outlive a crash.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use inboxgrove::store::{self, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inboxgrove"));
    // The developer's own settings must not leak into the test.
    for (k, _) in std::env::vars() {
        if k.starts_with("INBOXGROVE_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("INBOXGROVE_LOG", "warn");
    // No KumoMTA runs here; "" turns the epoch bumps off, so a stray
    // listener on the default port is never bumped.
    cmd.env("INBOXGROVE_KUMO_HTTP_URL", "");
    cmd
}

pub(crate) struct Server {
    child: Child,
    base: String,
    pub(crate) control: String,
    /// What it printed before it started listening.
    banner: Vec<String>,
}

impl Server {
    pub(crate) fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
        ];
        Server::start_with(data_dir, &args, env)
    }

    pub(crate) fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = bin();
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("server exited early; printed {banner:?}"))
                .unwrap();
            if let Some(url) = line.strip_prefix("public listener on ") {
                break url.to_owned();
            }
            banner.push(line);
        };
        let control = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| l.strip_prefix("control listener on ").map(str::to_owned))
            .expect("the control listener line");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            control,
            banner,
        }
    }

    /// SIGTERM, then wait: the graceful path a systemd stop takes.
    pub(crate) fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful stop exits 0: {status}");
    }

    /// SIGKILL: a crash.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let res = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            json!({ "email": email, "password": password }),
            None,
        )
        .await
    }
}

pub(crate) fn run(args: &[&str], data_dir: &Path, stdin: Option<&str>) -> Output {
    let mut child = bin()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first `address<TAB>password` line `inbox bulk` printed.
pub(crate) fn first_credentials(out: &str) -> (String, String) {
    out.lines()
        .find_map(|l| l.split_once('\t'))
        .map(|(e, p)| (e.to_owned(), p.to_owned()))
        .unwrap_or_else(|| panic!("no credentials in {out}"))
}

pub(crate) fn fresh_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    (tmp, data)
}

#[tokio::test]
async fn first_start_shows_the_admin_once_and_a_restart_keeps_everything() {
    let (_tmp, data) = fresh_dir();
    let server = Server::start(&data, &[]);
    let banner = server.banner.join("\n");
    assert!(banner.contains("email:     admin@localhost"), "{banner}");
    assert!(banner.contains("login url: http://127.0.0.1:"), "{banner}");
    // No terminal (as under systemd, whose journal keeps everything): the
    // password is not in the output, but in a file only this user reads.
    let file = data.join("initial-admin-password");
    assert!(
        banner.contains(&file.display().to_string()) && !banner.contains("password:  "),
        "{banner}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert!(password.len() >= 20);
    assert!(!banner.contains(&password));

    let (status, tokens) = server.login("admin@localhost", &password).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (_, created) = server
        .post("/api/v1/tokens", json!({ "name": "keep" }), Some(&access))
        .await;
    let api_token = created["token"].as_str().unwrap().to_owned();
    server.stop();

    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {mode:o}");
    let key_mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let server = Server::start(&data, &[]);
    assert!(
        !server.banner.iter().any(|l| l.contains("password")),
        "the password is shown only once: {:?}",
        server.banner
    );
    assert_eq!(
        server.login("admin@localhost", &password).await.0,
        StatusCode::OK
    );
    let (status, me) = server.get("/api/v1/me", &api_token).await;
    assert_eq!(status, StatusCode::OK, "API token survives a restart: {me}");
    // The signing key is kept too: an access token from before still works.
    assert_eq!(server.get("/api/v1/me", &access).await.0, StatusCode::OK);

    // The first password change removes the file: it holds nothing true.
    let (status, body) = server
        .post(
            "/api/v1/me/password",
            json!({ "current_password": password, "new_password": "the admin's own password" }),
            Some(&api_token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!file.exists(), "removed at the first change");
    server.stop();
}

#[tokio::test]
async fn the_admin_can_come_from_the_environment_and_a_second_server_is_refused() {
    let (tmp, data) = fresh_dir();
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, "from a secret file!\n").unwrap();
    let server = Server::start(
        &data,
        &[
            ("INBOXGROVE_ADMIN_EMAIL", "ops@example.com"),
            ("INBOXGROVE_ADMIN_PASSWORD_FILE", pw_file.to_str().unwrap()),
        ],
    );
    assert_eq!(
        server.banner,
        vec!["created admin ops@example.com".to_owned()]
    );
    assert_eq!(
        server
            .login("ops@example.com", "from a secret file!")
            .await
            .0,
        StatusCode::OK
    );

    let second = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
        ],
        &data,
        None,
    );
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already using"), "{err}");
    server.stop();
}

#[tokio::test]
async fn user_commands_work_beside_a_running_server() {
    let (_tmp, data) = fresh_dir();
    let init = run(&["init"], &data, None);
    assert!(init.status.success(), "{init:?}");
    assert!(stdout(&init).contains("master.key"));
    let server = Server::start(&data, &[]);

    let created = run(
        &[
            "user",
            "create",
            "--email",
            "Eve@Example.com",
            "--password-stdin",
        ],
        &data,
        Some("eve's long password\n"),
    );
    assert!(created.status.success(), "{created:?}");
    assert!(stdout(&created).contains("member eve@example.com"));
    assert_eq!(
        server
            .login("eve@example.com", "eve's long password")
            .await
            .0,
        StatusCode::OK
    );

    let listed = stdout(&run(&["user", "list"], &data, None));
    assert!(
        listed.contains("admin@localhost") && listed.contains("eve@example.com"),
        "{listed}"
    );

    let dup = run(
        &["user", "create", "--email", "eve@example.com"],
        &data,
        None,
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let short = run(
        &[
            "user",
            "create",
            "--email",
            "f@example.com",
            "--password-stdin",
        ],
        &data,
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));

    let reset = run(
        &["user", "set-password", "--email", "eve@example.com"],
        &data,
        None,
    );
    assert!(reset.status.success(), "{reset:?}");
    let new_pw = stdout(&reset)
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): ").map(str::to_owned))
        .unwrap();
    let (status, tokens) = server.login("eve@example.com", &new_pw).await;
    assert_eq!(status, StatusCode::OK);
    let eve = tokens["access_token"].as_str().unwrap().to_owned();
    // Verified once, so the server now answers from its credential cache.
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/me", &eve).await.0, StatusCode::OK);
    }

    let port = server.control.rsplit(':').next().unwrap().to_owned();
    let control_listen = format!("127.0.0.1:{port}");
    let disabled = run(
        &[
            "user",
            "--control-listen",
            &control_listen,
            "disable",
            "--email",
            "eve@example.com",
        ],
        &data,
        None,
    );
    assert!(disabled.status.success());
    assert_eq!(
        server.login("eve@example.com", &new_pw).await.0,
        StatusCode::FORBIDDEN
    );
    // Another process wrote the change: the server's cache notices it
    // within its one-second poll, never serving the disabled user after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = server.get("/api/v1/me", &eve).await.0;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            std::time::Instant::now() < deadline,
            "a user disabled by the CLI was still served 5 s later"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let missing = run(
        &["user", "disable", "--email", "nobody@example.com"],
        &data,
        None,
    );
    assert!(!missing.status.success());
    server.stop();

    // Console changes are audited, failures included.
    let store = Store::open(&data).unwrap();
    let rows: Vec<(String, String)> = store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT action, status FROM audit_logs WHERE action LIKE 'cli %' ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .unwrap();
    let expected = [
        ("cli user create", "success"),
        ("cli user create", "failure"),
        ("cli user create", "failure"),
        ("cli user set-password", "success"),
        ("cli user disable", "success"),
        ("cli user disable", "failure"),
    ];
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect();
    assert_eq!(rows, expected);

    let (_tmp2, empty) = fresh_dir();
    let no_data = run(&["user", "list"], &empty, None);
    assert!(!no_data.status.success());
    assert!(String::from_utf8_lossy(&no_data.stderr).contains("inboxgrove init"));
    assert!(!empty.exists(), "a CLI typo does not create a data dir");
}

#[tokio::test]
async fn bad_settings_are_refused_with_what_to_do() {
    let (tmp, data) = fresh_dir();
    let remote = run(&["serve", "--control-listen", "0.0.0.0:0"], &data, None);
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("--control-allow-remote"));

    let config = tmp.path().join("ig.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_typo = 1\n").unwrap();
    let typo = run(
        &["--config", config.to_str().unwrap(), "version"],
        &data,
        None,
    );
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("listen_typo"));

    let version = run(&["version"], &data, None);
    assert!(stdout(&version).starts_with("inboxgrove "));
}

#[tokio::test]
async fn a_job_left_running_by_a_crash_runs_after_restart() {
    let (_tmp, data) = fresh_dir();
    let server = Server::start(&data, &[]);
    server.crash();

    // The crashed process had claimed the hourly purge, with an expired
    // refresh token waiting for it.
    let store = Store::open(&data).unwrap();
    let job_id = store
        .write(|tx| {
            tx.execute("DELETE FROM jobs", [])?;
            let past = chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap();
            let id = store::jobs::insert(
                tx,
                &store::jobs::NewJob {
                    kind: inboxgrove::jobs::maintenance::PURGE,
                    payload: &Value::Null,
                    run_at: past,
                    max_attempts: 3,
                    unique_key: Some(inboxgrove::jobs::maintenance::PURGE),
                },
                past,
            )?;
            store::jobs::claim_due(tx, "crashed-worker", past)?;
            let user: String = tx.query_row("SELECT id FROM users", [], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO sessions (id, user_id, created_at) VALUES ('s-old', ?1, ?2)",
                rusqlite::params![user, past],
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at, created_at)
                 VALUES ('r-old', 's-old', x'00', ?1, ?1)",
                [past],
            )?;
            Ok::<_, store::StoreError>(id)
        })
        .await
        .unwrap();
    drop(store);

    let server = Server::start(&data, &[]);
    let store = Store::open(&data).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = store
            .read(move |c| store::jobs::by_id(c, job_id))
            .await
            .unwrap()
            .unwrap();
        if row.state == "succeeded" || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.state, "succeeded", "{row:?}");
    assert_eq!(row.attempts, 2, "the interrupted attempt counts");
    let left: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM refresh_tokens WHERE id = 'r-old'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(left, 0, "the job did its work");
    server.stop();
}

#[tokio::test]
async fn domain_commands_from_the_console() {
    let (_tmp, data) = fresh_dir();
    assert!(run(&["init"], &data, None).status.success());
    fn with_ip<'a>(rest: &[&'a str]) -> Vec<&'a str> {
        [&["domain", "--public-ipv4", "203.0.113.9"][..], rest].concat()
    }

    let no_ip = run(&["domain", "add", "cli.test"], &data, None);
    assert!(!no_ip.status.success());
    assert!(String::from_utf8_lossy(&no_ip.stderr).contains("INBOXGROVE_PUBLIC_IPV4"));

    let added = run(&with_ip(&["add", "CLI.test"]), &data, None);
    assert!(added.status.success(), "{added:?}");
    let out = stdout(&added);
    assert!(
        out.contains("status: awaiting_dns") && out.contains("dns: manual"),
        "{out}"
    );
    assert!(out.contains("mail.cli.test  203.0.113.9"), "{out}");
    assert!(out.contains("10 mail.cli.test"), "{out}");
    assert!(out.contains("v=DKIM1; k=rsa; p="), "{out}");

    let again = run(&with_ip(&["add", "cli.test"]), &data, None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already added"));
    let ip_literal = run(&with_ip(&["add", "10.0.0.1"]), &data, None);
    assert!(String::from_utf8_lossy(&ip_literal.stderr).contains("IP address"));

    assert!(stdout(&run(&["domain", "list"], &data, None)).contains("cli.test"));
    assert!(stdout(&run(&["domain", "show", "cli.test"], &data, None)).contains("_dmarc.cli.test"));
    let removed = run(&["domain", "remove", "cli.test"], &data, None);
    assert!(removed.status.success(), "{removed:?}");
    assert!(!stdout(&run(&["domain", "list"], &data, None)).contains("cli.test"));
    let missing = run(&["domain", "show", "cli.test"], &data, None);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not added"));
}

#[tokio::test]
async fn a_process_killed_during_a_bulk_request_leaves_all_or_none() {
    let (_tmp, data) = fresh_dir();
    let env = [
        ("INBOXGROVE_ADMIN_EMAIL", "ops@example.com"),
        ("INBOXGROVE_ADMIN_PASSWORD", "an admin password"),
        ("INBOXGROVE_PUBLIC_IPV4", "203.0.113.5"),
    ];
    let server = Server::start(&data, &env);
    let (_, tokens) = server.login("ops@example.com", "an admin password").await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, domain) = server
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": "crash.test" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{domain}");
    let domain_id = domain["domain_id"].as_str().unwrap().to_owned();

    let url = format!("{}/api/v1/inboxes/bulk", server.base);
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "domain_id": domain_id, "quantity": 1000 }))
            .send()
            .await
    });
    // Mid-request: the passwords are being hashed.
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.crash();
    assert!(
        request.await.unwrap().is_err(),
        "the connection died with the process"
    );

    let store = Store::open(&data).unwrap();
    let count: i64 = store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM mailboxes", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert!(
        count == 0 || count == 1000,
        "{count} mailboxes: a half-done request"
    );
    drop(store);
    // And the server comes back on the same data.
    Server::start(&data, &env).stop();
}
