//! A small IMAP4rev1 client for the tests and the IMAP benchmark: tagged
//! commands, untagged lines with their literals, APPEND with a
//! synchronising literal, STARTTLS. TLS trusts exactly one certificate (the
//! one InboxGrove generated), so nothing else can stand in for Dovecot.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Accepts the server only if it presents exactly `pinned`.
#[derive(Debug)]
struct Pinned {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS connector that trusts only the PEM certificate at `cert`.
pub fn pinned_connector(cert: &Path) -> TlsConnector {
    let pinned = CertificateDer::from_pem_file(cert).unwrap();
    let provider = Arc::new(ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pinned, provider }))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

pub struct Imap {
    stream: BufReader<Box<dyn Stream>>,
    tag: u32,
    /// The greeting's first line.
    pub greeting: String,
}

/// One command's answer: the untagged lines (literals inlined) and the
/// tagged status line without its tag.
#[derive(Debug)]
pub struct Answer {
    pub untagged: Vec<String>,
    pub status: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.starts_with("OK")
    }

    pub fn text(&self) -> String {
        self.untagged.join("\n")
    }
}

/// IMAP quoted string (RFC 3501 §4.3).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Imap {
    async fn start(stream: Box<dyn Stream>) -> Self {
        let mut imap = Self {
            stream: BufReader::new(stream),
            tag: 0,
            greeting: String::new(),
        };
        imap.greeting = imap.line().await;
        imap
    }

    /// IMAP over TLS (port 993 in production).
    pub async fn tls(addr: SocketAddr, connector: &TlsConnector) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        Self::start(Box::new(tls)).await
    }

    /// Plain IMAP (port 143), from 127.0.0.2: Dovecot counts a connection
    /// whose two ends have the same address as secure (it is the same
    /// machine) and would allow a plaintext login on it.
    pub async fn plain(addr: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        Self::start(Box::new(tcp)).await
    }

    /// STARTTLS on a plain connection (RFC 3501 §6.2.1).
    pub async fn starttls(self, connector: &TlsConnector) -> Self {
        let mut imap = self;
        let answer = imap.command("STARTTLS").await;
        assert!(answer.ok(), "{answer:?}");
        let tag = imap.tag;
        let inner = imap.stream.into_inner();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, inner).await.unwrap();
        Self {
            stream: BufReader::new(Box::new(tls)),
            tag,
            greeting: imap.greeting,
        }
    }

    /// A line without CRLF, with any literals it announces appended.
    async fn line(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut raw = Vec::new();
            let n = self.stream.read_until(b'\n', &mut raw).await.unwrap();
            assert!(n > 0, "the server closed the connection after {out:?}");
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            let literal = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            out.push_str(&line);
            let Some(len) = literal else {
                return out;
            };
            let mut bytes = vec![0; len];
            self.stream.read_exact(&mut bytes).await.unwrap();
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }

    async fn send(&mut self, text: &str) {
        let stream = self.stream.get_mut();
        stream.write_all(text.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
    }

    async fn finish(&mut self, tag: &str) -> Answer {
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if let Some(status) = line.strip_prefix(&format!("{tag} ")) {
                return Answer {
                    untagged,
                    status: status.to_owned(),
                };
            }
            untagged.push(line);
        }
    }

    pub async fn command(&mut self, command: &str) -> Answer {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.send(&format!("{tag} {command}\r\n")).await;
        self.finish(&tag).await
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Answer {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .await
    }

    /// APPEND with a synchronising literal (RFC 3501 §6.3.11).
    pub async fn append(&mut self, mailbox: &str, message: &[u8]) -> Answer {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.send(&format!(
            "{tag} APPEND {} {{{}}}\r\n",
            quote(mailbox),
            message.len()
        ))
        .await;
        let go = self.line().await;
        if !go.starts_with('+') {
            return Answer {
                untagged: Vec::new(),
                status: go,
            };
        }
        let stream = self.stream.get_mut();
        stream.write_all(message).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.flush().await.unwrap();
        self.finish(&tag).await
    }

    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }
}
