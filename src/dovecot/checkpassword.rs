//! `inboxgrove checkpassword`: Dovecot 2.3's checkpassword passdb, answered
//! by the running appliance.
//!
//! Dovecot forks this program for every IMAP login (`db-checkpassword.c`):
//! it writes `user \0 password \0 timestamp \0` (at most 512 bytes) to fd 3,
//! passes SERVICE, TCPREMOTEIP, … in the environment, and reads extra fields
//! (tab-separated `key=value`, no LF) from fd 4. Exit 0 with at least one
//! field is a success, 1 a refused login, 111 a temporary failure (the
//! client is told to retry). With `AUTHORIZED=1` (a userdb-style lookup,
//! e.g. `doveadm`), 2 means the user exists and 3 that it does not.
//!
//! The usual checkpassword program execs the reply program given as its
//! last argument to write fd 4; Dovecot only reads fd 4 and the exit status,
//! so the fields are written here directly, which saves an exec per login.
//!
//! The helper is started per login, so it stays cheap: no database, no
//! async runtime, no TLS stack. It asks the control endpoint on loopback
//! with one blocking HTTP/1.0 request over a plain `TcpStream` (HTTP/1.0, so
//! the answer is close-delimited and needs no chunked decoding); reqwest
//! would cost a runtime and a TLS configuration per login for a request
//! that never leaves the machine.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::DovecotError;

/// Dovecot's own bound on what it writes to fd 3.
pub const MAX_INPUT: u64 = 512;
/// The slow path of a password check is one argon2id (~20 ms); a loaded
/// machine may take much longer, but not this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Exit codes of the checkpassword protocol as Dovecot 2.3 reads them.
pub const EXIT_OK: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_LOOKUP_FOUND: u8 = 2;
pub const EXIT_LOOKUP_UNKNOWN: u8 = 3;
pub const EXIT_TEMPORARY: u8 = 111;

/// What Dovecot wrote to fd 3.
pub struct Input {
    pub user: String,
    pub password: SecretString,
}

/// `user \0 password \0 timestamp \0`; the timestamp (APOP only) is ignored.
pub fn parse_input(bytes: &[u8]) -> Result<Input, DovecotError> {
    let mut parts = bytes.split(|b| *b == 0);
    let (Some(user), Some(password)) = (parts.next(), parts.next()) else {
        return Err(DovecotError::Protocol(
            "fd 3 did not hold user\\0password\\0".into(),
        ));
    };
    let text = |b: &[u8], what: &str| {
        String::from_utf8(b.to_vec())
            .map_err(|_| DovecotError::Protocol(format!("the {what} on fd 3 is not UTF-8")))
    };
    Ok(Input {
        user: text(user, "user")?,
        password: SecretString::from(text(password, "password")?),
    })
}

/// Where the control endpoint is and the secret it wants.
pub struct Control {
    pub addr: SocketAddr,
    pub secret: SecretString,
}

impl Control {
    /// `url` is `http://host:port` of the control listener; the secret file
    /// holds the hex token (a trailing newline is not part of it).
    pub fn new(url: &str, secret_file: &Path) -> Result<Self, DovecotError> {
        let addr = control_addr(url)?;
        let text = std::fs::read_to_string(secret_file).map_err(|source| DovecotError::Io {
            path: secret_file.to_owned(),
            source,
        })?;
        let secret = text.trim().to_owned();
        if secret.is_empty() {
            return Err(DovecotError::Protocol(format!(
                "{} is empty",
                secret_file.display()
            )));
        }
        Ok(Self {
            addr,
            secret: SecretString::from(secret),
        })
    }

    /// One request; the status and the JSON body (Null if there is none).
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), DovecotError> {
        let unavailable = |e: std::io::Error| DovecotError::Unavailable(e.to_string());
        let mut stream = TcpStream::connect_timeout(&self.addr, TIMEOUT).map_err(unavailable)?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(unavailable)?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(unavailable)?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.secret.expose_secret(),
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(unavailable)?;
        let mut answer = Vec::new();
        stream
            .take(1024 * 1024)
            .read_to_end(&mut answer)
            .map_err(unavailable)?;
        parse_response(&answer)
    }
}

