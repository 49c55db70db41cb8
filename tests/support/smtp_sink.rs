//! A real SMTP server for the warmup tests and benchmark (RFC 5321 on
//! 127.0.0.1:0, tokio): EHLO offering STARTTLS (RFC 3207), AUTH PLAIN (RFC
//! 4616) only after it, MAIL/RCPT/DATA with dot-unstuffing, RSET, NOOP,
//! QUIT, a size limit (RFC 1870). The test decides who may log in and what
//! becomes of each message (its `deliver` hook answers per message, as
//! KumoMTA's policy would). It keeps every accepted envelope and counts
//! TCP accepts, so connection reuse can be measured.
//!
//! Also a small LMTP client (RFC 2033) that delivers into a Dovecot.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest message accepted (advertised as SIZE).
pub const MAX_SIZE: usize = 1024 * 1024;
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with CRLF.
const MAX_LINE: usize = 1000;

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Who logged in (AUTH PLAIN's authentication identity).
    pub authn: Option<String>,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// The message, dot-unstuffed, CRLF line ends as sent.
    pub data: Vec<u8>,
}

pub type DeliverFuture = Pin<Box<dyn Future<Output = Result<(), (u16, String)>> + Send>>;
/// Whether (user, password) may log in.
pub type AuthHook = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;
/// What becomes of a message.
pub type DeliverHook = Arc<dyn Fn(Envelope) -> DeliverFuture + Send + Sync>;

/// What the test decides: whether a login is good, and what becomes of
/// each message (`Err((code, text))` is the reply sent instead of 250).
#[derive(Clone)]
pub struct Hooks {
    pub auth: AuthHook,
    pub deliver: DeliverHook,
}

impl Hooks {
    /// `user` with `password` logs in; every message is accepted.
    pub fn accept_all(user: &str, password: &str) -> Self {
        let (user, password) = (user.to_owned(), password.to_owned());
        Self {
            auth: Arc::new(move |u, p| u == user && p == password),
            deliver: Arc::new(|_| Box::pin(async { Ok(()) })),
        }
    }
}

pub type Stream = Box<dyn Io>;
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the sink offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS on a plain connection (submission, port 587).
    StartTls,
    /// TLS from the first byte (submissions, port 465, RFC 8314).
    Implicit,
    /// No TLS at all: AUTH is never possible.
    Plain,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    accepted: Arc<Mutex<Vec<Envelope>>>,
    connections: Arc<AtomicUsize>,
    open: Arc<Open>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1:0 with the certificate chain and key at these
    /// PEM paths, offering STARTTLS.
    pub async fn start(cert: &Path, key: &Path, hooks: Hooks) -> Self {
        Self::start_with(cert, key, hooks, Security::StartTls).await
    }

    pub async fn start_with(cert: &Path, key: &Path, hooks: Hooks, security: Security) -> Self {
        let acceptor = acceptor(cert, key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Open::default());
        let task = tokio::spawn({
            let (accepted, connections, open) =
                (accepted.clone(), connections.clone(), open.clone());
            async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    // As a real server does: no Nagle delay on replies.
                    let _ = tcp.set_nodelay(true);
                    let session = Session {
                        acceptor: acceptor.clone(),
                        hooks: hooks.clone(),
                        accepted: accepted.clone(),
                        security,
                    };
                    let open = open.clone();
                    open.enter();
                    tokio::spawn(async move {
                        session.run(tcp).await;
                        open.leave();
                    });
                }
            }
        });
        Self {
            addr,
            accepted,
            connections,
            open,
            task,
        }
    }

    /// Every message accepted so far, in order.
    pub fn accepted(&self) -> Vec<Envelope> {
        self.accepted.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn most_open(&self) -> usize {
        self.open.most.load(Ordering::SeqCst)
    }
}

/// Connections open now, and the most there were.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Open {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn acceptor(cert: &Path, key: &Path) -> TlsAcceptor {
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

struct Session {
    acceptor: TlsAcceptor,
    hooks: Hooks,
    accepted: Arc<Mutex<Vec<Envelope>>>,
    security: Security,
}

/// The transaction in progress (RFC 5321 §3.3).
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpts: Vec<String>,
}

