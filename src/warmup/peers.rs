//! External peer accounts: a user adds a mailbox elsewhere (a Gmail or
//! Outlook address with an app password, Zoho, Yahoo, another server) with
//! its IMAP and SMTP servers; both logins are tried before it is saved,
//! its password is sealed, and the engine pairs it with the owner's
//! mailboxes (or every user's, when an admin shares it).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::Provider;
use super::access::{peer_contact, peer_slot};
use super::engine::{Engine, WarmupError};
use super::imap;
use crate::store::warmup::peers::{self as repo, Peer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPeer {
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub imap_host: String,
    #[serde(default = "imaps")]
    pub imap_port: u16,
    pub smtp_host: String,
    #[serde(default = "submission")]
    pub smtp_port: u16,
    /// TLS from the first byte; by default on 993 (IMAPS) and 465 (SMTPS,
    /// RFC 8314), STARTTLS on any other port.
    pub imap_implicit_tls: Option<bool>,
    pub smtp_implicit_tls: Option<bool>,
    /// Defaults to the address.
    pub username: Option<String>,
    pub password: SecretString,
    /// Lend it to every user's mailboxes (admins only).
    #[serde(default)]
    pub shared: bool,
    /// It receives and engages but never sends.
    #[serde(default)]
    pub receive_only: bool,
}

/// How long adding or testing a peer waits for its two servers.
const CHECK_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

fn imaps() -> u16 {
    993
}

fn submission() -> u16 {
    587
}

fn invalid(field: &'static str, message: impl Into<String>) -> WarmupError {
    WarmupError::Invalid {
        field,
        message: message.into(),
    }
}

/// A host name or address as typed in a mail client: no scheme, no path.
fn host(field: &'static str, raw: &str) -> Result<String, WarmupError> {
    let h = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !ok {
        return Err(invalid(
            field,
            format!("{raw:?} is not a host name such as imap.gmail.com"),
        ));
    }
    Ok(h)
}

/// The provider of a peer: its address's domain and its servers' names
/// (a Workspace or Microsoft 365 domain shows through imap.gmail.com or
/// outlook.office365.com).
pub fn provider_of(email: &str, imap_host: &str, smtp_host: &str) -> Provider {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    [domain, imap_host, smtp_host]
        .into_iter()
        .map(Provider::of_host)
        .find(|p| *p != Provider::Other)
        .unwrap_or(Provider::Other)
}

impl NewPeer {
    fn parse(
        self,
        owner: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Peer, SecretString), WarmupError> {
        let email = self.email.trim().to_ascii_lowercase();
        let valid = email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !email.contains(char::is_whitespace)
        });
        if !valid || email.len() > 254 {
            return Err(invalid("email", "must be an address such as ann@gmail.com"));
        }
        let imap_host = host("imap_host", &self.imap_host)?;
        let smtp_host = host("smtp_host", &self.smtp_host)?;
        for (field, port) in [("imap_port", self.imap_port), ("smtp_port", self.smtp_port)] {
            if port == 0 {
                return Err(invalid(field, "must be a port between 1 and 65535"));
            }
        }
        if self.password.expose_secret().is_empty() {
            return Err(invalid(
                "password",
                "is required (for Gmail and Outlook, an app password)",
            ));
        }
        let display_name = self.display_name.trim().to_owned();
        if display_name.len() > 100 || display_name.chars().any(char::is_control) {
            return Err(invalid(
                "display_name",
                "must be at most 100 characters on one line",
            ));
        }
        let username = self
            .username
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| email.clone());
        Ok((
            Peer {
                id: Uuid::new_v4(),
                user_id: owner,
                kind: "imap".into(),
                provider: provider_of(&email, &imap_host, &smtp_host),
                display_name,
                email,
                imap_host,
                imap_port: self.imap_port,
                smtp_host,
                smtp_port: self.smtp_port,
                imap_implicit_tls: self.imap_implicit_tls.unwrap_or(self.imap_port == 993),
                smtp_implicit_tls: self.smtp_implicit_tls.unwrap_or(self.smtp_port == 465),
                username,
                shared: self.shared,
                receive_only: self.receive_only,
                status: "active".into(),
                last_error: None,
                checked_at: Some(now),
                created_at: now,
            },
            self.password,
        ))
    }
}

impl Engine {
    /// The peers `scope` sees: its own and the shared ones.
    pub async fn peers(&self, scope: Option<Uuid>) -> Result<Vec<Peer>, WarmupError> {
        Ok(self.store.read(move |c| repo::list(c, scope)).await?)
    }

    /// Adds a peer for `owner` after a real login to its IMAP and SMTP
    /// servers; `admin` may share it.
    pub async fn add_peer(
        &self,
        owner: Uuid,
        admin: bool,
        req: NewPeer,
    ) -> Result<Peer, WarmupError> {
        if req.shared && !admin {
            return Err(invalid(
                "shared",
                "only an admin can share a peer with every user",
            ));
        }
        let (peer, password) = req.parse(owner, self.now())?;
        self.check_logins(&peer, password.clone()).await?;
        let sealed = self.vault.seal(
            peer_slot(&peer.id.to_string()),
            password.expose_secret().as_bytes(),
        );
        let row = peer.clone();
        self.store
            .write(move |tx| repo::insert(tx, &row, &sealed))
            .await?;
        Ok(peer)
    }

