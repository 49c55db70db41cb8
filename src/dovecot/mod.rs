//! IMAP for the generated mailboxes: Dovecot serves the maildirs KumoMTA
//! delivers into and asks this appliance who may log in.
//!
//! The mechanism is Dovecot 2.3's checkpassword passdb running
//! `inboxgrove checkpassword` ([`checkpassword`]), which asks the control
//! endpoint (`POST /kumo/v1/auth` with `service: imap`) on loopback. So a
//! mailbox created a second ago logs in, a paused or deleted one does not,
//! and a new password works at once, with no reload and no password file
//! rewritten; IMAP shares SMTP's fast path and its throttle. The other
//! choices fit worse: Dovecot's Lua passdb needs the `dovecot-auth-lua`
//! package plus an HTTP library for Lua that Debian does not pair with it;
//! a passwd-file or an exported argon2 hash list would have to be rewritten
//! on every change and would duplicate the pause/delete rules.
//!
//! [`render`] writes the Dovecot configuration, [`tls`] the self-signed
//! certificate used until a real one is configured, and [`quota`] reads the
//! Maildir++ usage both Dovecot and deliveries are held to.

pub mod checkpassword;
pub mod quota;
pub mod render;
pub mod tls;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DovecotError {
    /// Dovecot or the operator gave something this cannot use.
    #[error("{0}")]
    Invalid(String),
    /// The checkpassword protocol was not followed.
    #[error("checkpassword: {0}")]
    Protocol(String),
    /// The appliance did not answer: a temporary failure for Dovecot.
    #[error("the InboxGrove control endpoint is unavailable: {0}")]
    Unavailable(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
