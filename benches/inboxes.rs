//! Inbox and control-plane benchmark: bulk creation of 50 and 1000
//! mailboxes through the API, `/kumo/v1/auth` for first logins (argon2) and
//! repeated ones (the fast path), and `/kumo/v1/send-check` decisions.
//! Run with `cargo bench --bench inboxes`; it prints its figures.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

#[path = "common/app.rs"]
mod app;
#[path = "common/load.rs"]
mod load;

use load::{measure, report};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let app::Running { base, control } = app::start(dir.path()).await;
        let control = format!("{control}/kumo/v1");
        let secret = std::fs::read_to_string(dir.path().join("kumo.secret"))
            .expect("secret")
            .trim()
            .to_owned();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        let token = app::login(&client, &base).await;
        let add = format!("{base}/api/v1/domains/add");
        let bulk_url = format!("{base}/api/v1/inboxes/bulk");

        println!(
            "inboxgrove inbox benchmark ({} cores, client and server in one process)",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let mut all: Vec<(String, String)> = Vec::new();
        for (i, quantity) in [50, 50, 50, 1000].into_iter().enumerate() {
            let domain = app::post(&client, &add, &token, json!({ "domain_name": format!("bulk{i}.test") })).await;
            let started = Instant::now();
            let created = app::post(
                &client,
                &bulk_url,
                &token,
                json!({ "domain_id": domain["domain_id"], "quantity": quantity, "daily_limit": 500 }),
            )
            .await;
            let took = started.elapsed();
            assert_eq!(created["created_count"], quantity, "{created}");
            println!("POST /inboxes/bulk quantity={quantity:<5} {took:>10.1?}");
            all.extend(created["inboxes"].as_array().expect("inboxes").iter().map(|m| {
                (
                    m["email"].as_str().expect("email").to_owned(),
                    m["password"].as_str().expect("password").to_owned(),
                )
            }));
        }
        let logins = Arc::new(all);

        let auth_url = format!("{control}/auth");
        let call = {
            let (client, secret) = (client.clone(), secret.clone());
            move |url: String, body: Value| {
                let req = client.post(url).bearer_auth(&secret).json(&body);
                async move { req.send().await.expect("send").status() }
            }
        };
        // First logins: every one pays argon2.
        let first = 200;
        let f = measure(first, 16, {
            let (call, logins, url) = (call.clone(), logins.clone(), auth_url.clone());
            move |i| {
                let (u, p) = &logins[i];
                call(url.clone(), json!({ "username": u, "password": p }))
            }
        })
        .await;
        report("POST /kumo/v1/auth (first login)", first, 16, &f);
        // The same mailboxes again: the fast path.
        let n = 40_000;
        let f = measure(n, 64, {
            let (call, logins, url) = (call.clone(), logins.clone(), auth_url.clone());
            move |i| {
                let (u, p) = &logins[i % first];
                call(url.clone(), json!({ "username": u, "password": p }))
            }
        })
        .await;
        report("POST /kumo/v1/auth (repeat login)", n, 64, &f);

        let send_url = format!("{control}/send-check");
        let f = measure(n, 64, {
            let (call, logins) = (call.clone(), logins.clone());
            move |i| {
                let (u, _) = &logins[i % logins.len()];
                call(
                    send_url.clone(),
                    json!({ "authn_id": u, "envelope_from": u, "header_from": u, "recipients": [format!("r{i}@example.net")] }),
                )
            }
        })
        .await;
        report("POST /kumo/v1/send-check", n, 64, &f);
    });
}