impl Session {
    async fn run(self, tcp: TcpStream) {
        let mut io = BufReader::new(Box::new(tcp) as Stream);
        let mut tls = false;
        if self.security == Security::Implicit {
            let Ok(secured) = self.acceptor.accept(io.into_inner()).await else {
                return;
            };
            io = BufReader::new(Box::new(secured) as Stream);
            tls = true;
        }
        let (mut authn, mut tx) = (None::<String>, Transaction::default());
        if reply(&mut io, "220 sink.test ESMTP").await.is_err() {
            return;
        }
        loop {
            let Some(line) = read_line(&mut io).await else {
                return;
            };
            let Some(line) = line else {
                let _ = reply(&mut io, "500 5.5.6 line too long").await;
                continue;
            };
            let upper = line.to_ascii_uppercase();
            let verb = upper.split(' ').next().unwrap_or("");
            let answer = match verb {
                "EHLO" | "HELO" => {
                    tx = Transaction::default();
                    let offer = match (tls, self.security) {
                        (true, _) => "250-AUTH PLAIN",
                        (false, Security::Plain) => "250-PIPELINING",
                        (false, _) => "250-STARTTLS",
                    };
                    format!(
                        "250-sink.test\r\n250-SIZE {MAX_SIZE}\r\n250-8BITMIME\r\n{offer}\r\n250 ENHANCEDSTATUSCODES"
                    )
                }
                "STARTTLS" if tls => "503 5.5.1 TLS already active".into(),
                "STARTTLS" if self.security == Security::Plain => "502 5.5.1 no TLS here".into(),
                "STARTTLS" => {
                    if reply(&mut io, "220 2.0.0 go ahead").await.is_err() {
                        return;
                    }
                    // Whatever the client sent before the handshake goes
                    // with the plain buffer (RFC 3207 §6).
                    let Ok(secured) = self.acceptor.accept(io.into_inner()).await else {
                        return;
                    };
                    io = BufReader::new(Box::new(secured) as Stream);
                    (tls, authn, tx) = (true, None, Transaction::default());
                    continue;
                }
                "AUTH" => match self.auth(&mut io, tls, &authn, &line).await {
                    Some(Ok(user)) => {
                        authn = Some(user);
                        "235 2.7.0 authenticated".into()
                    }
                    Some(Err(answer)) => answer,
                    None => return,
                },
                "MAIL" if authn.is_none() => "530 5.7.0 authentication required".into(),
                "MAIL" if tx.mail_from.is_some() => "503 5.5.1 nested MAIL".into(),
                "MAIL" => match path(&line, "MAIL FROM:") {
                    Some(_) if declared_size(&upper) > MAX_SIZE => {
                        "552 5.3.4 message too big".into()
                    }
                    Some(from) => {
                        tx.mail_from = Some(from);
                        "250 2.1.0 OK".into()
                    }
                    None => "501 5.5.4 MAIL FROM:<address>".into(),
                },
                "RCPT" if tx.mail_from.is_none() => "503 5.5.1 MAIL first".into(),
                "RCPT" => match path(&line, "RCPT TO:") {
                    Some(to) => {
                        tx.rcpts.push(to);
                        "250 2.1.5 OK".into()
                    }
                    None => "501 5.5.4 RCPT TO:<address>".into(),
                },
                "DATA" if tx.rcpts.is_empty() => "503 5.5.1 RCPT first".into(),
                "DATA" => {
                    if reply(&mut io, "354 end with <CRLF>.<CRLF>").await.is_err() {
                        return;
                    }
                    let Some(data) = read_data(&mut io).await else {
                        return;
                    };
                    let tx = std::mem::take(&mut tx);
                    match data {
                        None => "552 5.3.4 message too big".into(),
                        Some(data) => {
                            let envelope = Envelope {
                                authn: authn.clone(),
                                mail_from: tx.mail_from.unwrap_or_default(),
                                rcpts: tx.rcpts,
                                data,
                            };
                            match (self.hooks.deliver)(envelope.clone()).await {
                                Ok(()) => {
                                    self.accepted.lock().unwrap().push(envelope);
                                    "250 2.0.0 queued".into()
                                }
                                Err((code, text)) => format!("{code} {text}"),
                            }
                        }
                    }
                }
                "RSET" => {
                    tx = Transaction::default();
                    "250 2.0.0 OK".into()
                }
                "NOOP" => "250 2.0.0 OK".into(),
                "QUIT" => {
                    let _ = reply(&mut io, "221 2.0.0 bye").await;
                    return;
                }
                _ => "502 5.5.2 command not implemented".into(),
            };
            if reply(&mut io, &answer).await.is_err() {
                return;
            }
        }
    }

