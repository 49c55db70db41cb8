//! The privileged half of a renewal: the systemd units the packages ship
//! (checked by `systemd-analyze verify`) and the script their service
//! runs, here with every path in a temp dir and a `systemctl` that only
//! notes what it was asked.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::DateTime;

use crate::support::test_ca::TestCa;

const UNITS: [&str; 2] = [
    "inboxgrove-tls-reload.path",
    "inboxgrove-tls-reload.service",
];

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(file)
}

#[test]
fn the_reload_units_verify_and_a_broken_one_does_not() {
    if !Path::new("/usr/bin/systemd-analyze").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing under CI"
        );
        eprintln!("\n*** SKIPPED: systemd-analyze is not installed ***\n");
        return;
    }
    // A root holding systemd's own units, ours and the script where the
    // package puts it, so `verify` also checks that ExecStart exists.
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(root.path().join("usr/lib/systemd"))
        .status()
        .unwrap();
    assert!(copied.success());
    for unit in UNITS {
        std::fs::copy(packaging(unit), units.join(unit)).unwrap();
    }
    let script = root.path().join("usr/lib/inboxgrove/tls-reload");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::copy(packaging("inboxgrove-tls-reload"), &script).unwrap();
    let verify = || {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.path().display()))
            .args(UNITS)
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the script it is installed to run, the service is refused.
    std::fs::remove_file(&script).unwrap();
    let out = verify();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls-reload"));
}

/// Runs the reload script as the service would, with `dir`'s paths; returns
/// what it asked systemctl, one call a line.
fn run_reload(dir: &Path) -> String {
    let log = dir.join("systemctl.log");
    let _ = std::fs::remove_file(&log);
    let out = Command::new(packaging("inboxgrove-tls-reload"))
        .env("INBOXGROVE_BIN", env!("CARGO_BIN_EXE_inboxgrove"))
        .env("INBOXGROVE_CONFIG", dir.join("inboxgrove.toml"))
        .env("DOVECOT_CONF", dir.join("dovecot.conf"))
        .env("KUMO_POLICY_CONFIG", dir.join("inboxgrove.json"))
        .env("SYSTEMCTL", dir.join("systemctl"))
        .env_remove("INBOXGROVE_HOSTNAME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tls-reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn the_reload_script_renders_both_configs_again_and_restarts_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tls_dir = d.join("certs");
    std::fs::write(
        d.join("inboxgrove.toml"),
        format!(
            "data_dir = {:?}\ntls_dir = {:?}\nkumo_http_url = \"http://127.0.0.1:8000\"\n",
            d.join("data"),
            tls_dir
        ),
    )
    .unwrap();
    let systemctl = d.join("systemctl");
    std::fs::write(
        &systemctl,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\n",
            d.join("systemctl.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    // As install.sh leaves them: both rendered before any certificate.
    let exe = env!("CARGO_BIN_EXE_inboxgrove");
    let config = d.join("inboxgrove.toml");
    let render = |args: &[&str]| {
        let out = Command::new(exe)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("INBOXGROVE_HOSTNAME")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    std::fs::write(
        d.join("dovecot.conf"),
        render(&["dovecot-config", "--hostname", "mail.a.test"]),
    )
    .unwrap();
    std::fs::write(
        d.join("inboxgrove.json"),
        render(&["kumo-config", "--hostname", "mail.a.test"]),
    )
    .unwrap();

    let ca = TestCa::new();
    let until = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    ca.install(&tls_dir, "mail-1", &["mail.a.test"], until);
    ca.install(&tls_dir, "mail-2", &["mail.b.test"], until);
    let calls = run_reload(d);
    assert_eq!(
        calls, "try-reload-or-restart dovecot.service\ntry-restart kumomta.service\n",
        "new paths: Dovecot reloads, kumod restarts"
    );
    let live = |id: &str| tls_dir.join("live").join(id).join("fullchain.pem");
    let dovecot = std::fs::read_to_string(d.join("dovecot.conf")).unwrap();
    assert!(
        dovecot.contains(&format!("ssl_cert = <{}\n", live("mail-1").display())),
        "{dovecot}"
    );
    assert!(dovecot.contains("local_name mail.b.test {\n"), "{dovecot}");
    let kumo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("inboxgrove.json")).unwrap()).unwrap();
    assert_eq!(kumo["tls_certificate"], serde_json::json!(live("mail-1")));
    assert_eq!(kumo["hostname"], "mail.a.test", "the banner name is kept");

    // A renewal at the same paths: Dovecot reloads, kumod is left alone
    // (it reads the renewed file within five minutes) and nothing is
    // rewritten.
    ca.install(&tls_dir, "mail-1", &["mail.a.test"], until);
    let before = std::fs::read(d.join("inboxgrove.json")).unwrap();
    assert_eq!(run_reload(d), "try-reload-or-restart dovecot.service\n");
    assert_eq!(std::fs::read(d.join("inboxgrove.json")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".new."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
