//! The send decision KumoMTA asks for before it queues a message from an
//! authenticated mailbox: the sender is the mailbox, the mailbox may send,
//! no recipient is suppressed, and today's limit is not reached. An allowed
//! message is counted in the same statement that checks the limit.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::inboxes::datasource::Datasource;
use crate::inboxes::unsubscribe::{self, Links};
use crate::store::{Store, StoreError, mailboxes};
use crate::vault::Vault;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendCheck {
    /// The mailbox the SMTP session authenticated as.
    pub authn_id: String,
    pub envelope_from: String,
    pub header_from: String,
    pub recipients: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// The SMTP reply code KumoMTA should give: 250, 550 (never with this
    /// sender or recipient), 452 (limit reached: try again tomorrow).
    pub code: u16,
    pub reason: String,
    pub remaining_today: u32,
    /// For an allowed message: the `List-Unsubscribe` targets to add when
    /// the message has none (for its first recipient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_unsubscribe: Option<Links>,
}

fn refuse(code: u16, reason: impl Into<String>) -> Decision {
    Decision {
        allow: false,
        code,
        reason: reason.into(),
        remaining_today: 0,
        list_unsubscribe: None,
    }
}

/// The address inside a From header value: `Name <a@b>` or `a@b`.
pub fn header_address(value: &str) -> &str {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(l), Some(r)) if l < r => value[l + 1..r].trim(),
        _ => value.trim(),
    }
}

/// Where unsubscribe links point and how their tokens are sealed.
pub struct LinkMaker<'a> {
    pub vault: &'a Vault,
    pub public_url: &'a str,
}

pub async fn decide(
    store: &Store,
    datasource: &Datasource,
    links: LinkMaker<'_>,
    req: SendCheck,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Decision, StoreError> {
    let authn = req.authn_id.trim().to_ascii_lowercase();
    let Some((local, domain)) = authn.split_once('@') else {
        return Ok(refuse(
            550,
            "5.7.1 the session is not authenticated as a mailbox",
        ));
    };
    let Ok(Some(entry)) = datasource.get(domain, local) else {
        return Ok(refuse(550, "5.7.1 not an InboxGrove mailbox"));
    };
    if !req.envelope_from.trim().eq_ignore_ascii_case(&authn) {
        return Ok(refuse(
            550,
            format!("5.7.1 envelope sender must be {authn}"),
        ));
    }
    if !header_address(&req.header_from).eq_ignore_ascii_case(&authn) {
        return Ok(refuse(550, format!("5.7.1 From header must be {authn}")));
    }
    if !entry.is_active() {
        return Ok(refuse(550, format!("5.7.1 {authn} is {}", entry.status)));
    }
    if req.recipients.is_empty() {
        return Ok(refuse(550, "5.5.1 no recipients"));
    }
    let unsubscribe = unsubscribe::links(
        links.vault,
        links.public_url,
        entry.mailbox_id,
        &authn,
        &req.recipients[0],
    );
    let (owner, id, recipients) = (entry.user_id, entry.mailbox_id, req.recipients);
    store
        .write(move |tx| {
            for r in &recipients {
                if mailboxes::is_suppressed(tx, owner, r.trim())? {
                    return Ok(refuse(
                        550,
                        format!("5.7.1 {r} unsubscribed or is suppressed"),
                    ));
                }
            }
            Ok(match mailboxes::count_send(tx, id, today, now)? {
                Some(remaining) => Decision {
                    allow: true,
                    code: 250,
                    reason: "2.0.0 ok".into(),
                    remaining_today: remaining,
                    list_unsubscribe: Some(unsubscribe),
                },
                None => refuse(452, "4.7.1 daily sending limit reached; try again tomorrow"),
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_a_from_header() {
        assert_eq!(
            header_address("Ada Lovelace <ada@acme.test>"),
            "ada@acme.test"
        );
        assert_eq!(header_address(" ada@acme.test "), "ada@acme.test");
        assert_eq!(
            header_address("\"Lovelace, Ada\" <ada@acme.test>"),
            "ada@acme.test"
        );
    }
}
