//! What the admin sees: the domain page says whether the mail host has a
//! real certificate, and the diagnostics whether every active domain's
//! does; both follow the manifest as bundles are issued.

use chrono::DateTime;
use inboxgrove::config::CertArgs;

use crate::diagnostics::check;
use crate::domains::world_around;
use crate::helpers::Options;
use crate::inboxes::with_domain;
use crate::support::test_ca::TestCa;
use crate::web::form_sign_in;

#[tokio::test]
async fn the_domain_page_and_the_diagnostics_follow_the_certificates_issued() {
    let tls_dir = tempfile::tempdir().unwrap();
    let w = world_around(Options {
        domains: inboxgrove::config::DomainArgs {
            public_ipv4: Some("203.0.113.7".parse().unwrap()),
            ..Default::default()
        },
        certs: CertArgs {
            tls_dir: Some(tls_dir.path().to_owned()),
            public_tls: None,
        },
        ..Default::default()
    })
    .await;
    let id = with_domain(&w, "page.test").await;
    with_domain(&w, "other.test").await;
    w.app.set_domain_status("page.test", "active");
    w.app.set_domain_status("other.test", "active");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = form_sign_in(&w.app, &client).await;
    let page_at = |path: String| {
        let url = format!("{}{path}", w.app.base);
        let (client, cookie) = (&client, &cookie);
        async move {
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let page = || page_at(format!("/domains/{id}"));
    let diagnostics = || page_at("/diagnostics".to_owned());

    assert!(
        diagnostics()
            .await
            .contains("While the certificate is self-signed")
    );
    let before = page().await;
    assert!(before.contains("id=\"certificate\""), "{before}");
    assert!(before.contains("No certificate covers <code>mail.page.test</code>"));
    assert!(before.contains("never arrives"), "{before}");
    let (_, report) = w.app.get("/api/v1/diagnostics", &w.admin).await;
    let coverage = check(&report, "certificate_coverage");
    assert_eq!(coverage["status"], "warn", "{coverage}");
    let detail = coverage["detail"].as_str().unwrap();
    assert!(detail.contains("mail.page.test (page.test)"), "{detail}");
    assert!(detail.contains("mail.other.test (other.test)"), "{detail}");

    let ca = TestCa::new();
    let until = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    ca.install(tls_dir.path(), "mail-1", &["mail.page.test"], until);
    let after = page().await;
    assert!(
        !diagnostics()
            .await
            .contains("While the certificate is self-signed")
    );
    assert!(after.contains("certificate <code>mail-1</code>"), "{after}");
    assert!(after.contains(&until.format("%Y-%m-%d").to_string()));
    assert!(!after.contains("never arrives"));
    let (_, report) = w.app.get("/api/v1/diagnostics", &w.admin).await;
    assert_eq!(check(&report, "certificate_mail-1")["status"], "ok");
    let detail = check(&report, "certificate_coverage")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("mail.other.test") && !detail.contains("mail.page.test"),
        "{detail}"
    );
}
