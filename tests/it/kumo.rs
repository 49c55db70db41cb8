//! The KumoMTA control endpoint: its secret, the send decision and its
//! daily limit, log-record ingestion, lookups, and the datasource surviving
//! its own loss.

use chrono::Duration as Days;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::domains::{IPV4, TOKEN, world, world_with};
use crate::helpers::manual_clock;
use crate::inboxes::{Control, bulk, with_domain};

#[tokio::test]
async fn the_control_endpoint_wants_its_secret() {
    let w = world().await;
    let client = reqwest::Client::new();
    let url = format!("{}/kumo/v1/mailboxes/a@b.test", w.app.control);
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = client
        .get(&url)
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kumo.secret")
    );
    let (status, _) = Control::of(&w.app)
        .call(Method::GET, "/mailboxes/a@b.test", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The secret file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.app.dir.path().join("kumo.secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A send-check as the policy asks it: `header` is the one From header.
pub fn check(from: &str, header: &str, to: &[&str]) -> Value {
    json!({
        "authn_id": from, "envelope_from": from, "from_headers": [header],
        "sender_headers": {}, "recipients": to
    })
}

#[tokio::test]
async fn send_check_binds_the_sender_counts_and_resets_daily() {
    let clock = manual_clock();
    let w = world_with(Some(IPV4), Some(clock.clone())).await;
    let domain = with_domain(&w, "limits.test").await;
    w.app.set_domain_status("limits.test", "active");
    let (_, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 2, "daily_limit": 2, "enable_warmup": false }),
    )
    .await;
    let a = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    let b = created["inboxes"][1]["email"].as_str().unwrap().to_owned();
    let kumo = Control::of(&w.app);
    let send = |body: Value| {
        let kumo = &kumo;
        async move { kumo.call(Method::POST, "/send-check", Some(body)).await.1 }
    };

    let first = send(check(&a, &format!("Ada <{a}>"), &["x@example.net"])).await;
    assert_eq!(
        (
            &first["allow"],
            &first["code"],
            &first["reason"],
            &first["remaining_today"]
        ),
        (&json!(true), &json!(250), &json!("2.0.0 ok"), &json!(1))
    );
    assert!(first["list_unsubscribe"]["url"].is_string());
    let mismatch = send(json!({
        "authn_id": a, "envelope_from": b, "from_headers": [a], "sender_headers": [],
        "recipients": ["x@example.net"]
    }))
    .await;
    assert_eq!(
        (mismatch["allow"].as_bool(), mismatch["code"].as_u64()),
        (Some(false), Some(550))
    );
    let spoofed = send(check(&a, &format!("CEO <{b}>"), &["x@example.net"])).await;
    assert_eq!(spoofed["code"], 550);
    assert!(spoofed["reason"].as_str().unwrap().contains("From header"));

    assert_eq!(
        send(check(&a, &a, &["y@example.net"])).await["remaining_today"],
        0
    );
    let over = send(check(&a, &a, &["z@example.net"])).await;
    assert_eq!(
        (over["allow"].as_bool(), over["code"].as_u64()),
        (Some(false), Some(452)),
        "{over}"
    );
    // The other mailbox has its own count.
    assert_eq!(send(check(&b, &b, &["z@example.net"])).await["allow"], true);
    let (_, seen) = kumo
        .call(Method::GET, &format!("/mailboxes/{a}"), None)
        .await;
    assert_eq!(seen["sent_today"], 2);

    // A new day (UTC) starts a new count.
    clock.advance(Days::days(1));
    assert_eq!(send(check(&a, &a, &["z@example.net"])).await["allow"], true);

    let unknown = send(check(
        "ghost@limits.test",
        "ghost@limits.test",
        &["z@example.net"],
    ))
    .await;
    assert_eq!(unknown["code"], 550);
}

