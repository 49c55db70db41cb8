//! Inbox and control-plane benchmark: bulk creation of 50 and 1000
//! mailboxes through the API, `/kumo/v1/auth` for first logins (argon2) and
//! repeated ones (the fast path), `/kumo/v1/send-check` decisions (From
//! header parsed, the mailbox's limit and its owner's plan volume
//! counted), and `/kumo/v1/events` batches as the
//! policy's log hook posts them.
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
        let admin = app::login(&client, &base).await;
        // The mailboxes are a member's, on a plan whose daily volume is far
        // above this run: every send-check takes the plan's path too (its
        // limit read and its day count), as a member's message does.
        let (email, password) = ("bench-member@example.com", "bench member password");
        app::post(&client, &format!("{base}/api/v1/users"), &admin,
            json!({ "email": email, "password": password, "subscription_tier": "enterprise" })).await;
        let plan = client
            .patch(format!("{base}/api/v1/tiers/enterprise"))
            .bearer_auth(&admin)
            .json(&json!({ "daily_volume": 100_000_000 }))
            .send()
            .await
            .expect("plan");
        assert!(plan.status().is_success(), "{}", plan.status());
        let token = app::login_as(&client, &base, email, password).await;
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
        // Only a verified domain sends; the benchmark has no DNS to verify
        // against, so it marks its domains verified in the database.
        let db = rusqlite::Connection::open(dir.path().join("inboxgrove.db")).expect("db");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        db.execute("UPDATE domains SET status = 'active'", []).expect("activate");

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
        let check = |u: &str, i: usize| {
            json!({ "authn_id": u, "envelope_from": u, "from_headers": [format!("Ada Lovelace <{u}>")],
                    "sender_headers": [], "recipients": [format!("r{i}@example.net")] })
        };
        let sample: Value = client
            .post(&send_url)
            .bearer_auth(&secret)
            .json(&check(&logins[0].0, 0))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(sample["allow"], true, "{sample}");
        let f = measure(n, 64, {
            let (call, logins) = (call.clone(), logins.clone());
            move |i| {
                let (u, _) = &logins[i % logins.len()];
                call(send_url.clone(), check(u, i))
            }
        })
        .await;
        report("POST /kumo/v1/send-check", n, 64, &f);

        // The log hook: 100 records a batch, each wrapped with its log-hook
        // message id, as the policy sends them: 50 submissions' Receptions
        // and the Deliveries that match them (counters updated).
        let events_url = format!("{control}/events");
        let batches = 400;
        let f = measure(batches, 4, {
            let (call, logins) = (call.clone(), logins.clone());
            move |b| {
                let batch: Vec<Value> = (0..50)
                    .flat_map(|k| {
                        let (u, _) = &logins[(b * 50 + k) % logins.len()];
                        let (spool, rcpt) = (format!("spool{b}-{k}"), format!("r{k}@example.net"));
                        let at = 1_900_000_000 + b;
                        [
                            json!({ "hook_id": format!("hook{b}-{k}-r"), "record": {
                                "type": "Reception", "id": spool, "sender": u, "recipient": rcpt,
                                "timestamp": at, "reception_protocol": "ESMTP",
                                "meta": { "x_listener": "submission" },
                                "headers": { "Message-ID": format!("<{spool}@bench>") },
                                "response": { "code": 250, "content": "ok" } } }),
                            json!({ "hook_id": format!("hook{b}-{k}-d"), "record": {
                                "type": "Delivery", "id": spool, "sender": u, "recipient": rcpt,
                                "timestamp": at + 1, "num_attempts": 1, "meta": {},
                                "response": { "code": 250, "content": "ok" } } }),
                        ]
                    })
                    .collect();
                call(events_url.clone(), Value::Array(batch))
            }
        })
        .await;
        report("POST /kumo/v1/events (100)", batches, 4, &f);
        println!(
            "  = {:.0} records/s",
            f.rps * 100.0
        );
    });
}
