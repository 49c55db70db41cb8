//! Bulk inbox generator and the mailbox datasource KumoMTA (and later
//! Dovecot) authenticate against.

pub mod datasource;
pub mod naming;
pub mod service;
pub mod sync;
pub mod unsubscribe;

/// Where mail clients and sequencers reach a mailbox: submission with
/// STARTTLS (RFC 6409) and IMAP over TLS (RFC 8314).
pub const SMTP_PORT: u16 = 587;
pub const IMAP_PORT: u16 = 993;

/// The mail host of `domain` under a `mail.{domain}`-style pattern.
pub fn mail_host(pattern: &str, domain: &str) -> String {
    pattern.replace("{domain}", domain)
}
