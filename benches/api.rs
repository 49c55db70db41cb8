//! API latency benchmark: starts the release binary on loopback with a temp
//! data dir and measures login and authenticated `GET /api/v1/me` under
//! concurrency. Run with `cargo bench --bench api`; it prints its figures.
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
fn wrk(url: &str, token: &str) -> Option<String> {
    let out = Command::new("wrk")
        .args(["-t1", "-c200", "-d10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let keep = ["50%", "90%", "99%", "Requests/sec", "Non-2xx"];
    Some(
        text.lines()
            .filter(|l| keep.iter().any(|k| l.contains(k)))
            .map(|l| format!("  {}", l.trim()))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn main() {
    // `cargo test` builds benches without running them; only `cargo bench`
    // passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
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
        let access_for_wrk = access.clone();
        for (name, token) in [("GET /api/v1/me (JWT)", access), ("GET /api/v1/me (API token)", api_token)] {
            let (c, url) = (client.clone(), me_url.clone());
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
        }
        if let Some(summary) = wrk(&me_url, &access_for_wrk) {
            println!("wrk (a C load generator, lighter than this client), GET /api/v1/me (JWT), c=200, 10 s:");
            println!("{summary}");
        }
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
