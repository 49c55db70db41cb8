//! The mail ports as a client sees them: KumoMTA's SMTP banners on 25 and
//! 587, its STARTTLS certificate and a canary AUTH on 587 (which KumoMTA
//! can only answer by asking the control endpoint), Dovecot's IMAPS
//! greeting, certificate and a canary LOGIN on 993 (answered through
//! `inboxgrove checkpassword`), and whether outbound port 25 is open.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

use super::{Check, Target, cert};

/// A login no mailbox can have (RFC 2606 §2: `.invalid`): the appliance
/// must refuse it, which proves it was asked.
const CANARY: &str = "doctor-canary@inboxgrove.invalid";
/// Longest reply accepted, so a wrong service cannot make us buffer forever.
const MAX_REPLY: usize = 16 * 1024;

const START_KUMO: &str =
    "Start KumoMTA (systemctl start kumomta) with the InboxGrove policy from kumo-policy/.";
const START_DOVECOT: &str =
    "Start Dovecot with the configuration `inboxgrove dovecot-config` prints.";

async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {} s", limit.as_secs())),
    }
}

/// An SMTP reply (RFC 5321 §4.2): its code and text, lines joined.
struct Reply {
    code: u16,
    text: String,
}

async fn reply<S: AsyncBufRead + Unpin>(s: &mut S, limit: Duration) -> Result<Reply, String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = within(limit, "reading the reply", s.read_line(&mut line)).await?;
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let (Some(code), true) = (code, n > 0 && text.len() + n < MAX_REPLY) else {
            return Err(format!("not an SMTP reply: {:?}", line.trim_end()));
        };
        text.push_str(line.get(4..).unwrap_or("").trim_end());
        // "250-" continues; "250 " (or a bare "250") ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply { code, text });
        }
        text.push(' ');
    }
}

async fn command<S: AsyncBufRead + AsyncWrite + Unpin>(
    s: &mut S,
    line: &str,
    limit: Duration,
) -> Result<Reply, String> {
    within(
        limit,
        "sending",
        s.write_all(format!("{line}\r\n").as_bytes()),
    )
    .await?;
    reply(s, limit).await
}

/// Ends the session without waiting for the 221: the checks have their
/// answer, and a server slow to say goodbye must not slow the page.
async fn quit<S: AsyncWrite + Unpin>(s: &mut S) {
    let _ = s.write_all(b"QUIT\r\n").await;
}

/// Judges a greeting: 220 naming `hostname` (KumoMTA's banner is
/// `220 <hostname> KumoMTA`, the listener's `hostname` setting).
fn judge_banner(name: &str, addr: SocketAddr, greeting: &Reply, hostname: &str) -> Check {
    let shown = format!("{} {}", greeting.code, greeting.text);
    if greeting.code != 220 {
        return Check::fail(name, format!("{addr} greets with {shown:?}"), START_KUMO);
    }
    let host = greeting.text.split_whitespace().next().unwrap_or("");
    if !host.eq_ignore_ascii_case(hostname) {
        return Check::warn(
            name,
            format!("{addr} greets as {host:?}, not {hostname:?}"),
            "Set the hostname of KumoMTA's listeners to the mail host its PTR names.",
        );
    }
    Check::ok(name, format!("{addr} answers {shown:?}"))
}

async fn greet(addr: SocketAddr, limit: Duration) -> Result<(BufReader<TcpStream>, Reply), String> {
    let tcp = within(
        limit,
        &format!("connecting to {addr}"),
        TcpStream::connect(addr),
    )
    .await?;
    let mut s = BufReader::new(tcp);
    let greeting = reply(&mut s, limit).await?;
    Ok((s, greeting))
}

/// What one SMTP session showed: the greeting, then (after STARTTLS,
/// RFC 3207) the certificate served and the answer to a canary AUTH PLAIN
/// (RFC 4616) when one was sent, or why that part failed.
struct Session {
    greeting: Reply,
    secure: Result<(Vec<u8>, Option<Reply>), String>,
}

