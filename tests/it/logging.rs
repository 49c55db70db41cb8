//! What the real binary writes to its log: never a secret, at any level.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use reqwest::StatusCode;

use crate::process::{bin, fresh_dir};

#[tokio::test]
async fn no_link_token_reaches_the_log_even_at_debug() {
    let (_dir, data) = fresh_dir();
    let mut child = bin()
        .args(["--data-dir"])
        .arg(&data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
        ])
        .env("INBOXGROVE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let sink = logged.clone();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("public listener on ") {
            break url.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let client = reqwest::Client::new();
    let unsubscribe = format!("{base}/u/UnsubscribeTokenSecret0123456789");
    let export = format!("{base}/api/v1/exports/ExportTokenSecret0123456789");
    assert_eq!(
        client.get(&unsubscribe).send().await.unwrap().status(),
        StatusCode::OK
    );
    client
        .post(&unsubscribe)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    client.get(&export).send().await.unwrap();

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let all = logged.lock().unwrap().clone();
    assert!(
        all.contains("/u/{token}"),
        "requests are logged at debug: {all}"
    );
    assert!(all.contains("/api/v1/exports/{token}"), "{all}");
    for secret in ["UnsubscribeTokenSecret", "ExportTokenSecret"] {
        assert!(!all.contains(secret), "{secret} in the log:\n{all}");
    }
}
