//! Submission of warmup mail over SMTP (RFC 6409) with lettre: TLS first
//! (implicit, RFC 8314, or STARTTLS, RFC 3207; never AUTH in clear), then
//! AUTH PLAIN (RFC 4616) with the mailbox's own login, then the raw
//! message as the engine composed it.
//!
//! Authenticated connections are kept per (server, login) and reused, so
//! thousands of sends a minute do not each pay TCP, TLS and AUTH: RFC 5321
//! §3.3 lets a client start the next transaction with MAIL on the same
//! session. The pool is bounded in connections in use at once, in idle
//! ones per login and in all, and in messages per connection.

use std::collections::HashMap;
use std::error::Error as _;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::tls::Trust;
use super::{Endpoint, Login};

/// Connections in use at once, over every server and login.
const MAX_CONNECTIONS: usize = 64;
/// Idle connections kept for one login on one server.
const MAX_IDLE_PER_LOGIN: usize = 8;
/// Idle connections kept in all.
const MAX_IDLE: usize = 256;
/// Messages on one connection; providers cap a session (Gmail at about
/// 100) and a fresh one now and then spreads load.
const MAX_MESSAGES_PER_CONNECTION: u32 = 100;
/// An idle connection older than this is closed rather than reused: RFC
/// 5321 §4.5.3.2.7 lets a server drop an idle client after 5 minutes, and
/// many do sooner.
const IDLE_FOR: Duration = Duration::from_secs(60);
/// An idle connection older than this is checked with NOOP before reuse,
/// so a server that closed it is noticed before MAIL, not after DATA.
const CHECK_AFTER: Duration = Duration::from_secs(5);
/// The most one send or check may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot reach the SMTP server: {0}")]
    Connect(String),
    #[error("TLS with the SMTP server failed: {0}")]
    Tls(String),
    #[error("the SMTP server refused the login: {0}")]
    Auth(String),
    #[error("the SMTP server refused the message ({code}): {message}")]
    Refused { code: u16, message: String },
    #[error("the SMTP server deferred the message ({code}): {message}")]
    Deferred { code: u16, message: String },
    #[error("SMTP protocol error: {0}")]
    Protocol(String),
    /// The caller's envelope cannot be sent (not an address).
    #[error("invalid envelope: {0}")]
    Invalid(String),
}

impl SmtpError {
    /// Whether trying again later cannot help: a 5xx answer, a refused
    /// login or an envelope that is not one.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Refused { .. } | Self::Auth(_) | Self::Invalid(_)
        )
    }
}

/// Which server and which login a pooled connection is authenticated as;
/// a digest of the password, so a changed password never rides on a
/// session opened with the old one.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    host: String,
    port: u16,
    tls_name: String,
    implicit_tls: bool,
    username: String,
    password: [u8; 32],
}

impl Key {
    fn new(endpoint: &Endpoint, login: &Login) -> Self {
        Self {
            host: endpoint.host.clone(),
            port: endpoint.port,
            tls_name: endpoint.tls_name.clone(),
            implicit_tls: endpoint.implicit_tls,
            username: login.username.clone(),
            password: Sha256::digest(login.password.expose_secret().as_bytes()).into(),
        }
    }
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
    sent: u32,
}

/// Sends warmup mail through the senders' own submission servers.
pub struct Submitter {
    trust: Trust,
    helo: ClientId,
    slots: Semaphore,
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
}

