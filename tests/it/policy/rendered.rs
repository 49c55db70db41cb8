//! The settings file `inboxgrove kumo-config` renders is one the policy
//! loads and runs on: the same server settings, so the control URL, the
//! mail root and KumoMTA's HTTP listener cannot disagree with the server.

use inboxgrove::kumo::policy_config::{PolicyFiles, render};

use super::*;
use crate::helpers::{Options, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_settings_file_runs_the_policy_against_this_server() {
    let w = world().await;
    let boxes = mailboxes(&w, "rendered.test", 1, 5).await;
    let mut s = settings(
        w.app.dir.path(),
        &Options {
            kumo_http_url: Some("http://127.0.0.1:8000".into()),
            ..Default::default()
        },
    );
    // As `serve` runs: the control listener on every address, the port
    // the test server is bound to.
    let port = w.app.control.rsplit(':').next().unwrap().parse().unwrap();
    s.control_listen = std::net::SocketAddr::from(([0, 0, 0, 0], port));
    s.doctor.hostname = Some("mail.rendered.test".into());
    let files = PolicyFiles {
        secret_file: w.app.dir.path().join("kumo.secret"),
        inbound_listen: "0.0.0.0:25".parse().unwrap(),
        submission_listen: "0.0.0.0:587".parse().unwrap(),
        spool_dir: "/var/spool/kumomta".into(),
        log_dir: "/var/log/kumomta".into(),
        shaping_file: "/opt/kumomta/etc/policy/inboxgrove/shaping.toml".into(),
    };
    let rendered = render(&s, &files).unwrap();
    assert_eq!(
        rendered["control_url"],
        format!("http://127.0.0.1:{port}/kumo/v1")
    );
    assert_eq!(rendered["http_listen"], "127.0.0.1:8000");
    assert_eq!(
        rendered["mail_root"],
        json!(std::path::absolute(w.app.dir.path().join("mail")).unwrap())
    );

    let stub = KumoStub::load(&rendered);
    assert!(returned_nil(&stub.fire("pre_init", ())));
    assert!(returned_nil(&stub.fire("init", ())));
    for l in stub.state("listeners").as_array().unwrap() {
        assert_eq!(l["hostname"], "mail.rendered.test");
    }
    // KumoMTA's admin API where the server bumps the config epoch.
    assert_eq!(stub.state("http_listeners")[0]["listen"], "127.0.0.1:8000");
    // A mailbox signs in and sends through the server the file names.
    let conn = submission(&stub);
    login(&stub, &conn, &boxes[0]);
    let msg = mail(&stub, &conn, &boxes[0].email, "prospect@example.net", &[]);
    let out = stub.receive(&msg, &conn);
    assert!(returned_nil(&out), "{out:?}");

    // What kumo-config refuses rather than render.
    let mut off = s;
    off.kumo_http_url = Some(String::new());
    assert!(
        render(&off, &files)
            .unwrap_err()
            .to_string()
            .contains("kumo_http_url")
    );
    off.kumo_http_url = Some("http://0.0.0.0:8000".into());
    assert!(render(&off, &files).is_err());
    off.kumo_http_url = Some("http://127.0.0.1:8000".into());
    off.doctor.hostname = Some("not a host".into());
    assert!(
        render(&off, &files)
            .unwrap_err()
            .to_string()
            .contains("--hostname")
    );
}
