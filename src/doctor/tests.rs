//! Each check against local doubles: loopback listeners speaking SMTP
//! (with STARTTLS), IMAPS and HTTP as KumoMTA, Dovecot and a web server
//! would, so every ok/warn/fail path is driven over real sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rcgen::{CertificateParams, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

use super::*;
use crate::clock::{ManualClock, SharedClock};

const HOST: &str = "mail.acme.example";
const LIMIT: Duration = Duration::from_secs(3);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// A self-signed certificate for HOST and the TLS acceptor serving it.
fn tls() -> (Vec<u8>, TlsAcceptor) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![HOST.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    (der, TlsAcceptor::from(Arc::new(config)))
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Answers each line read with the reply `answer` gives it, until it
/// gives none or the line `last` has been answered (STARTTLS: the TLS
/// handshake follows, not a line).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    answer: &(dyn Fn(&str) -> Option<String> + Sync),
    last: Option<&str>,
) -> S {
    let mut s = BufReader::new(s);
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            break;
        }
        match answer(line.trim_end()) {
            Some(reply) => s.write_all(reply.as_bytes()).await.unwrap(),
            None => break,
        }
        if last == Some(line.trim_end()) {
            break;
        }
    }
    s.into_inner()
}

/// KumoMTA's double: `banner`, STARTTLS with `acceptor`, and `auth` as
/// the reply to AUTH PLAIN.
async fn smtp_double(
    banner: &'static str,
    acceptor: TlsAcceptor,
    auth: &'static str,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tcp.write_all(format!("{banner}\r\n").as_bytes())
                    .await
                    .unwrap();
                let plain = |l: &str| match l {
                    l if l.starts_with("EHLO") => Some("250-hi\r\n250 STARTTLS\r\n".to_owned()),
                    "STARTTLS" => Some("220 go ahead\r\n".to_owned()),
                    _ => None,
                };
                let tcp = converse(tcp, &plain, Some("STARTTLS")).await;
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let secure = |l: &str| match l {
                    l if l.starts_with("EHLO") => Some("250-hi\r\n250 AUTH PLAIN\r\n".to_owned()),
                    l if l.starts_with("AUTH PLAIN ") => Some(format!("{auth}\r\n")),
                    _ => None,
                };
                converse(tls, &secure, None).await;
            });
        }
    });
    addr
}

fn target(submission: SocketAddr, imaps: SocketAddr) -> Target {
    Target {
        data_dir: PathBuf::from("/"),
        mail_root: PathBuf::from("/"),
        kumo_spool: PathBuf::from("/"),
        hostname: HOST.to_owned(),
        public_ipv4: None,
        public_ipv6: None,
        dns_servers: None,
        smtp: submission,
        submission,
        imaps,
        kumo_http_url: None,
        outbound: submission.to_string(),
        clock_url: String::new(),
        certificates: Vec::new(),
        tls_dir: PathBuf::from("/nonexistent/inboxgrove-tls"),
        timeout: LIMIT,
    }
}

fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
}

#[tokio::test]
async fn port_25_banner_and_certificate() {
    let (der, acceptor) = tls();
    let port25 = |addr| probe_smtp(addr, der.clone());
    let good = smtp_double("220 mail.acme.example KumoMTA", acceptor.clone(), "535 no").await;
    let checks = port25(good).await;
    assert_eq!(by_name(&checks, "port_25").status, Status::Ok, "{checks:?}");
    // Served after STARTTLS, the configured (self-signed) certificate.
    let cert = by_name(&checks, "port_25_certificate");
    assert_eq!(cert.status, Status::Warn, "{cert:?}");
    assert!(cert.detail.contains("self-signed"), "{cert:?}");
    let other = smtp_double("220 localhost KumoMTA", acceptor.clone(), "535 no").await;
    let c = by_name(&port25(other).await, "port_25").clone();
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(c.detail.contains("localhost"), "{c:?}");
    let busy = smtp_double("421 too busy", acceptor, "535 no").await;
    let checks = port25(busy).await;
    assert_eq!(by_name(&checks, "port_25").status, Status::Fail);
    assert_eq!(by_name(&checks, "port_25_certificate").status, Status::Fail);
    let checks = port25(closed_port().await).await;
    let c = by_name(&checks, "port_25");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.as_deref().unwrap_or("").contains("KumoMTA"), "{c:?}");
}

async fn probe_smtp(addr: SocketAddr, configured: Vec<u8>) -> Vec<Check> {
    probe::smtp(&target(addr, addr), Some(&configured), now()).await
}

