//! `public_tls = "acme"`: the admin UI and API over HTTPS with the bundle
//! for the name asked for, swapped on `tls::Reload` without a restart.

use chrono::{DateTime, Utc};
use inboxgrove::config::{CertArgs, PublicTls};

use crate::helpers::{Options, TestApp, spawn_app_with};
use crate::support::imap_client::pinned_connector;
use crate::support::test_ca::{TestCa, served_leaf};

fn until() -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000, 0).unwrap()
}

async fn https_app(dir: &tempfile::TempDir) -> TestApp {
    spawn_app_with(Options {
        certs: CertArgs {
            tls_dir: Some(dir.path().to_owned()),
            public_tls: Some(PublicTls::Acme),
        },
        public_url: Some("https://admin.grove.test".into()),
        ..Default::default()
    })
    .await
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    pem::parse(text).unwrap().into_contents()
}

#[tokio::test]
async fn the_public_listener_serves_each_bundle_by_name_and_takes_new_ones_in_place() {
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let app = https_app(&tls_dir).await;
    let addr = app.base.trim_start_matches("https://").parse().unwrap();

    // No bundle yet: the self-signed pair, to any name.
    let self_signed = tls_dir.path().join("self-signed/cert.pem");
    let pinned = pinned_connector(&self_signed);
    let served = served_leaf(&pinned, addr, "admin.grove.test")
        .await
        .unwrap();
    assert_eq!(served, pem_der(&self_signed));
    let trusting = ca.connector();
    assert!(
        served_leaf(&trusting, addr, "admin.grove.test")
            .await
            .is_err()
    );

    // The admin host's bundle and a mail host's, then Reload: each name
    // gets its own, a name no bundle covers (or none, by IP) the admin's.
    let admin = ca.install(tls_dir.path(), "admin", &["admin.grove.test"], until());
    let mail = ca.install(tls_dir.path(), "mail-1", &["mail.b.test"], until());
    let manifest = inboxgrove::tls::Manifest::load(tls_dir.path()).unwrap();
    app.tls_reload.reload(&manifest.bundles).await.unwrap();
    let got = served_leaf(&trusting, addr, "admin.grove.test")
        .await
        .unwrap();
    assert_eq!(got, admin);
    assert_eq!(
        served_leaf(&trusting, addr, "mail.b.test").await.unwrap(),
        mail
    );
    let other = served_leaf(&pinned_any(&admin), addr, "other.test").await;
    assert_eq!(other.unwrap(), admin, "the admin bundle is the default");

    // A request over that TLS, verified as a browser would.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve("admin.grove.test", addr)
        .build()
        .unwrap();
    let url = format!("https://admin.grove.test:{}/healthz", addr.port());
    let answer = client.get(&url).send().await.unwrap();
    assert!(answer.status().is_success(), "{answer:?}");

    // Renewed (same id, new certificate): served on the same port at once.
    let renewed = ca.install(tls_dir.path(), "admin", &["admin.grove.test"], until());
    assert_ne!(renewed, admin);
    let manifest = inboxgrove::tls::Manifest::load(tls_dir.path()).unwrap();
    app.tls_reload.reload(&manifest.bundles[..1]).await.unwrap();
    let got = served_leaf(&trusting, addr, "admin.grove.test")
        .await
        .unwrap();
    assert_eq!(got, renewed);
    let again = client.get(&url).send().await.unwrap();
    assert!(
        again.status().is_success(),
        "the same client, the same listener"
    );
}

#[tokio::test]
async fn a_bundle_whose_key_is_not_its_certificates_keeps_the_one_served() {
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let app = https_app(&tls_dir).await;
    let addr = app.base.trim_start_matches("https://").parse().unwrap();
    let admin = ca.install(tls_dir.path(), "admin", &["admin.grove.test"], until());
    let manifest = inboxgrove::tls::Manifest::load(tls_dir.path()).unwrap();
    app.tls_reload.reload(&manifest.bundles).await.unwrap();

    // A renewal whose key file is another certificate's.
    let bundle = manifest.bundles[0].clone();
    let stray = ca.leaf(&["admin.grove.test"], until());
    std::fs::write(bundle.key_path(tls_dir.path()), &stray.key_pem).unwrap();
    let err = app.tls_reload.reload(&[bundle]).await.unwrap_err();
    assert!(err.contains("bundle admin"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "no key material: {err}");
    let trusting = ca.connector();
    let got = served_leaf(&trusting, addr, "admin.grove.test")
        .await
        .unwrap();
    assert_eq!(got, admin, "the previous certificate is still served");
}

/// A client that accepts exactly `der` for any name.
fn pinned_any(der: &[u8]) -> tokio_rustls::TlsConnector {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinned.pem");
    std::fs::write(
        &path,
        pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())),
    )
    .unwrap();
    pinned_connector(&path)
}

#[tokio::test]
async fn an_unreadable_manifest_still_starts_the_listener_with_the_self_signed_pair() {
    let tls_dir = tempfile::tempdir().unwrap();
    let manifest = tls_dir.path().join("certificates.json");
    std::fs::write(&manifest, "{").unwrap();
    let app = https_app(&tls_dir).await;
    let addr = app.base.trim_start_matches("https://").parse().unwrap();
    let self_signed = tls_dir.path().join("self-signed/cert.pem");
    let served = served_leaf(&pinned_connector(&self_signed), addr, "admin.grove.test").await;
    assert_eq!(served.unwrap(), pem_der(&self_signed));
    let err = app.tls_reload.reload(&[]).await.unwrap_err();
    assert!(err.contains("certificates.json"), "{err}");

    // Once the ACME client writes it anew, the next Reload serves it.
    std::fs::remove_file(&manifest).unwrap();
    let ca = TestCa::new();
    let admin = ca.install(tls_dir.path(), "admin", &["admin.grove.test"], until());
    app.tls_reload.reload(&[]).await.unwrap();
    let got = served_leaf(&ca.connector(), addr, "admin.grove.test").await;
    assert_eq!(got.unwrap(), admin);
}