impl Submitter {
    /// `helo` is the name given in EHLO (this host's name).
    pub fn new(trust: Trust, helo: String) -> Self {
        Self {
            trust,
            helo: ClientId::Domain(helo),
            slots: Semaphore::new(MAX_CONNECTIONS),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Submits `raw` (RFC 5322 bytes, sent as given but dot-stuffed) from
    /// `envelope_from` to `recipient`, as `login`.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        login: &Login,
        envelope_from: &str,
        recipient: &str,
        raw: &[u8],
    ) -> Result<(), SmtpError> {
        let envelope = envelope(envelope_from, recipient)?;
        let key = Key::new(endpoint, login);
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| SmtpError::Protocol(e.to_string()))?;
        let work = async {
            let (mut conn, sent) = match self.reuse(&key).await {
                Some(idle) => (idle.conn, idle.sent),
                None => (self.open(endpoint, login).await?, 0),
            };
            // lettre ends DATA with CRLF "." CRLF whatever the message
            // ends with (RFC 5321 §4.1.1.4); the message's own last CRLF
            // is that first one, or it would gain an empty line.
            let body = raw.strip_suffix(b"\r\n").unwrap_or(raw);
            match conn.send(&envelope, body).await {
                Ok(_) => {
                    self.keep(key, conn, sent + 1).await;
                    Ok(())
                }
                Err(e) => Err(answer(e, login)),
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(timed_out(endpoint)))
    }

    /// Connects, secures, logs in and quits: whether `login` may submit
    /// through `endpoint` (the test when a peer is added).
    pub async fn check(&self, endpoint: &Endpoint, login: &Login) -> Result<(), SmtpError> {
        let work = async {
            let mut conn = self.open(endpoint, login).await?;
            conn.quit().await.map_err(|e| answer(e, login))?;
            Ok(())
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(timed_out(endpoint)))
    }

    /// An idle connection for `key` that is still fit to use.
    async fn reuse(&self, key: &Key) -> Option<Idle> {
        loop {
            let mut idle = {
                let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let list = pool.get_mut(key)?;
                let found = list.pop();
                if list.is_empty() {
                    pool.remove(key);
                }
                found?
            };
            let age = idle.since.elapsed();
            if age >= IDLE_FOR || idle.conn.has_broken() {
                continue;
            }
            if age < CHECK_AFTER || idle.conn.test_connected().await {
                return Some(idle);
            }
        }
    }

    /// Pools `conn` for the next message of `key`, or ends it with QUIT
    /// (RFC 5321 §4.1.1.10) while its slot is still held, so the bound on
    /// open connections holds at the server too.
    async fn keep(&self, key: Key, mut conn: AsyncSmtpConnection, sent: u32) {
        if conn.has_broken() {
            return;
        }
        if sent < MAX_MESSAGES_PER_CONNECTION {
            let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Logins that send a few messages a day leave connections that
            // expire unused: swept here, or they would fill the pool.
            pool.retain(|_, list| {
                list.retain(|idle| idle.since.elapsed() < IDLE_FOR);
                !list.is_empty()
            });
            let total: usize = pool.values().map(Vec::len).sum();
            let list = pool.entry(key).or_default();
            if list.len() < MAX_IDLE_PER_LOGIN && total < MAX_IDLE {
                list.push(Idle {
                    conn,
                    since: Instant::now(),
                    sent,
                });
                return;
            }
        }
        // The message is sent; a server that does not answer QUIT changes
        // nothing.
        let _ = conn.quit().await;
    }

    /// A new connection through TLS and AUTH PLAIN.
    async fn open(
        &self,
        endpoint: &Endpoint,
        login: &Login,
    ) -> Result<AsyncSmtpConnection, SmtpError> {
        let at = format!("{}:{}", endpoint.host, endpoint.port);
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| SmtpError::Connect(format!("{at}: {e}")))?;
        // Commands and replies are small and lettre writes the end of DATA
        // apart from the message: without this, Nagle's algorithm and
        // delayed ACKs add tens of milliseconds to every message.
        tcp.set_nodelay(true)
            .map_err(|e| SmtpError::Connect(format!("{at}: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = if endpoint.implicit_tls {
            let name = ServerName::try_from(endpoint.tls_name.clone()).map_err(|_| {
                SmtpError::Tls(format!(
                    "{:?} is not a name a certificate can be checked for",
                    endpoint.tls_name
                ))
            })?;
            let tls = self
                .trust
                .connector()
                .connect(name, tcp)
                .await
                .map_err(|e| SmtpError::Tls(format!("{at}: {e}")))?;
            Box::new(Implicit(tls))
        } else {
            Box::new(tcp)
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.helo)
            .await
            .map_err(|e| answer(e, login))?;
        if !endpoint.implicit_tls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(SmtpError::Tls(format!(
                    "{at} does not offer STARTTLS; the login is never sent in clear"
                )));
            }
            let tls = self
                .trust
                .smtp_parameters(&endpoint.tls_name)
                .map_err(|e| SmtpError::Tls(e.to_string()))?;
            conn.starttls(tls, &self.helo)
                .await
                .map_err(|e| SmtpError::Tls(format!("{at}: {}", redact(e.to_string(), login))))?;
        }
        let credentials = Credentials::new(
            login.username.clone(),
            login.password.expose_secret().to_owned(),
        );
        conn.auth(&[Mechanism::Plain], &credentials)
            .await
            .map_err(|e| match answer(e, login) {
                SmtpError::Refused { code, message } => {
                    SmtpError::Auth(format!("{code} {message}"))
                }
                // No AUTH PLAIN on offer is a login that cannot be made.
                SmtpError::Protocol(why) => SmtpError::Auth(why),
                other => other,
            })?;
        Ok(conn)
    }
}

