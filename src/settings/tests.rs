use std::collections::HashMap;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::*;
use crate::clock::SystemClock;
use crate::config::{DomainArgs, FileConfig};

fn parse(key: Key, raw: &str) -> Result<Value, SettingsError> {
    Value::parse(key, raw.to_owned())
}

fn field_of(e: SettingsError) -> String {
    match e {
        SettingsError::Invalid { field, .. } => field,
        other => panic!("not a validation error: {other}"),
    }
}

#[test]
fn values_are_parsed_once_with_a_message_naming_the_field() {
    assert!(matches!(
        parse(Key::PublicIpv4, " 203.0.113.7 "),
        Ok(Value::Ipv4(_))
    ));
    assert_eq!(
        field_of(parse(Key::PublicIpv4, "203.0.113").unwrap_err()),
        "public_ipv4"
    );
    assert_eq!(
        field_of(parse(Key::PublicIpv6, "203.0.113.7").unwrap_err()),
        "public_ipv6"
    );
    let e = parse(Key::MailHostPattern, "mail.example.com").unwrap_err();
    assert!(e.to_string().contains("{domain}"), "{e}");
    assert!(parse(Key::MailHostPattern, "mail .{domain}").is_err());
    assert!(matches!(
        parse(Key::MailHostPattern, "mx1.{domain}"),
        Ok(Value::MailHost(_))
    ));
    assert!(parse(Key::TrackingHost, "<b>").is_err());
    assert!(matches!(
        parse(Key::Timezone, "Europe/Berlin"),
        Ok(Value::Timezone(_))
    ));
    let e = parse(Key::Timezone, "Mars/Olympus").unwrap_err();
    assert!(e.to_string().contains("IANA"), "{e}");
    assert!(matches!(
        parse(Key::DmarcQuarantineAfterDays, "0"),
        Ok(Value::Days(0))
    ));
    assert!(parse(Key::DmarcQuarantineAfterDays, "366").is_err());
    assert!(parse(Key::DmarcQuarantineAfterDays, "-1").is_err());
}

#[test]
fn a_token_with_spaces_is_refused_without_repeating_it() {
    let e = parse(Key::CloudflareApiToken, "abc secret-part").unwrap_err();
    assert!(!e.to_string().contains("secret-part"), "{e}");
    assert_eq!(field_of(e), "cloudflare_api_token");
    assert!(parse(Key::CloudflareApiToken, "").is_err());
    assert!(matches!(
        parse(Key::CloudflareApiToken, "Abc_123-xyz"),
        Ok(Value::Token(_))
    ));
}

#[test]
fn a_json_patch_sets_clears_and_refuses_unknown_names() {
    let body = |v: serde_json::Value| v.as_object().unwrap().clone();
    let p = Patch::from_json(body(json!({
        "public_ipv4": "203.0.113.7",
        "tracking_host": null,
        "dmarc_quarantine_after_days": 30,
    })))
    .unwrap();
    assert!(matches!(p.0[&Key::PublicIpv4], Change::Set(Value::Ipv4(_))));
    assert!(matches!(p.0[&Key::TrackingHost], Change::Clear));
    assert!(matches!(
        p.0[&Key::DmarcQuarantineAfterDays],
        Change::Set(Value::Days(30))
    ));
    let e = Patch::from_json(body(json!({ "public_ip": "203.0.113.7" }))).unwrap_err();
    assert_eq!(field_of(e), "public_ip");
    let e = Patch::from_json(body(json!({ "timezone": true }))).unwrap_err();
    assert_eq!(field_of(e), "timezone");
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    vault: Arc<Vault>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
    Fixture {
        _dir: dir,
        store,
        vault: Arc::new(vault),
    }
}

fn live(f: &Fixture, base: DomainSettings, origins: Origins) -> LiveSettings {
    LiveSettings::new(
        f.store.clone(),
        f.vault.clone(),
        Arc::new(SystemClock),
        base,
        chrono_tz::UTC,
        origins,
    )
}

fn entry(view: &View, key: Key) -> Entry {
    view.entries.iter().find(|e| e.key == key).unwrap().clone()
}

fn patch(pairs: &[(Key, &str)]) -> Patch {
    Patch(
        pairs
            .iter()
            .map(|(k, v)| (*k, Change::Set(parse(*k, v).unwrap())))
            .collect(),
    )
}

