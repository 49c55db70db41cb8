use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::*;
use super::{Key, Source};

fn global() -> Global<'static> {
    Global {
        data_dir: None,
        log: None,
        log_format: None,
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn flags_win_over_file_over_defaults() {
    let file: FileConfig =
        toml::from_str("listen = \"127.0.0.1:9000\"\nrate_limit_burst = 5\ndata_dir = \"/srv/ig\"")
            .unwrap();
    let serve = ServeArgs {
        listen: Some("127.0.0.1:9100".parse().unwrap()),
        ..Default::default()
    };
    let s = Settings::resolve(global(), &serve, file, &env_of(&[])).unwrap();
    assert_eq!(s.listen.port(), 9100);
    assert_eq!(s.rate_limit_burst.get(), 5);
    assert_eq!(s.rate_limit_per_minute.get(), 1000);
    assert_eq!(s.data_dir, PathBuf::from("/srv/ig"));
    assert_eq!(s.control_listen.port(), 8081);
    assert_eq!(s.kumo_http_url.as_deref(), Some(DEFAULT_KUMO_HTTP_URL));
}

#[test]
fn kumomta_is_told_of_changes_unless_its_url_is_emptied() {
    let resolve = |file: &str, flag: Option<&str>| {
        let serve = ServeArgs {
            kumo_http_url: flag.map(str::to_owned),
            ..Default::default()
        };
        Settings::resolve(
            global(),
            &serve,
            toml::from_str(file).unwrap(),
            &env_of(&[]),
        )
        .unwrap()
        .kumo_http_url
    };
    assert_eq!(
        resolve("kumo_http_url = \"http://127.0.0.1:9000\"", None).as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(
        resolve(
            "kumo_http_url = \"http://127.0.0.1:9000\"",
            Some("http://[::1]:8000")
        )
        .as_deref(),
        Some("http://[::1]:8000")
    );
    assert_eq!(resolve("kumo_http_url = \"\"", None), None);
    assert_eq!(resolve("", Some("")), None);
}

#[test]
fn the_tls_certificate_comes_with_its_key() {
    let file: FileConfig =
        toml::from_str("tls_cert = \"/etc/ig/cert.pem\"\ntls_key = \"/etc/ig/key.pem\"").unwrap();
    let s = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[])).unwrap();
    assert_eq!(
        s.tls,
        Some(("/etc/ig/cert.pem".into(), "/etc/ig/key.pem".into()))
    );
    let serve = ServeArgs {
        tls: TlsArgs {
            tls_cert: Some("/etc/ig/cert.pem".into()),
            tls_key: None,
        },
        ..Default::default()
    };
    let err = Settings::resolve(global(), &serve, FileConfig::default(), &env_of(&[]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("tls_key"), "{err}");
}

#[test]
fn the_certificates_are_in_tls_dir_and_https_is_chosen() {
    let file: FileConfig = toml::from_str("data_dir = \"/srv/ig\"").unwrap();
    let s = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[])).unwrap();
    assert_eq!(s.tls_dir, PathBuf::from("/srv/ig/certs"));
    assert_eq!(s.public_tls, PublicTls::None);
    let file: FileConfig =
        toml::from_str("tls_dir = \"/var/lib/inboxgrove-tls\"\npublic_tls = \"acme\"").unwrap();
    let s = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[])).unwrap();
    assert_eq!(s.tls_dir, PathBuf::from("/var/lib/inboxgrove-tls"));
    assert_eq!(s.public_tls, PublicTls::Acme);
    // Relative: made absolute, as KumoMTA and Dovecot get paths inside it.
    let serve = ServeArgs {
        certs: CertArgs {
            tls_dir: Some("certs-here".into()),
            public_tls: None,
        },
        ..Default::default()
    };
    let s = Settings::resolve(global(), &serve, FileConfig::default(), &env_of(&[])).unwrap();
    assert!(s.tls_dir.is_absolute() && s.tls_dir.ends_with("certs-here"));
    let err = toml::from_str::<FileConfig>("public_tls = \"yes\"").unwrap_err();
    assert!(err.to_string().contains("public_tls"), "{err}");
}