#[tokio::test]
async fn the_canary_auth_tells_a_refusal_from_an_unreachable_control_endpoint() {
    let (der, acceptor) = tls();
    let refused = smtp_double(
        "220 mail.acme.example KumoMTA",
        acceptor.clone(),
        "535 5.7.8 no",
    )
    .await;
    let checks = probe::submission(&target(refused, refused), Some(&der), now()).await;
    assert_eq!(by_name(&checks, "port_587").status, Status::Ok);
    assert_eq!(
        by_name(&checks, "kumomta_control").status,
        Status::Ok,
        "{checks:?}"
    );
    // The double's certificate is self-signed: served as configured, but a
    // warning that names what it breaks.
    let cert = by_name(&checks, "port_587_certificate");
    assert_eq!(cert.status, Status::Warn);
    assert!(cert.detail.contains("self-signed"), "{cert:?}");
    let other = probe::submission(&target(refused, refused), Some(b"other"), now()).await;
    assert!(
        by_name(&other, "port_587_certificate")
            .detail
            .contains("not the configured one")
    );

    let temporary = smtp_double(
        "220 mail.acme.example KumoMTA",
        acceptor.clone(),
        "454 4.7.0 try later",
    )
    .await;
    let checks = probe::submission(&target(temporary, temporary), Some(&der), now()).await;
    let c = by_name(&checks, "kumomta_control");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.fix.as_deref().unwrap_or("").contains("kumo.secret"),
        "{c:?}"
    );
    let no_policy = smtp_double(
        "220 mail.acme.example KumoMTA",
        acceptor,
        "504 5.5.4 no AUTH",
    )
    .await;
    let checks = probe::submission(&target(no_policy, no_policy), None, now()).await;
    assert_eq!(by_name(&checks, "kumomta_control").status, Status::Fail);

    let down = closed_port().await;
    let checks = probe::submission(&target(down, down), None, now()).await;
    assert_eq!(by_name(&checks, "port_587").status, Status::Fail);
    // Not run is not a failure of its own.
    assert_eq!(by_name(&checks, "kumomta_control").status, Status::Warn);
}