#[tokio::test]
async fn saved_values_win_over_the_file_but_not_over_flags() {
    let f = fixture();
    let origins = Origins::of_config(
        &DomainArgs {
            public_ipv6: Some("2001:db8::1".parse().unwrap()),
            ..Default::default()
        },
        &None,
        &FileConfig {
            mail_host_pattern: Some("smtp.{domain}".into()),
            ..Default::default()
        },
        false,
    );
    let base = DomainSettings {
        mail_host_pattern: "smtp.{domain}".into(),
        public_ipv6: Some("2001:db8::1".parse().unwrap()),
        ..Default::default()
    };
    let s = live(&f, base.clone(), origins);
    assert_eq!(entry(&s.view(), Key::MailHostPattern).source, Source::File);
    assert_eq!(entry(&s.view(), Key::PublicIpv4).source, Source::Default);

    let view = s
        .update(patch(&[
            (Key::MailHostPattern, "mx.{domain}"),
            (Key::Timezone, "Europe/Berlin"),
        ]))
        .await
        .unwrap();
    assert_eq!(entry(&view, Key::MailHostPattern).source, Source::Saved);
    assert_eq!(entry(&view, Key::MailHostPattern).text(), "mx.{domain}");
    assert_eq!(s.get().domains.mail_host_pattern, "mx.{domain}");
    assert_eq!(s.get().timezone, chrono_tz::Europe::Berlin);

    // A pinned setting is refused, and nothing of that submit is saved.
    let e = s
        .update(patch(&[
            (Key::PublicIpv4, "203.0.113.7"),
            (Key::PublicIpv6, "2001:db8::2"),
        ]))
        .await
        .unwrap_err();
    assert!(matches!(e, SettingsError::Pinned(Key::PublicIpv6)));
    assert!(e.to_string().contains("INBOXGROVE_PUBLIC_IPV6"), "{e}");
    assert_eq!(s.get().domains.public_ipv4, None);

    // Clearing goes back to the file's value.
    let mut clear = Patch::default();
    clear.0.insert(Key::MailHostPattern, Change::Clear);
    let view = s.update(clear).await.unwrap();
    assert_eq!(entry(&view, Key::MailHostPattern).source, Source::File);
    assert_eq!(s.get().domains.mail_host_pattern, "smtp.{domain}");

    // A fresh start reads what was saved.
    let again = live(&f, base, origins);
    again.load().await.unwrap();
    assert_eq!(again.get().timezone, chrono_tz::Europe::Berlin);
    assert_eq!(entry(&again.view(), Key::Timezone).source, Source::Saved);
}

#[tokio::test]
async fn the_token_is_sealed_and_shown_only_as_set() {
    let f = fixture();
    let s = live(&f, DomainSettings::default(), Origins::default());
    s.update(patch(&[(Key::CloudflareApiToken, "cf-TOKEN-in-the-vault")]))
        .await
        .unwrap();
    let raw = f
        .store
        .read(|c| crate::store::settings::get(c, "server.cloudflare_api_token"))
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("cf-TOKEN"));
    let view = s.view();
    assert!(entry(&view, Key::CloudflareApiToken).set);
    assert!(!view.to_json().to_string().contains("cf-TOKEN"));
    assert_eq!(
        view.to_json()["cloudflare_api_token"],
        json!({ "value": { "set": true }, "source": "saved" })
    );
    let again = live(&f, DomainSettings::default(), Origins::default());
    again.load().await.unwrap();
    let token = again.get().domains.cloudflare_api_token.clone().unwrap();
    assert_eq!(token.expose_secret(), "cf-TOKEN-in-the-vault");
}

#[tokio::test]
async fn the_form_changes_only_what_was_edited() {
    let f = fixture();
    let origins = Origins::of_config(
        &DomainArgs::default(),
        &None,
        &FileConfig {
            tracking_host: Some("t.example.net".into()),
            ..Default::default()
        },
        false,
    );
    let base = DomainSettings {
        tracking_host: Some("t.example.net".into()),
        ..Default::default()
    };
    let s = live(&f, base, origins);
    s.update(patch(&[(Key::PublicIpv4, "203.0.113.7")]))
        .await
        .unwrap();
    let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let view = s.view();
    // Everything as shown, the token left empty: no change.
    let same = form(&[
        ("public_ipv4", "203.0.113.7"),
        ("public_ipv6", ""),
        ("mail_host_pattern", "mail.{domain}"),
        ("tracking_host", "t.example.net"),
        ("timezone", "UTC"),
        ("cloudflare_api_token", ""),
        ("dmarc_quarantine_after_days", "14"),
    ]);
    assert!(Patch::from_form(&same, &view).unwrap().0.is_empty());
    // Emptying a saved value clears it; emptying the file's one does not.
    let p = Patch::from_form(
        &form(&[
            ("public_ipv4", ""),
            ("tracking_host", ""),
            ("timezone", "Asia/Tokyo"),
        ]),
        &view,
    )
    .unwrap();
    assert!(matches!(p.0[&Key::PublicIpv4], Change::Clear));
    assert!(!p.0.contains_key(&Key::TrackingHost));
    assert!(matches!(p.0[&Key::Timezone], Change::Set(_)));
    let p = Patch::from_form(
        &form(&[
            ("cloudflare_api_token", "x"),
            ("clear_cloudflare_api_token", "on"),
        ]),
        &view,
    )
    .unwrap();
    assert!(matches!(p.0[&Key::CloudflareApiToken], Change::Clear));
    let e = Patch::from_form(&form(&[("public_ipv6", "nope")]), &view).unwrap_err();
    assert_eq!(field_of(e), "public_ipv6");
}