    /// AUTH PLAIN, with the response on the line or after a 334; `None`
    /// when the client went away.
    async fn auth(
        &self,
        io: &mut BufReader<Stream>,
        tls: bool,
        authn: &Option<String>,
        line: &str,
    ) -> Option<Result<String, String>> {
        if !tls {
            return Some(Err("530 5.7.0 must issue a STARTTLS command first".into()));
        }
        if authn.is_some() {
            return Some(Err("503 5.5.1 already authenticated".into()));
        }
        let mut words = line.split_ascii_whitespace().skip(1);
        if !words
            .next()
            .is_some_and(|m| m.eq_ignore_ascii_case("PLAIN"))
        {
            return Some(Err("504 5.5.4 only AUTH PLAIN".into()));
        }
        let response = match words.next() {
            Some(initial) => initial.to_owned(),
            None => {
                reply(io, "334 ").await.ok()?;
                read_line(io).await??
            }
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(response.trim()) else {
            return Some(Err("501 5.5.2 not base64".into()));
        };
        // RFC 4616 §2: [authzid] NUL authcid NUL passwd
        let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
        let [_, user, password] = parts[..] else {
            return Some(Err("501 5.5.2 not PLAIN".into()));
        };
        let (user, password) = (
            String::from_utf8_lossy(user).into_owned(),
            String::from_utf8_lossy(password).into_owned(),
        );
        if (self.hooks.auth)(&user, &password) {
            Some(Ok(user))
        } else {
            Some(Err("535 5.7.8 authentication credentials invalid".into()))
        }
    }
}

/// `<address>` after `prefix` (case-insensitive), parameters ignored.
fn path(line: &str, prefix: &str) -> Option<String> {
    let rest = line.get(prefix.len()..)?;
    if !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('<')?;
    let (address, _) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// The SIZE= parameter of MAIL (RFC 1870 §6), 0 without one.
fn declared_size(upper: &str) -> usize {
    upper
        .split_ascii_whitespace()
        .find_map(|p| p.strip_prefix("SIZE="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn reply(io: &mut BufReader<Stream>, text: &str) -> std::io::Result<()> {
    let stream = io.get_mut();
    stream.write_all(format!("{text}\r\n").as_bytes()).await?;
    stream.flush().await
}

/// A line without CRLF: `None` at the end of the stream, `Some(None)` for
/// a line over the limit.
async fn read_line<R: AsyncBufReadExt + Unpin>(io: &mut R) -> Option<Option<String>> {
    let mut raw = Vec::new();
    if io.read_until(b'\n', &mut raw).await.ok()? == 0 {
        return None;
    }
    if raw.len() > MAX_LINE {
        return Some(None);
    }
    let line = String::from_utf8_lossy(&raw);
    Some(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// DATA up to the lone dot, dot-unstuffed (RFC 5321 §4.5.2): `None` when
/// the client went away, `Some(None)` when it was over [`MAX_SIZE`].
async fn read_data(io: &mut BufReader<Stream>) -> Option<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let mut raw = Vec::new();
        if io.read_until(b'\n', &mut raw).await.ok()? == 0 {
            return None;
        }
        if raw == b".\r\n" || raw == b".\n" {
            return Some((!too_big).then_some(data));
        }
        let line = raw.strip_prefix(b".").unwrap_or(&raw);
        if data.len() + line.len() > MAX_SIZE {
            too_big = true;
        } else {
            data.extend_from_slice(line);
        }
    }
}

/// Delivers `data` to `rcpt` over LMTP (RFC 2033) at `addr`; `Err` is the
/// server's refusal or what went wrong.
pub async fn lmtp_deliver(
    addr: SocketAddr,
    from: &str,
    rcpt: &str,
    data: &[u8],
) -> Result<(), String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut io = BufReader::new(tcp);
    expect(&mut io, None, "220").await?;
    expect(&mut io, Some("LHLO sink.test"), "250").await?;
    expect(&mut io, Some(&format!("MAIL FROM:<{from}>")), "250").await?;
    expect(&mut io, Some(&format!("RCPT TO:<{rcpt}>")), "250").await?;
    expect(&mut io, Some("DATA"), "354").await?;
    let mut body = Vec::with_capacity(data.len() + 16);
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            body.push(b'.');
        }
        body.extend_from_slice(line);
    }
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    io.get_mut()
        .write_all(&body)
        .await
        .map_err(|e| e.to_string())?;
    // One reply per recipient after the dot (RFC 2033 §4.2): one here.
    expect(&mut io, None, "250").await?;
    expect(&mut io, Some("QUIT"), "221").await?;
    Ok(())
}

/// Sends `command` (if any) and reads a whole reply, which must start
/// with `code`.
async fn expect(
    io: &mut BufReader<TcpStream>,
    command: Option<&str>,
    code: &str,
) -> Result<(), String> {
    if let Some(command) = command {
        let stream = io.get_mut();
        let sent = format!("{command}\r\n");
        stream
            .write_all(sent.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut reply = String::new();
    loop {
        let Some(Some(line)) = read_line(io).await else {
            return Err(format!("the LMTP server went away after {reply:?}"));
        };
        reply.push_str(&line);
        reply.push('\n');
        // The last line of a reply has a space after the code (RFC 5321
        // §4.2.1).
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    if reply.starts_with(code) {
        Ok(())
    } else {
        Err(reply.trim_end().to_owned())
    }
}
