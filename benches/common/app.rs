//! Starting the appliance in-process for a benchmark.

use std::num::NonZeroU32;
use std::sync::Arc;

use inboxgrove::clock::SystemClock;
use inboxgrove::config::{BootstrapArgs, DomainArgs, FileConfig, Global, ServeArgs, Settings};
use inboxgrove::server::Application;
use serde_json::{Value, json};

pub const ADMIN: &str = "bench@example.com";
pub const PASSWORD: &str = "benchmark password 1";

/// Settings for a server on loopback port 0 in `dir`, rate limits out of
/// the way, with the given domain settings.
pub fn settings(dir: &std::path::Path, domains: DomainArgs) -> Settings {
    settings_with(dir, domains, |_| {})
}

/// As [`settings`], with more flags set by `more`.
pub fn settings_with(
    dir: &std::path::Path,
    domains: DomainArgs,
    more: impl FnOnce(&mut ServeArgs),
) -> Settings {
    let mut serve = ServeArgs {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        control_listen: Some("127.0.0.1:0".parse().expect("addr")),
        rate_limit_per_minute: NonZeroU32::new(1_000_000_000),
        rate_limit_burst: NonZeroU32::new(1_000_000_000),
        bootstrap: BootstrapArgs {
            admin_email: Some(ADMIN.into()),
        },
        domains,
        ..Default::default()
    };
    more(&mut serve);
    let global = Global {
        data_dir: Some(dir),
        log: None,
        log_format: None,
    };
    Settings::resolve(global, &serve, FileConfig::default(), &|k| {
        (k == "INBOXGROVE_ADMIN_PASSWORD").then(|| PASSWORD.to_owned())
    })
    .expect("settings")
}

/// A server running in `dir` with a public IPv4 set, so domains can be
/// added.
pub struct Running {
    /// `http://host:port` of the public listener.
    pub base: String,
    /// `http://host:port` of the control listener.
    #[allow(dead_code)] // the UI benchmark needs only the public listener
    pub control: String,
}

pub async fn start(dir: &std::path::Path) -> Running {
    let settings = settings(
        dir,
        DomainArgs {
            public_ipv4: Some("203.0.113.7".parse().expect("ip")),
            ..Default::default()
        },
    );
    let server = Application::build(&settings, Arc::new(SystemClock))
        .await
        .expect("app");
    let running = Running {
        base: format!("http://{}", server.public_addr()),
        control: format!("http://{}", server.control_addr()),
    };
    tokio::spawn(server.run(std::future::pending()));
    running
}

/// A JSON POST with a bearer token; the answer's JSON.
pub async fn post(client: &reqwest::Client, url: &str, token: &str, body: Value) -> Value {
    client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json")
}

/// The admin's access token.
pub async fn login(client: &reqwest::Client, base: &str) -> String {
    login_as(client, base, ADMIN, PASSWORD).await
}

pub async fn login_as(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let tokens: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    tokens["access_token"].as_str().expect("token").to_owned()
}