#[tokio::test]
async fn domain_and_dkim_lookups_serve_the_signer() {
    let w = world().await;
    w.zones.add_zone("signs.test");
    let (_, added) = w
        .add(json!({ "domain_name": "signs.test", "cloudflare_api_token": TOKEN }))
        .await;
    let selector = added["dns_records"]["dkim_selector"]
        .as_str()
        .unwrap()
        .to_owned();
    let kumo = Control::of(&w.app);
    let (_, hosted) = kumo.call(Method::GET, "/domains/Signs.TEST", None).await;
    assert_eq!(
        hosted,
        json!({ "hosted": true, "dkim": { "selector": selector }, "egress_pool": "inboxgrove" })
    );
    let (_, foreign) = kumo
        .call(Method::GET, "/domains/elsewhere.test", None)
        .await;
    assert_eq!(foreign, json!({ "hosted": false }));
    let (status, key) = kumo.call(Method::GET, "/dkim/signs.test", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key["selector"], selector.as_str());
    assert!(
        key["private_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    assert_eq!(
        kumo.call(Method::GET, "/dkim/elsewhere.test", None).await.0,
        StatusCode::NOT_FOUND
    );
}

/// Every byte under the data dir: database, WAL, datasource, keys. A file
/// or directory the running server removes between the listing and the
/// read (SQLite's and sled's short-lived files) held nothing that outlives
/// it.
fn everything_under(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if path.is_dir() {
            out.extend(everything_under(&path));
        } else {
            match std::fs::read(&path) {
                Ok(bytes) => out.extend(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    out
}

#[tokio::test]
async fn the_datasource_is_rebuilt_and_no_secret_lies_in_plaintext() {
    let w = world().await;
    w.zones.add_zone("rebuilt.test");
    let (_, added) = w
        .add(json!({ "domain_name": "rebuilt.test", "cloudflare_api_token": TOKEN }))
        .await;
    let domain = added["domain_id"].as_str().unwrap().to_owned();
    let (_, created) = bulk(&w, json!({ "domain_id": domain, "quantity": 3 })).await;
    let kumo = Control::of(&w.app);
    let (_, key) = kumo.call(Method::GET, "/dkim/rebuilt.test", None).await;
    let pem_line = key["private_key_pem"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let logins: Vec<(String, String)> = created["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().to_owned(),
                i["password"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let crate::domains::World {
        app,
        dns,
        zones,
        cloudflare,
        ..
    } = w;
    let opts = crate::helpers::Options {
        domains: inboxgrove::config::DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            dns_servers: Some(inboxgrove::config::DnsServers(vec![dns.addr()])),
            cloudflare_api_url: Some(cloudflare.base_url()),
            ..Default::default()
        },
        ..Default::default()
    };
    let dir = app.stop().await;

    let bytes = everything_under(dir.path());
    for (_, password) in &logins {
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "a mailbox password is on disk"
        );
    }
    assert!(
        !bytes
            .windows(pem_line.len())
            .any(|w| w == pem_line.as_bytes()),
        "the DKIM key is on disk"
    );
    assert!(
        !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the Cloudflare token is on disk"
    );

    std::fs::remove_dir_all(dir.path().join("datasource")).unwrap();
    let app = crate::helpers::spawn_app_in(dir, opts).await;
    let kumo = Control::of(&app);
    for (email, password) in &logins {
        assert_eq!(
            kumo.auth(email, password).await.0,
            StatusCode::OK,
            "{email} after the rebuild"
        );
    }
    drop(zones);
}

#[tokio::test]
async fn an_unsubscribe_link_asks_and_only_the_one_click_post_suppresses() {
    let w = world().await;
    let domain = with_domain(&w, "polite.test").await;
    w.app.set_domain_status("polite.test", "active");
    let (_, created) = bulk(
        &w,
        json!({ "domain_id": domain, "quantity": 2, "enable_warmup": false }),
    )
    .await;
    let a = created["inboxes"][0]["email"].as_str().unwrap().to_owned();
    let b = created["inboxes"][1]["email"].as_str().unwrap().to_owned();
    let kumo = Control::of(&w.app);
    let (_, allowed) = kumo
        .call(
            Method::POST,
            "/send-check",
            Some(check(&a, &a, &["Reader@Example.net"])),
        )
        .await;
    let links = &allowed["list_unsubscribe"];
    let url = links["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/u/", w.app.base)), "{url}");
    assert!(
        !url.to_lowercase().contains("reader"),
        "the link does not reveal the address"
    );
    assert_eq!(links["mailto"], format!("mailto:{a}?subject=unsubscribe"));

    let one_click = |url: String, body: &'static str| async move {
        let res = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    };
    let sendable = |sender: String| {
        let kumo = &kumo;
        async move {
            let (_, answer) = kumo
                .call(
                    Method::POST,
                    "/send-check",
                    Some(check(&sender, &sender, &["reader@example.net"])),
                )
                .await;
            answer["code"] == 250
        }
    };

    // A link scanner (or the reader) opening the link: a page with a
    // button, and the reader stays sendable (RFC 8058 §3.2).
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\">") && page.contains("value=\"One-Click\""),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("reader"), "{page}");
    assert!(sendable(b.clone()).await);
    // A POST that is not the one-click body changes nothing either.
    let (status, _) = one_click(url.clone(), "unsubscribe=please").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(sendable(b.clone()).await);

    // A damaged link gets the very page a good one gets, and suppresses
    // nobody: a link reveals nothing about whom it names.
    let last = if url.ends_with('x') { 'y' } else { 'x' };
    let damaged = format!("{}{last}", &url[..url.len() - 1]);
    let (status, damaged_page) = one_click(damaged.clone(), "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reqwest::get(&damaged).await.unwrap().text().await.unwrap(),
        page
    );
    assert!(sendable(b.clone()).await);

    // RFC 8058 one-click: a POST with List-Unsubscribe=One-Click.
    let (status, done) = one_click(url.clone(), "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK);
    assert!(done.contains("unsubscribed"), "{done}");
    assert_eq!(done, damaged_page);

    // Neither of this owner's mailboxes may mail that reader again.
    for sender in [&a, &b] {
        let (_, refused) = kumo
            .call(
                Method::POST,
                "/send-check",
                Some(check(sender, sender, &["reader@example.net"])),
            )
            .await;
        assert_eq!(refused["code"], 550, "{refused}");
    }
}

#[tokio::test]
async fn the_sending_day_follows_the_configured_time_zone() {
    // 2030-03-17 23:00 UTC is already 12:00 on the 18th in Auckland (UTC+13).
    let clock = std::sync::Arc::new(inboxgrove::clock::ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2030-03-17T23:00:00Z")
            .unwrap()
            .into(),
    ));
    let (app, _, a) = one_mailbox(
        crate::helpers::Options {
            clock: Some(clock.clone()),
            timezone: Some("Pacific/Auckland".into()),
            ..Default::default()
        },
        "tz.test",
        1,
    )
    .await;
    let kumo = Control::of(&app);
    let send = || {
        kumo.call(
            Method::POST,
            "/send-check",
            Some(check(&a, &a, &["r@example.net"])),
        )
    };
    assert_eq!(send().await.1["allow"], true);
    // Past midnight UTC, but still the 18th in Auckland: the limit holds.
    clock.advance(Days::hours(2));
    assert_eq!(send().await.1["code"], 452);
    // Midnight in Auckland (11:00 UTC): a new day.
    clock.advance(Days::hours(10));
    assert_eq!(send().await.1["allow"], true);
}

