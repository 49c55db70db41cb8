//! One-click unsubscribe (RFC 8058, CAN-SPAM). Each message carries a link
//! whose token is sealed by the vault: it names the sending mailbox and the
//! recipient, so it cannot be guessed, forged or pointed at another
//! address, and it reveals neither to whoever reads the link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use crate::store::{Store, StoreError, mailboxes};
use crate::vault::{Slot, Vault};

const SLOT: Slot<'static> = Slot {
    table: "unsubscribe",
    column: "token",
    row_id: "v1",
};

/// The `List-Unsubscribe` targets for one message (RFC 2369 §3.2, RFC 8058).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Links {
    /// For `List-Unsubscribe: <https…>` with `List-Unsubscribe-Post:
    /// List-Unsubscribe=One-Click`.
    pub url: String,
    /// A reply to the sending mailbox, for clients without one-click.
    pub mailto: String,
}

pub fn token(vault: &Vault, mailbox: Uuid, recipient: &str) -> String {
    let mut payload = mailbox.as_bytes().to_vec();
    payload.extend(recipient.trim().to_ascii_lowercase().as_bytes());
    URL_SAFE_NO_PAD.encode(vault.seal(SLOT, &payload))
}

pub fn links(
    vault: &Vault,
    public_url: &str,
    mailbox: Uuid,
    sender: &str,
    recipient: &str,
) -> Links {
    Links {
        url: format!("{public_url}/u/{}", token(vault, mailbox, recipient)),
        mailto: format!("mailto:{sender}?subject=unsubscribe"),
    }
}

/// The mailbox and recipient a token names, if it is one of ours.
pub fn open(vault: &Vault, token: &str) -> Option<(Uuid, String)> {
    let sealed = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let payload = vault.open(SLOT, &sealed).ok()?;
    let bytes = payload.expose_secret();
    let (id, recipient) = bytes.split_at_checked(16)?;
    Some((
        Uuid::from_slice(id).ok()?,
        String::from_utf8(recipient.to_vec()).ok()?,
    ))
}

/// Suppresses the token's recipient for the mailbox's owner. Returns false
/// for a token that is not ours or whose mailbox is gone.
pub async fn unsubscribe(
    store: &Store,
    vault: &Vault,
    token: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some((mailbox, recipient)) = open(vault, token) else {
        return Ok(false);
    };
    store
        .write(move |tx| {
            let Some(owner) = mailboxes::owner(tx, mailbox)? else {
                return Ok(false);
            };
            mailboxes::suppress(tx, owner, &recipient, "unsubscribed", now)?;
            Ok(true)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_mailbox_and_recipient_and_cannot_be_forged() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
        let id = Uuid::new_v4();
        let t = token(&vault, id, " Bob@Example.NET ");
        assert!(!t.contains("example") && t.len() > 60, "{t}");
        assert_eq!(open(&vault, &t), Some((id, "bob@example.net".to_owned())));
        assert_ne!(
            t,
            token(&vault, id, "bob@example.net"),
            "fresh nonce each time"
        );
        let mut forged = t.clone().into_bytes();
        forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(open(&vault, &String::from_utf8(forged).unwrap()), None);
        assert_eq!(open(&vault, "not-a-token"), None);
        let other = tempfile::tempdir().unwrap();
        let (other_vault, _) = Vault::load_or_create(other.path()).unwrap();
        assert_eq!(open(&other_vault, &t), None);
    }
}