    /// Tries both logins of a stored peer again; a peer that passes is
    /// active again, one that fails is `failing` with the reason.
    pub async fn test_peer(&self, id: Uuid, scope: Option<Uuid>) -> Result<Peer, WarmupError> {
        // Whose it is first: another member learns nothing of it.
        match self.store.read(move |c| repo::get(c, id)).await? {
            Some((peer, _)) if scope.is_none_or(|s| s == peer.user_id) => {}
            _ => return Err(WarmupError::NotFound("warmup peer")),
        }
        let contact = self
            .contact(super::MemberId::Peer(id))
            .await
            .map_err(|e| match e {
                super::access::AccessError::Store(s) => WarmupError::Store(s),
                other => WarmupError::Sealed(other.to_string()),
            })?;
        let Some((peer, _)) = self.store.read(move |c| repo::get(c, id)).await? else {
            return Err(WarmupError::NotFound("warmup peer"));
        };
        let outcome = self.check_logins(&peer, contact.login.password).await;
        let now = self.now();
        let error = outcome.as_ref().err().map(ToString::to_string);
        let status = if error.is_some() { "failing" } else { "active" };
        self.store
            .write(move |tx| repo::set_status(tx, id, status, error.as_deref(), now))
            .await?;
        outcome?;
        self.store
            .read(move |c| repo::get(c, id))
            .await?
            .map(|(p, _)| p)
            .ok_or(WarmupError::NotFound("warmup peer"))
    }

    pub async fn delete_peer(&self, id: Uuid, scope: Option<Uuid>) -> Result<(), WarmupError> {
        Ok(self
            .store
            .write(move |tx| repo::delete(tx, id, scope))
            .await?)
    }

    /// Both logins, within [`CHECK_WITHIN`] so the request that asked
    /// gets its answer before its own deadline.
    async fn check_logins(&self, peer: &Peer, password: SecretString) -> Result<(), WarmupError> {
        tokio::time::timeout(CHECK_WITHIN, self.try_logins(peer, password))
            .await
            .unwrap_or_else(|_| {
                Err(WarmupError::Unreachable(format!(
                    "{} or {} did not answer within {} s",
                    peer.imap_host,
                    peer.smtp_host,
                    CHECK_WITHIN.as_secs()
                )))
            })
    }

    async fn try_logins(&self, peer: &Peer, password: SecretString) -> Result<(), WarmupError> {
        let contact = peer_contact(peer, password);
        let imap = imap::connect(&self.trust, &contact.imap, &contact.login)
            .await
            .map_err(|e| {
                WarmupError::Unreachable(format!(
                    "IMAP login to {}:{} failed: {e}",
                    peer.imap_host, peer.imap_port
                ))
            })?;
        imap.logout().await;
        if !peer.receive_only {
            self.submitter
                .check(&contact.smtp, &contact.login)
                .await
                .map_err(|e| {
                    WarmupError::Unreachable(format!(
                        "SMTP login to {}:{} failed: {e}",
                        peer.smtp_host, peer.smtp_port
                    ))
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_show_through_the_address_or_the_servers() {
        assert_eq!(provider_of("a@gmail.com", "x", "y"), Provider::Gmail);
        assert_eq!(
            provider_of("a@acme.com", "imap.gmail.com", "smtp.gmail.com"),
            Provider::Gmail
        );
        assert_eq!(
            provider_of("a@acme.com", "outlook.office365.com", "smtp.office365.com"),
            Provider::Outlook
        );
        assert_eq!(
            provider_of("a@acme.com", "mail.acme.com", "mail.acme.com"),
            Provider::Other
        );
    }

    #[test]
    fn bad_input_names_its_field() {
        let now = chrono::DateTime::UNIX_EPOCH;
        let base = || NewPeer {
            email: "ann@gmail.com".into(),
            display_name: "Ann".into(),
            imap_host: "imap.gmail.com".into(),
            imap_port: 993,
            smtp_host: "smtp.gmail.com".into(),
            smtp_port: 587,
            imap_implicit_tls: None,
            smtp_implicit_tls: None,
            username: None,
            password: SecretString::from("app-password"),
            shared: false,
            receive_only: false,
        };
        let (p, _) = base().parse(Uuid::nil(), now).unwrap();
        assert_eq!(
            (p.username.as_str(), p.provider),
            ("ann@gmail.com", Provider::Gmail)
        );
        let field = |f: fn(&mut NewPeer)| {
            let mut r = base();
            f(&mut r);
            match r.parse(Uuid::nil(), now) {
                Err(WarmupError::Invalid { field, .. }) => field,
                other => panic!("{:?}", other.map(|p| p.0.email)),
            }
        };
        assert_eq!(field(|r| r.email = "nobody".into()), "email");
        assert_eq!(
            field(|r| r.imap_host = "https://imap.gmail.com/".into()),
            "imap_host"
        );
        assert_eq!(field(|r| r.smtp_port = 0), "smtp_port");
        assert_eq!(field(|r| r.password = SecretString::from("")), "password");
        assert_eq!(field(|r| r.display_name = "a\nb".into()), "display_name");
    }
}
