//! The certificate a real Dovecot, configured by `dovecot-config`, serves
//! on the IMAPS port for each mail host, checked by a client that trusts
//! only the test CA, as a sequencer trusts only public CAs.

use std::ffi::OsStr;

use chrono::DateTime;

use crate::helpers::spawn_app;
use crate::support::dovecot::{self, Dovecot};
use crate::support::test_ca::{TestCa, served_leaf};

#[tokio::test]
async fn dovecot_serves_each_mail_host_its_bundle() {
    if !dovecot::available() {
        return;
    }
    let app = spawn_app().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let until = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let first = ca.install(
        tls_dir.path(),
        "mail-1",
        &["mail.a.test", "mail.c.test"],
        until,
    );
    let second = ca.install(tls_dir.path(), "mail-2", &["mail.b.test"], until);
    let flags: [&OsStr; 4] = [
        "--tls-dir".as_ref(),
        tls_dir.path().as_os_str(),
        "--hostname".as_ref(),
        "mail.a.test".as_ref(),
    ];
    let d = Dovecot::start_with(&app.control, app.dir.path(), &flags).await;
    let client = ca.connector();
    for (name, want) in [
        ("mail.a.test", &first),
        ("mail.c.test", &first),
        ("mail.b.test", &second),
    ] {
        let served = served_leaf(&client, d.imaps, name).await;
        let served = served.unwrap_or_else(|e| panic!("{name}: {e}\n{}", d.log()));
        assert_eq!(&served, want, "{name}");
    }
    // A name no bundle covers gets the default bundle, which does not
    // verify for it.
    assert!(
        served_leaf(&client, d.imaps, "mail.other.test")
            .await
            .is_err()
    );
}