/// An implicit-TLS stream (RFC 8314) as lettre takes one: the handshake
/// is ours, so a certificate failure is told from an unreachable server.
#[derive(Debug)]
struct Implicit(TlsStream<TcpStream>);

impl AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Implicit {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Implicit {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

fn envelope(from: &str, to: &str) -> Result<Envelope, SmtpError> {
    let address = |s: &str| {
        Address::from_str(s)
            .map_err(|e| SmtpError::Invalid(format!("{s:?} is not an address: {e}")))
    };
    Envelope::new(Some(address(from)?), vec![address(to)?])
        .map_err(|e| SmtpError::Invalid(e.to_string()))
}

fn timed_out(endpoint: &Endpoint) -> SmtpError {
    SmtpError::Connect(format!(
        "{}:{} did not answer within {} s",
        endpoint.host,
        endpoint.port,
        TIMEOUT.as_secs()
    ))
}

/// The server's answer, or what went wrong instead, as an [`SmtpError`].
fn answer(e: LettreError, login: &Login) -> SmtpError {
    let message = redact(
        e.source().map(ToString::to_string).unwrap_or_default(),
        login,
    );
    let code = e
        .status()
        .and_then(|c| c.to_string().parse::<u16>().ok())
        .unwrap_or(0);
    if e.is_permanent() {
        SmtpError::Refused { code, message }
    } else if e.is_transient() {
        SmtpError::Deferred { code, message }
    } else if e.is_tls() {
        SmtpError::Tls(redact(e.to_string(), login))
    } else if e.is_client() || e.is_response() {
        SmtpError::Protocol(redact(e.to_string(), login))
    } else {
        SmtpError::Connect(redact(e.to_string(), login))
    }
}

/// A server could echo what it was sent; the password never leaves here.
fn redact(message: String, login: &Login) -> String {
    let secret = login.password.expose_secret();
    if secret.is_empty() || !message.contains(secret) {
        message
    } else {
        message.replace(secret, "[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(password: &str) -> Login {
        Login {
            username: "a@example.com".into(),
            password: password.to_owned().into(),
        }
    }

    #[test]
    fn only_refusals_and_bad_logins_are_permanent() {
        let refused = SmtpError::Refused {
            code: 550,
            message: "no".into(),
        };
        let deferred = SmtpError::Deferred {
            code: 451,
            message: "later".into(),
        };
        assert!(refused.is_permanent());
        assert!(SmtpError::Auth("535".into()).is_permanent());
        assert!(!deferred.is_permanent());
        assert!(!SmtpError::Connect("refused".into()).is_permanent());
        assert!(!SmtpError::Tls("bad certificate".into()).is_permanent());
    }

    #[test]
    fn an_echoed_password_is_redacted_and_a_bad_address_named() {
        let said = redact("535 bad password hunter2!".into(), &login("hunter2!"));
        assert_eq!(said, "535 bad password [REDACTED]");
        let err = envelope("not an address", "b@example.com").unwrap_err();
        assert!(
            err.is_permanent() && err.to_string().contains("not an address"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_password_is_another_pool_key() {
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port: 587,
            tls_name: "localhost".into(),
            implicit_tls: false,
        };
        assert!(Key::new(&endpoint, &login("one")) == Key::new(&endpoint, &login("one")));
        assert!(Key::new(&endpoint, &login("one")) != Key::new(&endpoint, &login("two")));
    }
}
