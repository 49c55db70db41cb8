//! The engine's transport against real servers: `Submitter` through the
//! SMTP sink (`smtp`), an IMAP `Session` against a provider Dovecot whose
//! Sieve files some mail into Junk and against the appliance's own
//! Dovecot (`imap`). What both use is here.

mod imap;
mod smtp;

use std::path::PathBuf;

use inboxgrove::warmup::{Endpoint, Login};
use tempfile::TempDir;

pub const USER: &str = "sender@warm.test";
pub const PASSWORD: &str = "sender secret 1";

/// A self-signed certificate for `localhost` and its key, as PEM files.
pub struct Pair {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    Pair {
        _dir: dir,
        cert,
        key,
    }
}

pub fn login(user: &str, password: &str) -> Login {
    Login {
        username: user.into(),
        password: password.to_owned().into(),
    }
}

pub fn endpoint(addr: std::net::SocketAddr, implicit_tls: bool) -> Endpoint {
    Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls_name: "localhost".into(),
        implicit_tls,
    }
}

pub fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Ann <{USER}>\r\nTo: peer@provider.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHi,\r\n.a line that starts with a dot\r\nthanks\r\n"
    )
    .into_bytes()
}
