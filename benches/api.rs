//! API latency benchmark: starts the release binary on loopback with a temp
//! data dir and measures login and authenticated `GET /api/v1/me` under
//! concurrency, side by side with a bare axum handler answering the same
//! bytes in a process of its own (this binary run with `--bare-server`),
//! so the figures say what InboxGrove's HTTP layer costs over axum itself
//! (issue 12: at least half the throughput, p99 under 10 ms at c=200).
//! Run with `cargo bench --bench api`; it prints its figures.
//!
//! Client and server share this machine's cores, so the figures are a
//! floor on what the server alone would do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

#[path = "common/load.rs"]
mod load;

use load::{measure, report};

const PASSWORD: &str = "benchmark password 1";

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inboxgrove"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--rate-limit-per-minute",
            "100000000",
            "--rate-limit-burst",
            "100000000",
        ])
        .env("INBOXGROVE_ADMIN_EMAIL", "bench@example.com")
        .env("INBOXGROVE_ADMIN_PASSWORD", PASSWORD)
        .env("INBOXGROVE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("server output").expect("utf-8");
        if let Some(url) = line.strip_prefix("public listener on ") {
            break url.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base,
        _dir: dir,
    }
}

/// The same measurement with wrk, when it is installed (Debian package
/// `wrk`): its client costs less CPU, so more of the machine serves.
/// Returns (requests/s, p99 in ms) and the lines it printed.
fn wrk(url: &str, token: &str) -> Option<(f64, f64, String)> {
    let out = Command::new("wrk")
        .args(["-t1", "-c200", "-d10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let rps: f64 = field("Requests/sec:")?.parse().ok()?;
    let p99 = field("99%")?;
    let p99_ms = match p99.strip_suffix("ms") {
        Some(ms) => ms.parse().ok()?,
        None => match p99.strip_suffix("us") {
            Some(us) => us.parse::<f64>().ok()? / 1000.0,
            None => p99.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0,
        },
    };
    let keep = ["50%", "90%", "99%", "Requests/sec", "Non-2xx"];
    let lines = text
        .lines()
        .filter(|l| keep.iter().any(|k| l.contains(k)))
        .map(|l| format!("    {}", l.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    Some((rps, p99_ms, lines))
}

/// `--bare-server`: a bare axum handler with the body of a `GET /me`, on
/// a runtime like the server's, printing its address as the server does.
fn bare_server(body: String) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!(
            "bare listener on http://{}",
            listener.local_addr().expect("addr")
        );
        let app = axum::Router::new().route(
            "/api/v1/me",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

fn start_bare(body: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this benchmark"))
        .args(["--bare-server", body])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bare server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next().expect("bare output").expect("utf-8");
    let base = line
        .strip_prefix("bare listener on ")
        .expect("bare address")
        .to_owned();
    (child, base)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-server") {
        return bare_server(args.get(i + 1).cloned().unwrap_or_default());
    }
    // `cargo test` builds benches without running them; only `cargo bench`
    // passes --bench.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = start();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("client");
        let login_url = format!("{}/api/v1/auth/login", server.base);
        let body = json!({ "email": "bench@example.com", "password": PASSWORD });
        let tokens: Value = client
            .post(&login_url)
            .json(&body)
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("tokens");
        let access = tokens["access_token"].as_str().expect("token").to_owned();
        let created: Value = client
            .post(format!("{}/api/v1/tokens", server.base))
            .bearer_auth(&access)
            .json(&json!({ "name": "bench" }))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        let api_token = created["token"].as_str().expect("api token").to_owned();

        println!("inboxgrove API benchmark ({} cores, client and server on one machine)",
            std::thread::available_parallelism().map_or(0, usize::from));
        let me_url = format!("{}/api/v1/me", server.base);
        let me_body = client
            .get(&me_url)
            .bearer_auth(&api_token)
            .send()
            .await
            .expect("me")
            .text()
            .await
            .expect("body");
        let (mut bare, bare_base) = start_bare(&me_body);
        let bare_url = format!("{bare_base}/api/v1/me");
        let cases = [
            ("GET /api/v1/me (JWT)", me_url.clone(), access.clone()),
            ("GET /api/v1/me (API token)", me_url.clone(), api_token.clone()),
            ("bare axum, same body", bare_url.clone(), api_token.clone()),
        ];
        let mut rps = Vec::new();
        for (name, url, token) in cases {
            let c = client.clone();
            // Warm up connections and caches.
            measure(2_000, 200, {
                let (c, url, token) = (c.clone(), url.clone(), token.clone());
                move |_| {
                    let req = c.get(&url).bearer_auth(&token);
                    async move { req.send().await.expect("send").status() }
                }
            })
            .await;
            let f = measure(40_000, 200, move |_| {
                let req = c.get(&url).bearer_auth(&token);
                async move { req.send().await.expect("send").status() }
            })
            .await;
            report(name, 40_000, 200, &f);
            rps.push(f.rps);
        }
        println!(
            "  API token / bare axum (this client): {:.2} of the throughput",
            rps[1] / rps[2]
        );
        let with_wrk = [
            ("GET /api/v1/me (API token)", &me_url),
            ("bare axum, same body", &bare_url),
        ]
        .map(|(name, url)| wrk(url, &api_token).map(|w| (name, w)));
        if let [Some((a, ours)), Some((b, theirs))] = &with_wrk {
            println!("wrk (a C load generator, lighter than this client), c=200, 10 s:");
            println!("  {a}:\n{}", ours.2);
            println!("  {b}:\n{}", theirs.2);
            println!(
                "  API token / bare axum (wrk): {:.2} of the throughput; p99 {:.2} ms vs {:.2} ms (target: >= 0.5, < 10 ms)",
                ours.0 / theirs.0,
                ours.1,
                theirs.1
            );
        }
        let _ = bare.kill();
        let _ = bare.wait();
        for concurrency in [1, 2, 200] {
            let total = if concurrency == 200 { 400 } else { 100 };
            let (c, url, body) = (client.clone(), login_url.clone(), body.clone());
            let f = measure(total, concurrency, move |_| {
                let req = c.post(&url).json(&body);
                async move { req.send().await.expect("send").status() }
            })
            .await;
            report("POST /api/v1/auth/login", total, concurrency, &f);
        }
    });
}
