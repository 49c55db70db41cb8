//! Browser UI benchmark: render time of the dashboard and of the inbox list
//! with 1,000 inboxes (a page of 50, and a search), over HTTP with a
//! session cookie, as a browser asks for them. Target: p99 < 50 ms.
//! Run with `cargo bench --bench web`; it prints its figures.

use serde_json::json;

#[path = "common/app.rs"]
mod app;
#[path = "common/load.rs"]
mod load;

use load::{measure, report};

/// Signs in through the login form; returns the `Cookie` header value.
async fn sign_in(client: &reqwest::Client, base: &str) -> String {
    let res = client
        .post(format!("{base}/login"))
        .form(&[("email", app::ADMIN), ("password", app::PASSWORD)])
        .send()
        .await
        .expect("login");
    let set = res
        .headers()
        .get("set-cookie")
        .expect("session cookie")
        .to_str()
        .expect("ascii");
    set.split(';').next().expect("cookie pair").to_owned()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = app::start(dir.path()).await.base;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let token = app::login(&client, &base).await;
        let domain = app::post(
            &client,
            &format!("{base}/api/v1/domains/add"),
            &token,
            json!({ "domain_name": "ui.test" }),
        )
        .await;
        let created = app::post(
            &client,
            &format!("{base}/api/v1/inboxes/bulk"),
            &token,
            json!({ "domain_id": domain["domain_id"], "quantity": 1000 }),
        )
        .await;
        assert_eq!(created["created_count"], 1000, "{created}");
        let cookie = sign_in(&client, &base).await;

        println!(
            "inboxgrove UI benchmark ({} cores, client and server in one process; 1,000 inboxes)",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        for (name, path) in [
            ("GET /dashboard", "/dashboard".to_owned()),
            ("GET /inboxes (page of 50)", "/inboxes".to_owned()),
            ("GET /inboxes?page=20", "/inboxes?page=20".to_owned()),
            (
                "GET /inboxes?q= (search)",
                "/inboxes?q=a&status=warming".to_owned(),
            ),
        ] {
            let (total, concurrency) = (500, 4);
            let (client, cookie, url) = (client.clone(), cookie.clone(), format!("{base}{path}"));
            let figures = measure(total, concurrency, move |_| {
                let req = client.get(&url).header("cookie", &cookie);
                async move { req.send().await.expect("get").status() }
            })
            .await;
            report(name, total, concurrency, &figures);
        }
    });
}
