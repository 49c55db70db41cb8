//! `kumo-config` hands KumoMTA's listeners one certificate: the bundle of
//! the banner name, else the one with the most names, else the
//! self-signed pair; the policy passes it to `start_esmtp_listener`,
//! checked by the stand-in as KumoMTA checks it.

use chrono::DateTime;
use inboxgrove::config::CertArgs;
use inboxgrove::kumo::policy_config::{PolicyFiles, render};
use serde_json::{Value, json};

use crate::helpers::{Options, settings, spawn_app};
use crate::support::kumo_stub::KumoStub;
use crate::support::test_ca::TestCa;

fn files(dir: &std::path::Path) -> PolicyFiles {
    PolicyFiles {
        secret_file: dir.join("kumo.secret"),
        inbound_listen: "0.0.0.0:25".parse().unwrap(),
        submission_listen: "0.0.0.0:587".parse().unwrap(),
        spool_dir: "/var/spool/kumomta".into(),
        log_dir: "/var/log/kumomta".into(),
        shaping_file: "/opt/kumomta/etc/policy/inboxgrove-shaping.toml".into(),
    }
}

/// The certificate and key each listener `init` started was given.
fn listener_certificates(rendered: &Value) -> Vec<(Value, Value)> {
    let stub = KumoStub::load(rendered);
    stub.fire("pre_init", ());
    stub.fire("init", ());
    let listeners = stub.state("listeners");
    let all = listeners.as_array().unwrap();
    assert_eq!(all.len(), 2, "{listeners}");
    all.iter()
        .map(|l| (l["tls_certificate"].clone(), l["tls_private_key"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kumomta_presents_the_bundle_of_its_banner_name_else_the_largest() {
    let app = spawn_app().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let mut s = settings(
        app.dir.path(),
        &Options {
            kumo_http_url: Some("http://127.0.0.1:8000".into()),
            certs: CertArgs {
                tls_dir: Some(tls_dir.path().to_owned()),
                public_tls: None,
            },
            ..Default::default()
        },
    );
    s.doctor.hostname = Some("mail.a.test".into());

    // No bundle: the self-signed pair.
    let self_signed = tls_dir.path().join("self-signed");
    let before = render(&s, &files(app.dir.path())).unwrap();
    assert_eq!(
        before["tls_certificate"],
        json!(self_signed.join("cert.pem"))
    );

    let ca = TestCa::new();
    let until = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    ca.install(tls_dir.path(), "admin", &["admin.test"], until);
    ca.install(
        tls_dir.path(),
        "mail-1",
        &["mail.b.test", "mail.c.test"],
        until,
    );
    ca.install(tls_dir.path(), "mail-2", &["mail.a.test"], until);
    let live = |id: &str, file: &str| json!(tls_dir.path().join("live").join(id).join(file));

    let rendered = render(&s, &files(app.dir.path())).unwrap();
    let want = (
        live("mail-2", "fullchain.pem"),
        live("mail-2", "privkey.pem"),
    );
    assert_eq!(listener_certificates(&rendered), vec![want.clone(), want]);

    // A banner name no bundle covers: the bundle with the most names.
    s.doctor.hostname = Some("vps-17.provider.test".into());
    let rendered = render(&s, &files(app.dir.path())).unwrap();
    let want = (
        live("mail-1", "fullchain.pem"),
        live("mail-1", "privkey.pem"),
    );
    assert_eq!(listener_certificates(&rendered), vec![want.clone(), want]);

    // A manifest that does not parse is an error, not the self-signed pair.
    std::fs::write(tls_dir.path().join("certificates.json"), "{").unwrap();
    let err = render(&s, &files(app.dir.path())).unwrap_err().to_string();
    assert!(err.contains("certificates.json"), "{err}");
}