async fn smtp_session(
    addr: SocketAddr,
    hostname: &str,
    limit: Duration,
    canary: bool,
) -> Result<Session, String> {
    let (mut s, greeting) = greet(addr, limit).await?;
    if greeting.code != 220 {
        let secure = Err("no session after the greeting".to_owned());
        return Ok(Session { greeting, secure });
    }
    let secure = async {
        command(&mut s, "EHLO doctor.inboxgrove.invalid", limit).await?;
        let go = command(&mut s, "STARTTLS", limit).await?;
        if go.code != 220 {
            return Err(format!("STARTTLS answered {} {}", go.code, go.text));
        }
        let (tls, served) = handshake(s.into_inner(), hostname, limit).await?;
        let mut s = BufReader::new(tls);
        command(&mut s, "EHLO doctor.inboxgrove.invalid", limit).await?;
        let mut auth = None;
        if canary {
            let secret: u64 = rand::thread_rng().r#gen();
            let plain = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{CANARY}\0{secret:016x}"));
            auth = Some(command(&mut s, &format!("AUTH PLAIN {plain}"), limit).await?);
        }
        quit(&mut s).await;
        Ok((served, auth))
    }
    .await;
    Ok(Session { greeting, secure })
}

const SMTP_TLS: &str = "Configure TLS on KumoMTA's listener (tls_certificate, tls_private_key) with the mail host's certificate.";

/// Port 25 (or 587 without the canary): the banner and the certificate.
async fn banner_and_certificate(
    port: &str,
    addr: SocketAddr,
    t: &Target,
    configured: Option<&[u8]>,
    now: DateTime<Utc>,
    canary: bool,
) -> (Vec<Check>, Option<Result<Reply, String>>) {
    let certificate = format!("{port}_certificate");
    match smtp_session(addr, &t.hostname, t.timeout, canary).await {
        Err(e) => (vec![Check::fail(port, e, START_KUMO)], None),
        Ok(session) => {
            let banner = judge_banner(port, addr, &session.greeting, &t.hostname);
            match session.secure {
                Ok((served, auth)) => (
                    vec![
                        banner,
                        cert::served_check(&certificate, &served, configured, now),
                    ],
                    auth.map(Ok),
                ),
                Err(e) => (
                    vec![banner, Check::fail(&certificate, e.clone(), SMTP_TLS)],
                    Some(Err(e)),
                ),
            }
        }
    }
}

/// Port 25: KumoMTA's banner and its STARTTLS certificate.
pub async fn smtp(t: &Target, configured: Option<&[u8]>, now: DateTime<Utc>) -> Vec<Check> {
    banner_and_certificate("port_25", t.smtp, t, configured, now, false)
        .await
        .0
}

/// Port 587: the banner, the certificate and the canary AUTH. Our policy
/// answers 535 when InboxGrove refused the login and 454 when it could not
/// ask (kumo-policy/init.lua, `smtp_server_auth_plain`).
pub async fn submission(t: &Target, configured: Option<&[u8]>, now: DateTime<Utc>) -> Vec<Check> {
    let name = "kumomta_control";
    let (mut checks, auth) =
        banner_and_certificate("port_587", t.submission, t, configured, now, true).await;
    let policy = "Load kumo-policy/init.lua as KumoMTA's policy; its AUTH handler asks InboxGrove.";
    let control = match auth {
        None => Check::warn(
            name,
            "the canary login was not tried: 587 did not answer".to_owned(),
            "Fix port 587 first.",
        ),
        Some(Err(e)) => Check::warn(
            name,
            format!("the canary login was not tried: {e}"),
            "Fix port 587 first.",
        ),
        Some(Ok(auth)) => {
            let shown = format!("{} {}", auth.code, auth.text);
            match auth.code {
                535 => Check::ok(
                    name,
                    format!("KumoMTA asked InboxGrove and refused the canary login ({shown})"),
                ),
                400..=499 => Check::fail(
                    name,
                    format!("KumoMTA could not get a verdict from the control endpoint ({shown})"),
                    "Make the policy's control URL reach control_listen and its secret file match <data-dir>/kumo.secret.",
                ),
                235 => Check::fail(
                    name,
                    "KumoMTA accepted a login no mailbox has".to_owned(),
                    policy,
                ),
                _ => Check::fail(
                    name,
                    format!(
                        "AUTH PLAIN answered {shown:?}: the InboxGrove policy is not handling logins"
                    ),
                    policy,
                ),
            }
        }
    };
    checks.push(control);
    checks
}