#[test]
fn the_source_of_each_run_time_setting_is_recorded() {
    let file: FileConfig =
        toml::from_str("timezone = \"Europe/Berlin\"\npublic_ipv4 = \"192.0.2.1\"").unwrap();
    let serve = ServeArgs {
        domains: DomainArgs {
            public_ipv4: Some("203.0.113.7".parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let env = env_of(&[("INBOXGROVE_CLOUDFLARE_API_TOKEN", "cf-token")]);
    let s = Settings::resolve(global(), &serve, file, &env).unwrap();
    assert_eq!(s.origins.of(Key::PublicIpv4), Source::FlagOrEnv);
    assert_eq!(s.domains.public_ipv4, Some("203.0.113.7".parse().unwrap()));
    assert_eq!(s.origins.of(Key::Timezone), Source::File);
    assert_eq!(s.origins.of(Key::CloudflareApiToken), Source::FlagOrEnv);
    assert_eq!(s.origins.of(Key::MailHostPattern), Source::Default);
    let file: FileConfig = toml::from_str("mail_host_pattern = \"mail.example.com\"").unwrap();
    let err = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("{domain}"), "{err}");
}

#[test]
fn unknown_file_keys_are_refused() {
    let err = toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn control_listener_stays_on_loopback_unless_allowed() {
    let mut serve = ServeArgs {
        control_listen: Some("0.0.0.0:8081".parse().unwrap()),
        ..Default::default()
    };
    let err = Settings::resolve(global(), &serve, FileConfig::default(), &env_of(&[]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("--control-allow-remote"), "{err}");
    serve.control_allow_remote = true;
    assert!(Settings::resolve(global(), &serve, FileConfig::default(), &env_of(&[])).is_ok());
}

#[test]
fn secrets_come_from_env_or_a_file_but_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    std::fs::write(&path, "from a file, twelve+\n").unwrap();
    let p = path.to_str().unwrap();
    let s = Settings::resolve(
        global(),
        &ServeArgs::default(),
        FileConfig::default(),
        &env_of(&[("INBOXGROVE_ADMIN_PASSWORD_FILE", p)]),
    )
    .unwrap();
    assert_eq!(
        s.admin_password.unwrap().secret().expose_secret(),
        "from a file, twelve+"
    );
    let both = env_of(&[
        ("INBOXGROVE_ADMIN_PASSWORD_FILE", p),
        ("INBOXGROVE_ADMIN_PASSWORD", "direct password here"),
    ]);
    let err = Settings::resolve(
        global(),
        &ServeArgs::default(),
        FileConfig::default(),
        &both,
    )
    .err()
    .unwrap();
    assert!(matches!(err, ConfigError::SecretTwice { .. }));
    let short = env_of(&[("INBOXGROVE_ADMIN_PASSWORD", "short")]);
    let err = Settings::resolve(
        global(),
        &ServeArgs::default(),
        FileConfig::default(),
        &short,
    )
    .err()
    .unwrap();
    assert!(err.to_string().starts_with("admin_password:"), "{err}");
    assert!(!err.to_string().contains("short"));
}

#[test]
fn the_mail_root_and_quota_come_from_flags_the_file_or_defaults() {
    let s = Settings::resolve(
        global(),
        &ServeArgs::default(),
        FileConfig::default(),
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(s.mail.root, PathBuf::from("/var/lib/inboxgrove-mail"));
    assert_eq!(s.mail.quota.bytes(), 1 << 30);
    let file: FileConfig =
        toml::from_str("mail_root = \"/srv/mail\"\nmailbox_quota = \"512M\"").unwrap();
    let s = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[])).unwrap();
    assert_eq!(s.mail.root, PathBuf::from("/srv/mail"));
    assert_eq!(s.mail.quota.as_dovecot(), "512M");
    let serve = ServeArgs {
        mail: MailArgs {
            mail_root: None,
            mailbox_quota: Some("2G".parse().unwrap()),
        },
        ..Default::default()
    };
    let file: FileConfig = toml::from_str("mailbox_quota = \"512M\"").unwrap();
    let s = Settings::resolve(global(), &serve, file, &env_of(&[])).unwrap();
    assert_eq!(s.mail.quota.bytes(), 2 << 30);
    for bad in ["mail_root = \"mail\"", "mailbox_quota = \"lots\""] {
        let file: FileConfig = toml::from_str(bad).unwrap();
        let err = Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[]))
            .err()
            .unwrap();
        let setting = bad.split(' ').next().unwrap();
        assert!(err.to_string().starts_with(setting), "{err}");
    }
}

