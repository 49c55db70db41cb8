//! How the engine reaches a pool member: its name and address for the
//! message, and the SMTP and IMAP servers and login it sends and reads
//! with. A generated mailbox is reached through the appliance's own
//! KumoMTA and Dovecot with its own password; a peer through its
//! provider's servers. OAuth accounts (issue 16) add a way to reach a
//! member here and nothing else changes.

use secrecy::SecretString;
use uuid::Uuid;

use super::content::Party;
use super::engine::Engine;
use super::{Endpoint, Login, MemberId};
use crate::store::{self, warmup::peers::Peer};
use crate::vault::Slot;

pub struct Contact {
    pub party: Party,
    pub owner: Uuid,
    pub smtp: Endpoint,
    pub imap: Endpoint,
    pub login: Login,
    /// Whether the engine sends from it (a receive-only peer only reads).
    pub can_send: bool,
    /// Through the appliance's own KumoMTA: its mail carries the marker.
    pub local: bool,
}

/// Why a member cannot be reached now; the message names the member, never
/// the password.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0} is no longer in the warmup pool")]
    Gone(String),
    #[error("the stored password of {0} cannot be opened: {1}")]
    Sealed(String, String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn secret(bytes: &[u8]) -> SecretString {
    SecretString::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Port 465 and 993 speak TLS from the first byte (RFC 8314).
pub fn peer_endpoint(host: &str, port: u16) -> Endpoint {
    Endpoint {
        host: host.to_owned(),
        port,
        tls_name: host.to_owned(),
        implicit_tls: matches!(port, 465 | 993),
    }
}

pub fn peer_contact(peer: &Peer, password: SecretString) -> Contact {
    Contact {
        party: Party {
            name: peer.display_name.clone(),
            email: peer.email.clone(),
        },
        owner: peer.user_id,
        smtp: peer_endpoint(&peer.smtp_host, peer.smtp_port),
        imap: peer_endpoint(&peer.imap_host, peer.imap_port),
        login: Login {
            username: peer.username.clone(),
            password,
        },
        can_send: !peer.receive_only && peer.status == "active",
        local: false,
    }
}

impl Engine {
    pub(super) async fn contact(&self, member: MemberId) -> Result<Contact, AccessError> {
        let vault = self.vault.clone();
        let local = self.local.clone();
        self.store
            .read(move |c| {
                Ok(match member {
                    MemberId::Mailbox(id) => {
                        let Some(m) = store::mailboxes::get(c, id, None)? else {
                            return Ok(Err(AccessError::Gone(id.to_string())));
                        };
                        let sealed: Option<Vec<u8>> = c.query_row(
                            "SELECT password_sealed FROM mailboxes WHERE id = ?1",
                            [id.to_string()],
                            |r| r.get(0),
                        )?;
                        let row = id.to_string();
                        let slot = Slot {
                            table: "mailboxes",
                            column: "password_sealed",
                            row_id: &row,
                        };
                        let password = match sealed.map(|s| vault.open(slot, &s)) {
                            Some(Ok(p)) => secret(secrecy::ExposeSecret::expose_secret(&p)),
                            Some(Err(e)) => {
                                return Ok(Err(AccessError::Sealed(m.email, e.to_string())));
                            }
                            None => {
                                return Ok(Err(AccessError::Sealed(
                                    m.email,
                                    "no password is stored".into(),
                                )));
                            }
                        };
                        Ok(Contact {
                            party: Party {
                                name: format!("{} {}", m.first_name, m.last_name)
                                    .trim()
                                    .to_owned(),
                                email: m.email.to_ascii_lowercase(),
                            },
                            owner: m.user_id,
                            smtp: local.submission.clone(),
                            imap: local.imap.clone(),
                            login: Login {
                                username: m.email.to_ascii_lowercase(),
                                password,
                            },
                            can_send: matches!(m.status.as_str(), "warming" | "active"),
                            local: true,
                        })
                    }
                    MemberId::Peer(id) => {
                        let Some((peer, sealed)) = store::warmup::peers::get(c, id)? else {
                            return Ok(Err(AccessError::Gone(id.to_string())));
                        };
                        let row = id.to_string();
                        match vault.open(peer_slot(&row), &sealed) {
                            Ok(p) => Ok(peer_contact(
                                &peer,
                                secret(secrecy::ExposeSecret::expose_secret(&p)),
                            )),
                            Err(e) => Err(AccessError::Sealed(peer.email, e.to_string())),
                        }
                    }
                })
            })
            .await?
    }
}

pub fn peer_slot(row: &str) -> Slot<'_> {
    Slot {
        table: "warmup_peers",
        column: "password_sealed",
        row_id: row,
    }
}
