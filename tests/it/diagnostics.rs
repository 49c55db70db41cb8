//! `inboxgrove doctor` as a process and the diagnostics page and API of a
//! running server: admins see every check, members are refused, and a
//! failing check makes the command exit non-zero.

use std::io::{Read, Write};
use std::net::TcpListener;

use reqwest::StatusCode;
use serde_json::Value;

use inboxgrove::config::DomainArgs;
use serde_json::json;

use crate::domains::{IPV4, World, world_around};
use crate::helpers::{Options, closed_doctor, spawn_app};
use crate::process::{fresh_dir, run, stdout};
use crate::web::form_sign_in;

/// Every check of a report has the documented shape; a fix exactly when
/// it is not ok.
fn assert_shape(report: &Value) {
    let checks = report["checks"].as_array().expect("checks is a list");
    assert!(!checks.is_empty(), "{report}");
    for c in checks {
        assert!(c["name"].is_string() && c["detail"].is_string(), "{c}");
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert_eq!(c["fix"].is_null(), status == "ok", "{c}");
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(report["ok"], !failed, "{report}");
}

pub fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn doctor_prints_json_and_exits_non_zero_on_a_fail() {
    let (_tmp, data) = fresh_dir();
    assert!(run(&["init"], &data, None).status.success());
    // KumoMTA's port 25 double: a banner naming the mail host.
    let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_addr = smtp.local_addr().unwrap().to_string();
    let banner = std::thread::spawn(move || {
        let (mut s, _) = smtp.accept().unwrap();
        s.write_all(b"220 mail.test KumoMTA\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let d = closed_doctor(&data);
    let out = run(
        &[
            "doctor",
            "--json",
            "--hostname",
            "mail.test",
            "--smtp-addr",
            &smtp_addr,
            "--submission-addr",
            &d.submission_addr.unwrap().to_string(),
            "--imaps-addr",
            &d.imaps_addr.unwrap().to_string(),
            "--outbound-host",
            d.outbound_host.as_deref().unwrap(),
            "--clock-url",
            d.clock_url.as_deref().unwrap(),
            "--kumo-http-url",
            "",
            "--mail-root",
            data.to_str().unwrap(),
            "--doctor-timeout",
            "1",
        ],
        &data,
        None,
    );
    banner.join().unwrap();
    let report: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_shape(&report);
    assert_eq!(check(&report, "port_25")["status"], "ok", "{report}");
    assert_eq!(check(&report, "disk_mail_root")["status"], "ok", "{report}");
    // Nothing on 587: a fail, and the canary it needed is "not tried".
    assert_eq!(check(&report, "port_587")["status"], "fail");
    assert_eq!(check(&report, "kumomta_control")["status"], "warn");
    // kumo_http_url emptied: doctor says it cannot ask KumoMTA.
    assert_eq!(check(&report, "kumomta")["status"], "warn");
    assert_eq!(report["ok"], false);
    assert_eq!(out.status.code(), Some(1), "{report}");
    // The control secret appears nowhere in the output.
    let secret = std::fs::read_to_string(data.join("kumo.secret")).unwrap();
    assert!(!stdout(&out).contains(secret.trim()));
}

#[tokio::test]
async fn admins_see_the_diagnostics_and_members_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (status, report) = app.get("/api/v1/diagnostics", &admin).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_shape(&report);
    // Nothing listens where the test app's diagnostics look.
    assert_eq!(check(&report, "port_993")["status"], "fail");
    let (_, member) = app.member(&admin, "m@diag.test").await;
    let (status, body) = app.get("/api/v1/diagnostics", &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = form_sign_in(&app, &client).await;
    let page = client
        .get(format!("{}/diagnostics", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for c in report["checks"].as_array().unwrap() {
        let row = format!("<td>{}</td>", c["name"].as_str().unwrap());
        assert!(html.contains(&row), "{row} missing");
    }
    assert!(html.contains("badge fail"));
    assert!(html.contains("mail between two hosted mailboxes never arrives"));
}

async fn report(w: &World) -> Value {
    let (status, report) = w.app.get("/api/v1/diagnostics", &w.admin).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// The PTR of the public address, served by the loopback DNS server: it
/// must resolve back and name a mail host of this server.
#[tokio::test]
async fn the_ptr_check_asks_the_configured_dns_servers() {
    let w = world_around(Options {
        domains: DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    w.zones.add_zone("byhand.test");
    let (status, added) = w.add(json!({ "domain_name": "byhand.test" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{added}");
    // A server that refuses the question: the check could not run.
    let r = report(&w).await;
    assert_eq!(check(&r, "public_ip")["status"], "warn", "{r}");
    w.zones.add_zone("113.0.203.in-addr.arpa");
    let r = report(&w).await;
    assert_eq!(check(&r, "public_ip")["status"], "fail", "no PTR yet: {r}");
    // The domain's records are not published yet: a warning, not a fail.
    assert_eq!(check(&r, "dns_byhand.test")["status"], "warn", "{r}");

    w.zones.add_record(
        "113.0.203.in-addr.arpa",
        "PTR",
        "7.113.0.203.in-addr.arpa",
        "mail.byhand.test",
        None,
    );
    let r = report(&w).await;
    assert_eq!(
        check(&r, "public_ip")["status"],
        "fail",
        "not forward-confirmed: {r}"
    );
    w.zones
        .add_record("byhand.test", "A", "mail.byhand.test", IPV4, None);
    let r = report(&w).await;
    let c = check(&r, "public_ip");
    assert_eq!(c["status"], "ok", "{r}");
    assert!(
        c["detail"].as_str().unwrap().contains("mail.byhand.test"),
        "{c}"
    );
}