#[tokio::test]
async fn a_mailbox_is_full_once_its_maildirsize_or_its_messages_reach_the_quota() {
    let (app, _, email) = one_mailbox(Default::default(), "full.test", 50).await;
    let kumo = Control::of(&app);
    let full = async |address: &str| {
        let (status, answer) = kumo
            .call(Method::GET, &format!("/mailboxes/{address}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["full"].clone()
    };
    // No maildirsize yet: nothing delivered, nothing used.
    assert_eq!(full(&email).await, false);
    // Maildir++: the limit line, then `<bytes> <messages>` deltas; the
    // default quota is 1 GiB.
    app.write_maildirsize(&email, "1073741824S\n1073741823 9\n");
    assert_eq!(full(&email).await, false);
    app.write_maildirsize(&email, "1073741824S\n1073741823 9\n1 1\n");
    assert_eq!(full(&email).await, true);
    assert_eq!(full(&email.to_uppercase()).await, true);
    app.write_maildirsize(&email, "1073741824S\n1073741823 9\n1 1\n-1 -1\n");
    assert_eq!(full(&email).await, false);
    // A broken file is taken as not full (and logged), not as a refusal.
    app.write_maildirsize(&email, "1073741824S\n9999999999 lots\n");
    assert_eq!(full(&email).await, false);
    // KumoMTA's deliveries never reach maildirsize: the messages on disk
    // count too. A sparse file has the size of a 1 GiB message, not its
    // disk use.
    let (local, domain) = email.split_once('@').unwrap();
    let new = app
        .dir
        .path()
        .join("mail")
        .join(domain)
        .join(local)
        .join("Maildir/new");
    std::fs::create_dir_all(&new).unwrap();
    let delivered = std::fs::File::create(new.join("1900000000.kumo.msg")).unwrap();
    delivered.set_len(1 << 30).unwrap();
    assert_eq!(full(&email).await, true);
    // Unknown addresses answer as before.
    assert_eq!(full("ghost@full.test").await, Value::Null);
}

/// A server with `opts` and a public IPv4 address, so domains can be added.
pub async fn app_with_ip(opts: crate::helpers::Options) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(crate::helpers::Options {
        domains: inboxgrove::config::DomainArgs {
            public_ipv4: Some(IPV4.parse().unwrap()),
            ..Default::default()
        },
        ..opts
    })
    .await
}

/// A server with `opts`, one manual domain and one active mailbox on it
/// (not warming: its campaign mail has only its daily limit); returns
/// the server, the mailbox's id and its address.
async fn one_mailbox(
    opts: crate::helpers::Options,
    domain: &str,
    daily_limit: u32,
) -> (crate::helpers::TestApp, String, String) {
    let app = app_with_ip(opts).await;
    let admin = app.admin_token().await;
    let (_, added) = app
        .post(
            "/api/v1/domains/add",
            json!({ "domain_name": domain }),
            Some(&admin),
        )
        .await;
    app.set_domain_status(domain, "active");
    let (_, created) = app
        .post(
            "/api/v1/inboxes/bulk",
            json!({ "domain_id": added["domain_id"], "quantity": 1, "daily_limit": daily_limit, "enable_warmup": false }),
            Some(&admin),
        )
        .await;
    let inbox = &created["inboxes"][0];
    let (id, email) = (
        inbox["inbox_id"].as_str().unwrap(),
        inbox["email"].as_str().unwrap(),
    );
    (app, id.to_owned(), email.to_owned())
}
