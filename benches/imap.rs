//! IMAP login benchmark through the whole chain: client (TLS) → Dovecot →
//! `inboxgrove checkpassword` (a process per login) → `/kumo/v1/auth`.
//! Starts the appliance in-process and a real Dovecot (Debian's
//! `dovecot-imapd`) rendered by `inboxgrove dovecot-config`, then logs in
//! and out over IMAPS. Run with `cargo bench --bench imap`; it prints its
//! figures.
//!
//! Client, Dovecot and the appliance share this machine's cores, so the
//! figures are a floor on what the appliance alone would do.

use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

#[path = "common/app.rs"]
mod app;
#[path = "common/load.rs"]
mod load;
// Shared with the integration tests, which use more of them.
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support/dovecot.rs"]
mod dovecot;
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../tests/support/imap_client.rs"]
mod imap_client;

use dovecot::Dovecot;
use imap_client::{Imap, pinned_connector};
use load::{measure, report};

const MAILBOXES: usize = 20;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !dovecot::available() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let app::Running { base, control } = app::start(dir.path()).await;
        let client = reqwest::Client::new();
        let token = app::login(&client, &base).await;
        let domain = app::post(
            &client,
            &format!("{base}/api/v1/domains/add"),
            &token,
            json!({ "domain_name": "imapbench.test" }),
        )
        .await;
        let created = app::post(
            &client,
            &format!("{base}/api/v1/inboxes/bulk"),
            &token,
            json!({ "domain_id": domain["domain_id"], "quantity": MAILBOXES, "enable_warmup": false }),
        )
        .await;
        let created_accounts: Vec<(String, String)> = created["inboxes"]
                .as_array()
                .expect("inboxes")
                .iter()
                .map(|i| {
                    let text = |k: &str| i[k].as_str().expect("field").to_owned();
                    (text("email"), text("password"))
                })
                .collect();
        let accounts = Arc::new(created_accounts.clone());
        let d = Arc::new(Dovecot::start(&control, dir.path()).await);
        let tls = Arc::new(pinned_connector(&d.cert));

        println!(
            "inboxgrove IMAP login benchmark ({} cores; client, Dovecot and server on one machine)",
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let login = move |i: usize| {
            let (d, tls, accounts) = (d.clone(), tls.clone(), accounts.clone());
            async move {
                let (email, password) = &accounts[i % accounts.len()];
                let mut imap = Imap::tls(d.imaps, &tls).await;
                let ok = imap.login(email, password).await.ok();
                imap.logout().await;
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        };
        let login = Arc::new(login);
        // First logins pay argon2 in the appliance; later ones take its
        // fast path, so what remains is TLS, Dovecot and the helper.
        let started = Instant::now();
        let first = {
            let login = login.clone();
            measure(MAILBOXES, 1, move |i| login(i)).await
        };
        report("imap login, first (argon2)", MAILBOXES, 1, &first);
        println!("  ({MAILBOXES} first logins in {:.2?})", started.elapsed());
        for (total, concurrency) in [(200, 1), (400, 4), (400, 16)] {
            let login = login.clone();
            let figures = measure(total, concurrency, move |i| login(i)).await;
            report("imap login+logout (TLS)", total, concurrency, &figures);
        }
        // The helper alone, as Dovecot runs it (through bash here, for the
        // fds): what each login costs beyond Dovecot's own work.
        let fd3 = dir.path().join("fd3");
        let (email, password) = &created_accounts[0];
        std::fs::write(&fd3, format!("{email}\0{password}\0\0")).expect("fd3");
        let secret = dir.path().join("kumo.secret");
        let helper = move |_| {
            let (fd3, secret, control) = (fd3.clone(), secret.clone(), control.clone());
            async move {
                let status = tokio::task::spawn_blocking(move || {
                    std::process::Command::new("bash")
                        .args(["-c", "exec \"$0\" checkpassword --control-url \"$1\" --secret-file \"$2\" 3<\"$3\" 4>/dev/null"])
                        .arg(env!("CARGO_BIN_EXE_inboxgrove"))
                        .arg(&control)
                        .arg(&secret)
                        .arg(&fd3)
                        .status()
                        .expect("helper")
                })
                .await
                .expect("task");
                if status.success() {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        };
        let figures = measure(200, 1, helper).await;
        report("checkpassword helper alone", 200, 1, &figures);
    });
}