#[test]
fn a_tracking_host_from_the_file_is_a_checked_host_name() {
    let resolve = |host: &str| {
        let file: FileConfig = toml::from_str(&format!("tracking_host = {host:?}")).unwrap();
        Settings::resolve(global(), &ServeArgs::default(), file, &env_of(&[]))
    };
    let s = resolve("Track.Example.COM.").unwrap();
    assert_eq!(
        s.domains.tracking_host.as_deref(),
        Some("track.example.com")
    );
    for bad in ["not a host", "<b>", "192.0.2.1"] {
        match resolve(bad) {
            Err(ConfigError::Invalid { setting, .. }) => assert_eq!(setting, "tracking_host"),
            other => panic!("{bad}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn trusted_proxies_come_from_a_flag_or_the_file_and_bad_ones_stop_the_start() {
    let resolve = |serve: &ServeArgs, toml_text: &str| {
        let file: FileConfig = toml::from_str(toml_text).unwrap();
        Settings::resolve(global(), serve, file, &|_| None).map(|s| s.trusted_proxies)
    };
    let none = resolve(&ServeArgs::default(), "").unwrap();
    assert_eq!(none, TrustedProxies::default());
    let listed = resolve(
        &ServeArgs::default(),
        "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]",
    );
    assert_eq!(listed.unwrap(), "10.0.0.0/8,::1".parse().unwrap());
    let flag = ServeArgs {
        trusted_proxies: Some("192.0.2.7".parse().unwrap()),
        ..Default::default()
    };
    let won = resolve(&flag, "trusted_proxies = \"10.0.0.0/8\"").unwrap();
    assert_eq!(won, "192.0.2.7".parse().unwrap());
    // A bad entry in the file names the setting and the entry.
    for (text, says) in [
        (
            "trusted_proxies = \"10.0.0.1/8\"",
            "did you mean 10.0.0.0/8",
        ),
        ("trusted_proxies = [\"0.0.0.0/0\"]", "trusts every address"),
        ("trusted_proxies = 7", "trusted_proxies"),
    ] {
        let err = toml::from_str::<FileConfig>(text).unwrap_err().to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains(says),
            "{text}: {err}"
        );
    }
}

#[test]
fn retention_comes_from_flags_or_the_file_and_is_checked_there_too() {
    let resolve = |file: &str, audit_flag: Option<u32>| {
        let serve = ServeArgs {
            retention: RetentionArgs {
                audit_retention_days: audit_flag,
                event_retention_days: None,
            },
            ..Default::default()
        };
        Settings::resolve(
            global(),
            &serve,
            toml::from_str(file).unwrap(),
            &env_of(&[]),
        )
    };
    let s = resolve("", None).unwrap();
    assert_eq!(
        s.retention,
        Retention {
            audit_days: 365,
            event_days: 90
        }
    );
    let s = resolve(
        "audit_retention_days = 400\nevent_retention_days = 30",
        Some(500),
    )
    .unwrap();
    assert_eq!(s.retention.audit_days, 500);
    assert_eq!(s.retention.event_days, 30);
    assert_eq!(s.origins.of(Key::AuditRetentionDays), Source::FlagOrEnv);
    assert_eq!(s.origins.of(Key::EventRetentionDays), Source::File);
    for (file, setting) in [
        ("event_retention_days = 10", "event_retention_days"),
        ("audit_retention_days = 7", "audit_retention_days"),
        ("audit_retention_days = 99999", "audit_retention_days"),
    ] {
        match resolve(file, None) {
            Err(ConfigError::Invalid { setting: s, .. }) => assert_eq!(s, setting, "{file}"),
            Err(other) => panic!("{file}: {other}"),
            Ok(_) => panic!("{file}: accepted"),
        }
    }
}

#[test]
fn the_mail_host_name_comes_from_the_flag_or_the_file_and_is_a_host_name() {
    let resolve = |serve: &ServeArgs, text: &str| {
        let file: FileConfig = toml::from_str(text).unwrap();
        Settings::resolve(global(), serve, file, &env_of(&[]))
    };
    let s = resolve(&ServeArgs::default(), "hostname = \"Mail.Example.com\"").unwrap();
    assert_eq!(s.doctor.mail_hostname(), "mail.example.com");
    let mut serve = ServeArgs::default();
    serve.doctor.hostname = Some("mx.example.net".into());
    let s = resolve(&serve, "hostname = \"mail.example.com\"").unwrap();
    assert_eq!(s.doctor.mail_hostname(), "mx.example.net", "the flag wins");
    let err = resolve(&ServeArgs::default(), "hostname = \"not a host\"")
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("hostname"), "{err}");
}

/// The annotated file the packages install as /etc/inboxgrove/inboxgrove.toml
/// parses as shipped, and still parses with every example line uncommented:
/// each key it documents is one the server takes, and it documents them all.
#[test]
fn the_packaged_config_file_documents_every_key_and_only_real_ones() {
    let shipped = include_str!("../../packaging/inboxgrove.toml");
    let file: FileConfig = toml::from_str(shipped).unwrap();
    assert_eq!(file.data_dir, Some(PathBuf::from("/var/lib/inboxgrove")));

    let mut examples = 0;
    let uncommented: String = shipped
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' ')) =>
            {
                examples += 1;
                format!("{rest}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let file: FileConfig = toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        file.mail_root,
        Some(PathBuf::from("/var/lib/inboxgrove-mail"))
    );

    // serde names every field when it refuses an unknown one. Inline
    // secrets are documented in their `_file` form only.
    let refused = toml::from_str::<FileConfig>("not_a_key = 1")
        .unwrap_err()
        .to_string();
    let (_, fields) = refused.split_once("expected one of ").unwrap();
    let fields: Vec<&str> = fields
        .split(',')
        .map(|f| f.trim().trim_matches('`'))
        .filter(|f| !["admin_password", "cloudflare_api_token"].contains(f))
        .collect();
    assert!(fields.len() > 25, "{refused}");
    for field in fields {
        assert!(
            uncommented
                .lines()
                .any(|l| l.starts_with(&format!("{field} = "))),
            "packaging/inboxgrove.toml does not document {field}"
        );
    }
    assert!(examples >= 25, "only {examples} example lines");
}