fn control_addr(url: &str) -> Result<SocketAddr, DovecotError> {
    let bad = || {
        DovecotError::Protocol(format!(
            "--control-url {url:?} must be http://IP:PORT of the control listener"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    rest.trim_end_matches('/').parse().map_err(|_| bad())
}

fn parse_response(answer: &[u8]) -> Result<(u16, Value), DovecotError> {
    let bad = |what: &str| DovecotError::Unavailable(format!("control endpoint: {what}"));
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let value = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).map_err(|_| bad("the body is not JSON"))?
    };
    Ok((status, value))
}

/// What to tell Dovecot.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log in as this canonical address (Dovecot takes it as the user name,
    /// so `%d/%n` are the domain and local part the maildir is under).
    Ok(String),
    Refused,
}

/// Checks a password (`service` "imap") through `POST /kumo/v1/auth`.
pub fn authenticate(
    control: &Control,
    input: &Input,
    source_ip: Option<IpAddr>,
) -> Result<Verdict, DovecotError> {
    let body = json!({
        "username": input.user,
        "password": input.password.expose_secret(),
        "source_ip": source_ip,
        "service": "imap",
    });
    let (status, answer) = control.call("POST", "/kumo/v1/auth", Some(&body))?;
    match status {
        200 => canonical(&answer).map(Verdict::Ok),
        401 | 422 => Ok(Verdict::Refused),
        other => Err(DovecotError::Unavailable(format!(
            "control endpoint answered {other}"
        ))),
    }
}

/// Whether `user` is an active mailbox, for `AUTHORIZED=1` lookups (no
/// password): `GET /kumo/v1/mailboxes/{address}`.
pub fn lookup(control: &Control, user: &str) -> Result<Verdict, DovecotError> {
    let address = user.trim().to_ascii_lowercase();
    // Only address characters go into the path; anything else is unknown.
    if address.is_empty()
        || !address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(c))
    {
        return Ok(Verdict::Refused);
    }
    let (status, answer) = control.call("GET", &format!("/kumo/v1/mailboxes/{address}"), None)?;
    if status != 200 {
        return Err(DovecotError::Unavailable(format!(
            "control endpoint answered {status}"
        )));
    }
    Ok(if answer["exists"] == true && answer["active"] == true {
        Verdict::Ok(address)
    } else {
        Verdict::Refused
    })
}

fn canonical(answer: &Value) -> Result<String, DovecotError> {
    let email = answer["email"].as_str().ok_or_else(|| {
        DovecotError::Unavailable("control endpoint: no email in the answer".into())
    })?;
    // Fields are tab-separated and may not hold LF (Dovecot refuses the
    // whole reply); a validated address has neither.
    if email.contains(['\t', '\n', '\r']) {
        return Err(DovecotError::Unavailable(
            "control endpoint: an email with control characters".into(),
        ));
    }
    Ok(email.to_owned())
}

/// The fd 4 reply for a successful login: `user=<canonical address>`.
pub fn reply_fields(email: &str) -> String {
    format!("user={email}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd3_input_is_user_password_timestamp() {
        let input = parse_input(b"Ada@Example.test\0pass word\0\0").unwrap();
        assert_eq!(input.user, "Ada@Example.test");
        assert_eq!(input.password.expose_secret(), "pass word");
        assert!(parse_input(b"only-a-user").is_err());
        assert!(parse_input(b"\xff\0pw\0\0").is_err());
    }

    #[test]
    fn the_control_url_is_a_loopback_socket_address() {
        assert_eq!(
            control_addr("http://127.0.0.1:8081/").unwrap(),
            "127.0.0.1:8081".parse().unwrap()
        );
        assert!(control_addr("https://127.0.0.1:8081").is_err());
        assert!(control_addr("http://localhost:8081").is_err());
    }

    #[test]
    fn responses_give_status_and_json() {
        let (status, body) =
            parse_response(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"ok\":true,\"email\":\"a@b.test\"}")
                .unwrap();
        assert_eq!(status, 200);
        assert_eq!(canonical(&body).unwrap(), "a@b.test");
        assert_eq!(
            parse_response(b"HTTP/1.1 401 Unauthorized\r\n\r\n")
                .unwrap()
                .0,
            401
        );
        assert!(parse_response(b"garbage").is_err());
        assert!(canonical(&json!({ "email": "a@b\ttest" })).is_err());
    }
}