/// Port 993: Dovecot's greeting over TLS (RFC 8314 §3.2), its certificate
/// and a canary LOGIN (RFC 9051 §6.2.3). Dovecot answers
/// `[AUTHENTICATIONFAILED]` when checkpassword refused, `[UNAVAILABLE]`
/// when it failed temporarily (exit 111: the appliance did not answer).
pub async fn imaps(t: &Target, configured: Option<&[u8]>, now: DateTime<Utc>) -> Vec<Check> {
    let limit = t.timeout;
    let session = async {
        let tcp = within(
            limit,
            &format!("connecting to {}", t.imaps),
            TcpStream::connect(t.imaps),
        )
        .await?;
        let (tls, served) = handshake(tcp, &t.hostname, limit).await?;
        let mut s = BufReader::new(tls);
        let greeting = imap_line(&mut s, limit).await?;
        let secret: u64 = rand::thread_rng().r#gen();
        let login = format!("a1 LOGIN \"{CANARY}\" \"{secret:016x}\"\r\n");
        within(limit, "sending", s.write_all(login.as_bytes())).await?;
        let mut answer = imap_line(&mut s, limit).await?;
        while !answer.starts_with("a1 ") {
            answer = imap_line(&mut s, limit).await?;
        }
        let _ = s.write_all(b"a2 LOGOUT\r\n").await;
        Ok::<_, String>((served, greeting, answer))
    };
    let (served, greeting, answer) = match session.await {
        Ok(v) => v,
        Err(e) => {
            return vec![
                Check::fail("port_993", e, START_DOVECOT),
                Check::warn(
                    "dovecot_auth",
                    "the canary login was not tried: 993 did not answer".to_owned(),
                    "Fix port 993 first.",
                ),
            ];
        }
    };
    let port = if greeting.starts_with("* OK") {
        Check::ok("port_993", format!("{} answers {greeting:?}", t.imaps))
    } else {
        Check::fail(
            "port_993",
            format!("{} greets with {greeting:?}", t.imaps),
            START_DOVECOT,
        )
    };
    let certificate = cert::served_check("port_993_certificate", &served, configured, now);
    let auth = if answer.contains("[AUTHENTICATIONFAILED]") {
        Check::ok(
            "dovecot_auth",
            "Dovecot asked InboxGrove and refused the canary login".to_owned(),
        )
    } else if answer.starts_with("a1 OK") {
        Check::fail(
            "dovecot_auth",
            "Dovecot accepted a login no mailbox has".to_owned(),
            "Make Dovecot's only passdb the checkpassword one `inboxgrove dovecot-config` renders.",
        )
    } else {
        Check::fail(
            "dovecot_auth",
            format!("Dovecot could not get a verdict from InboxGrove ({answer:?})"),
            "Make the copy of dovecot.secret Dovecot's checkpassword reads match <data-dir>/dovecot.secret and control_listen reachable.",
        )
    };
    vec![port, certificate, auth]
}

async fn imap_line<S: AsyncBufRead + Unpin>(s: &mut S, limit: Duration) -> Result<String, String> {
    let mut line = String::new();
    let n = within(limit, "reading", s.read_line(&mut line)).await?;
    if n == 0 || line.len() > MAX_REPLY {
        return Err("the connection closed".to_owned());
    }
    Ok(line.trim_end().to_owned())
}

/// Outbound port 25 (RFC 5321 §2.1): many VPS providers block it.
pub async fn outbound(target: &str, limit: Duration) -> Check {
    let name = "outbound_25";
    let addrs = match within(
        limit,
        &format!("resolving {target}"),
        tokio::net::lookup_host(target),
    )
    .await
    {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return Check::warn(
                name,
                e,
                "Check this host's DNS resolver, then run doctor again.",
            );
        }
    };
    let Some(addr) = addrs.first().copied() else {
        return Check::warn(
            name,
            format!("{target} has no address"),
            "Set --outbound-host to a reachable MX.",
        );
    };
    match greet(addr, limit).await {
        Ok((_, greeting)) => Check::ok(
            name,
            format!(
                "{target} ({addr}) answers {} {}",
                greeting.code, greeting.text
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!("{target} ({addr}): {e}"),
            "Ask your VPS provider to open outbound port 25; without it no mail leaves.",
        ),
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    hostname: &str,
    limit: Duration,
) -> Result<(tokio_rustls::client::TlsStream<S>, Vec<u8>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(hostname.to_owned())
        .map_err(|_| format!("{hostname:?} is not a host name"))?;
    let tls = within(
        limit,
        "TLS handshake",
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("the server sent no certificate")?;
    Ok((tls, leaf))
}

/// Accepts any certificate chain (its signatures over the handshake are
/// still verified): the doctor looks at the certificate served and judges
/// it itself, so a self-signed one is reported, not a handshake error.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