/// Dovecot's double: greets over TLS, answers LOGIN with `answer`.
async fn imap_double(acceptor: TlsAcceptor, answer: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                tls.write_all(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n")
                    .await
                    .unwrap();
                let reply = |l: &str| {
                    l.starts_with("a1 LOGIN ")
                        .then(|| format!("* BYE ignored\r\n{answer}\r\n"))
                };
                converse(tls, &reply, None).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_canary_imap_login_tells_a_refusal_from_a_temporary_failure() {
    let (der, acceptor) = tls();
    let refused = imap_double(
        acceptor.clone(),
        "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
    )
    .await;
    let checks = probe::imaps(&target(refused, refused), Some(&der), now()).await;
    assert_eq!(
        by_name(&checks, "port_993").status,
        Status::Ok,
        "{checks:?}"
    );
    assert_eq!(by_name(&checks, "dovecot_auth").status, Status::Ok);
    assert_eq!(
        by_name(&checks, "port_993_certificate").status,
        Status::Warn
    );
    let unavailable = imap_double(
        acceptor.clone(),
        "a1 NO [UNAVAILABLE] Temporary authentication failure.",
    )
    .await;
    let checks = probe::imaps(&target(unavailable, unavailable), Some(&der), now()).await;
    assert_eq!(by_name(&checks, "dovecot_auth").status, Status::Fail);
    let open = imap_double(acceptor, "a1 OK Logged in").await;
    let checks = probe::imaps(&target(open, open), Some(&der), now()).await;
    assert_eq!(by_name(&checks, "dovecot_auth").status, Status::Fail);
    let down = closed_port().await;
    let checks = probe::imaps(&target(down, down), None, now()).await;
    assert_eq!(by_name(&checks, "port_993").status, Status::Fail);
    assert_eq!(by_name(&checks, "dovecot_auth").status, Status::Warn);
}

#[tokio::test]
async fn outbound_25_is_open_or_blocked() {
    let (_, acceptor) = tls();
    let mx = smtp_double("220 mx.example ESMTP", acceptor, "535 no").await;
    assert_eq!(
        probe::outbound(&mx.to_string(), LIMIT).await.status,
        Status::Ok
    );
    let c = probe::outbound(&closed_port().await.to_string(), LIMIT).await;
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.as_deref().unwrap_or("").contains("port 25"), "{c:?}");
    // A name that does not resolve: the check could not run.
    let c = probe::outbound("no-such-host.invalid:25", LIMIT).await;
    assert_eq!(c.status, Status::Warn, "{c:?}");
}

/// An HTTP double answering every request with `status` and, if given, a
/// Date header.
async fn http_double(status: u16, date: Option<String>) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    let app = axum::Router::new().fallback(move || {
        let date = date.clone();
        async move {
            let mut headers = HeaderMap::new();
            if let Some(d) = date {
                headers.insert(header::DATE, d.parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), headers, "")
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// hyper dates every response; this double answers without a Date.
async fn undated_double() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn kumomta_liveness_paths() {
    assert_eq!(host::kumo_liveness(None, LIMIT).await.status, Status::Warn);
    let live = http_double(200, None).await;
    assert_eq!(
        host::kumo_liveness(Some(&live), LIMIT).await.status,
        Status::Ok
    );
    let full = http_double(503, None).await;
    assert_eq!(
        host::kumo_liveness(Some(&full), LIMIT).await.status,
        Status::Fail
    );
    let down = format!("http://{}", closed_port().await);
    assert_eq!(
        host::kumo_liveness(Some(&down), LIMIT).await.status,
        Status::Fail
    );
}

#[tokio::test]
async fn clock_skew_against_a_date_header() {
    let clock: SharedClock = Arc::new(ManualClock::new(now()));
    let date = |d: DateTime<Utc>| Some(d.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    let same = http_double(200, date(now())).await;
    assert_eq!(
        host::clock_skew(&same, &clock, LIMIT).await.status,
        Status::Ok
    );
    let late = http_double(200, date(now() - chrono::Duration::minutes(5))).await;
    let c = host::clock_skew(&late, &clock, LIMIT).await;
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("+300 s"), "{c:?}");
    assert_eq!(
        host::judge_skew(now(), now() + chrono::Duration::seconds(20), "x").status,
        Status::Warn
    );
    // No Date header, or nobody answering: could not check, never a fail.
    let undated = undated_double().await;
    assert_eq!(
        host::clock_skew(&undated, &clock, LIMIT).await.status,
        Status::Warn
    );
    let down = format!("http://{}", closed_port().await);
    assert_eq!(
        host::clock_skew(&down, &clock, LIMIT).await.status,
        Status::Warn
    );
}

#[test]
fn free_disk_paths() {
    let dir = tempfile::tempdir().unwrap();
    let here = host::free_disk("disk", dir.path());
    assert!(here.detail.contains("MiB free"), "{here:?}");
    assert_eq!(
        host::free_disk("disk", &dir.path().join("gone")).status,
        Status::Fail
    );
    assert_eq!(
        host::judge_disk("d", dir.path(), 100 << 20).status,
        Status::Fail
    );
    assert_eq!(
        host::judge_disk("d", dir.path(), 1 << 30).status,
        Status::Warn
    );
    assert_eq!(
        host::judge_disk("d", dir.path(), 10 << 30).status,
        Status::Ok
    );
}

#[test]
fn ptr_must_be_forward_confirmed_and_name_a_mail_host() {
    let ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let hosts = [HOST.to_owned(), "mail.other.example".to_owned()];
    let s = |v: &[&str]| v.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let none = host::judge_ptr(ip, &[], &[], &hosts);
    assert_eq!(none.status, Status::Fail);
    assert!(none.fix.as_deref().unwrap_or("").contains(HOST), "{none:?}");
    let unconfirmed = host::judge_ptr(ip, &s(&[HOST]), &[], &hosts);
    assert_eq!(unconfirmed.status, Status::Fail);
    let generic = s(&["7.113.0.203.vps.example"]);
    assert_eq!(
        host::judge_ptr(ip, &generic, &generic, &hosts).status,
        Status::Warn
    );
    let other = s(&["MAIL.other.example"]);
    assert_eq!(
        host::judge_ptr(ip, &other, &other, &hosts).status,
        Status::Ok
    );
}

#[tokio::test]
async fn the_report_fails_when_one_check_fails_and_no_check_hangs() {
    let down = closed_port().await;
    let mut t = target(down, down);
    t.outbound = down.to_string();
    t.clock_url = format!("http://{down}");
    let clock: SharedClock = Arc::new(ManualClock::new(now()));
    let report = run(&t, &clock, Err("store closed".to_owned())).await;
    assert!(!report.ok);
    for c in &report.checks {
        assert_eq!(c.fix.is_none(), c.status == Status::Ok, "{c:?}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checks"][0]["status"], "warn", "{json}");
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "domains")
    );
}

#[test]
fn domain_records_as_the_domains_page_shows_them() {
    use crate::domains::model::{DomainStatus, RecordState};
    let mut view = crate::web::tests::view("acme.example");
    let c = host::domain_records(&view);
    assert_eq!(
        (c.name.as_str(), c.status),
        ("dns_acme.example", Status::Fail),
        "{c:?}"
    );
    assert!(
        c.fix
            .as_deref()
            .unwrap_or("")
            .contains("domain show acme.example"),
        "{c:?}"
    );
    view.records[0].status = RecordState::Missing;
    assert_eq!(host::domain_records(&view).status, Status::Warn);
    view.records[0].status = RecordState::Verified;
    assert_eq!(host::domain_records(&view).status, Status::Ok);
    view.domain.status = DomainStatus::Failed;
    let failed = host::domain_records(&view);
    assert_eq!(failed.status, Status::Fail);
    assert!(failed.detail.contains("the TXT record says"), "{failed:?}");
}
