//! Starting the appliance in-process for a benchmark.

use std::num::NonZeroU32;

use inboxgrove::config::{BootstrapArgs, DomainArgs, FileConfig, Global, ServeArgs, Settings};
use serde_json::{Value, json};

pub const ADMIN: &str = "bench@example.com";
pub const PASSWORD: &str = "benchmark password 1";

/// Settings for a server on loopback port 0 in `dir`, rate limits out of
/// the way, with the given domain settings.
pub fn settings(dir: &std::path::Path, domains: DomainArgs) -> Settings {
    let serve = ServeArgs {
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

/// The admin's access token.
pub async fn login(client: &reqwest::Client, base: &str) -> String {
    let tokens: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    tokens["access_token"].as_str().expect("token").to_owned()
}
