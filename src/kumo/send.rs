//! The send decision KumoMTA asks for before it queues a message from an
//! authenticated mailbox: the sender is the mailbox, the mailbox may send,
//! no recipient is suppressed, and today's limit is not reached. An allowed
//! message is counted in the same statement that checks the limit.

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::identity;
use crate::domains::model::DomainStatus;
use crate::inboxes::datasource::{Datasource, DatasourceError};
use crate::inboxes::unsubscribe::{self, Links};
use crate::store::{Store, StoreError, domains, mailboxes, tiers as tier_counts};
use crate::tiers;
use crate::vault::Vault;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendCheck {
    /// The mailbox the SMTP session authenticated as.
    pub authn_id: String,
    pub envelope_from: String,
    /// The raw value of each From header, in message order.
    #[serde(deserialize_with = "header_values")]
    pub from_headers: Vec<String>,
    /// The raw value of each Sender header.
    #[serde(deserialize_with = "header_values")]
    pub sender_headers: Vec<String>,
    pub recipients: Vec<String>,
}

/// A list of strings, where `{}` also means the empty list: KumoMTA's
/// `kumo.serde.json_encode` cannot tell an empty Lua table from an empty
/// object and writes `{}`.
fn header_values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Values;
    impl<'de> Visitor<'de> for Values {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of header values (or {} for none)")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<String>()? {
                out.push(v);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            match map.next_key::<de::IgnoredAny>()? {
                None => Ok(Vec::new()),
                Some(_) => Err(de::Error::custom(
                    "expected a list of header values; only an empty object {} may stand for none",
                )),
            }
        }
    }
    d.deserialize_any(Values)
}

/// A fault on the way to a decision: the answer is "try again later".
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Datasource(#[from] DatasourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// The SMTP reply code KumoMTA should give: 250, 550 (never with this
    /// sender or recipient), 451 (the domain is not verified yet) or 452
    /// (the mailbox's daily limit or its owner's plan's daily volume is
    /// reached: try again tomorrow).
    pub code: u16,
    pub reason: String,
    /// What the mailbox may still send today: its own limit, or fewer
    /// when its owner's plan has less left.
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

/// A domain sends only once its records are verified (`active`); before
/// that the answer is temporary, after a failed verification permanent.
fn domain_refusal(name: &str, status: Option<DomainStatus>) -> Option<Decision> {
    match status {
        Some(DomainStatus::Active) => None,
        // Removed while an entry was still cached: not a mailbox any more.
        None => Some(refuse(550, "5.7.1 not an InboxGrove mailbox")),
        Some(DomainStatus::Failed) => Some(refuse(
            550,
            format!(
                "5.7.1 {name} failed DNS verification; fix its records and verify it again in InboxGrove"
            ),
        )),
        Some(state) => Some(refuse(
            451,
            format!(
                "4.7.1 {name} is {state} (its DNS records are not verified yet), try again later"
            ),
        )),
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
) -> Result<Decision, SendError> {
    let authn = req.authn_id.trim().to_ascii_lowercase();
    let Some((local, domain)) = authn.split_once('@') else {
        return Ok(refuse(
            550,
            "5.7.1 the session is not authenticated as a mailbox",
        ));
    };
    let Some(entry) = datasource.get(domain, local)? else {
        return Ok(refuse(550, "5.7.1 not an InboxGrove mailbox"));
    };
    if !req.envelope_from.trim().eq_ignore_ascii_case(&authn) {
        return Ok(refuse(
            550,
            format!("5.7.1 envelope sender must be {authn}"),
        ));
    }
    if let Err(e) = identity::check(&authn, &req.from_headers, &req.sender_headers) {
        return Ok(refuse(550, format!("5.7.1 {e}")));
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
    let (domain_id, domain) = (entry.domain_id, entry.domain);
    Ok(store
        .write(move |tx| {
            // Read here, not cached in the entry: a status change (or a
            // removal) takes effect with the next message.
            let status = domains::get(tx, domain_id, None)?
                .filter(|d| d.domain_name == domain)
                .map(|d| d.status);
            if let Some(refusal) = domain_refusal(&domain, status) {
                return Ok(refusal);
            }
            for r in &recipients {
                if mailboxes::is_suppressed(tx, owner, r.trim())? {
                    return Ok(refuse(
                        550,
                        format!("5.7.1 {r} unsubscribed or is suppressed"),
                    ));
                }
            }
            // The owner's plan caps all their mailboxes together; read and
            // counted in this one transaction with the mailbox's own count,
            // so two messages at the limit cannot both pass.
            let user_left = match tiers::volume_left(tx, owner, today)? {
                Some((tier, volume, 0)) => return Ok(refuse(452, format!(
                    "4.7.1 the daily sending volume of this account's plan ({tier}: {volume} messages a day) is reached; try again tomorrow"
                ))),
                Some((_, _, left)) => left,
                None => u32::MAX,
            };
            Ok::<_, StoreError>(match mailboxes::count_send(tx, id, today, now)? {
                Some(remaining) => {
                    tier_counts::count_send(tx, owner, today)?;
                    Decision {
                        allow: true,
                        code: 250,
                        reason: "2.0.0 ok".into(),
                        remaining_today: remaining.min(user_left - 1),
                        list_unsubscribe: Some(unsubscribe),
                    }
                }
                None => refuse(452, "4.7.1 daily sending limit reached; try again tomorrow"),
            })
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<SendCheck, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn header_lists_accept_an_empty_object_for_none() {
        let req = parse(
            r#"{"authn_id":"a@b.test","envelope_from":"a@b.test","from_headers":["a@b.test"],
                "sender_headers":{},"recipients":["x@y.test"]}"#,
        )
        .unwrap();
        assert_eq!(req.from_headers, ["a@b.test"]);
        assert!(req.sender_headers.is_empty());
        let none = parse(
            r#"{"authn_id":"a","envelope_from":"a","from_headers":[],"sender_headers":[],"recipients":[]}"#,
        )
        .unwrap();
        assert!(none.from_headers.is_empty());
    }

    #[test]
    fn header_lists_refuse_other_shapes_and_unknown_fields() {
        for bad in [
            r#"{"authn_id":"a","envelope_from":"a","from_headers":{"1":"a@b.test"},"sender_headers":[],"recipients":[]}"#,
            r#"{"authn_id":"a","envelope_from":"a","from_headers":"a@b.test","sender_headers":[],"recipients":[]}"#,
            r#"{"authn_id":"a","envelope_from":"a","from_headers":[1],"sender_headers":[],"recipients":[]}"#,
            r#"{"authn_id":"a","envelope_from":"a","header_from":"a","from_headers":[],"sender_headers":[],"recipients":[]}"#,
            r#"{"authn_id":"a","envelope_from":"a","sender_headers":[],"recipients":[]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_an_active_domain_sends() {
        assert_eq!(domain_refusal("d.test", Some(DomainStatus::Active)), None);
        for waiting in [
            DomainStatus::Pending,
            DomainStatus::Publishing,
            DomainStatus::Verifying,
            DomainStatus::AwaitingDns,
        ] {
            let r = domain_refusal("d.test", Some(waiting)).unwrap();
            assert_eq!(r.code, 451);
            assert!(r.reason.starts_with("4.7.1 d.test is "), "{}", r.reason);
            assert!(r.reason.contains(waiting.as_str()), "{}", r.reason);
        }
        let failed = domain_refusal("d.test", Some(DomainStatus::Failed)).unwrap();
        assert_eq!((failed.code, &failed.reason[..6]), (550, "5.7.1 "));
        assert_eq!(domain_refusal("d.test", None).unwrap().code, 550);
    }
}
