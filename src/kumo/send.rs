//! The send decision KumoMTA asks for before it queues a message from an
//! authenticated mailbox: the sender is the mailbox, the mailbox may send,
//! no recipient is suppressed, and today's limit is not reached. An allowed
//! message is counted in the same statement that checks the limit.
//!
//! Warmup mail, told by the engine's marker (`warmup::marker`), is counted
//! apart (`warmup_sent_today`) and uses up neither the mailbox's daily
//! limit nor its owner's plan; every other check applies to it. Campaign
//! mail of a warming mailbox follows its warmup's slow ramp (issue 14,
//! point 3; Instantly's `enable_slow_ramp`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::identity;
use crate::domains::model::DomainStatus;
use crate::inboxes::datasource::{Datasource, DatasourceError, Entry};
use crate::inboxes::unsubscribe::{self, Links};
use crate::store::warmup::sends::{self, Enrolment};
use crate::store::{Store, StoreError, domains, mailboxes, tiers as tier_counts};
use crate::tiers;
use crate::vault::Vault;
use crate::warmup::marker;
use crate::warmup::ramp;
use crate::warmup::settings::{Invalid, Settings};

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
    /// The value of the engine's marker header (`warmup::marker::HEADER`),
    /// which the policy strips before signing. Absent on other mail:
    /// `kumo.serde.json_encode` leaves a nil field out.
    #[serde(default)]
    pub warmup_marker: Option<String>,
    /// The message's Message-ID header as it reads, brackets and all;
    /// absent when it has none.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// Whether a message `authn` submits is warmup mail: its marker is the
/// engine's for its Message-ID and this mailbox. A missing or forged
/// marker makes it campaign mail, no error: it is still a message.
pub fn is_warmup(
    vault: &Vault,
    authn: &str,
    message_id: Option<&str>,
    marker: Option<&str>,
) -> bool {
    match (message_id, marker) {
        (Some(id), Some(m)) => marker::verify(vault, id, authn.trim(), m),
        _ => false,
    }
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
    /// The row was validated when it was written; one that no longer
    /// parses is a fault to fix, never a reason to refuse or to lift the
    /// slow ramp.
    #[error("the stored warmup settings of mailbox {mailbox} are invalid: {source}")]
    WarmupSettings {
        mailbox: uuid::Uuid,
        source: Invalid,
    },
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
    /// The message was counted as warmup mail (`warmup_sent_today`), not
    /// against `remaining_today`.
    pub warmup: bool,
}

fn refuse(code: u16, reason: impl Into<String>) -> Decision {
    Decision {
        allow: false,
        code,
        reason: reason.into(),
        remaining_today: 0,
        list_unsubscribe: None,
        warmup: false,
    }
}

/// How much campaign mail a warming mailbox may send today: the slow ramp
/// of its settings on warmup day `day` (1 on `started_on`), never over its
/// daily limit. Returns the allowance and the day.
fn campaign_allowance(
    mailbox: uuid::Uuid,
    enrolment: &Enrolment,
    today: NaiveDate,
    daily_limit: u32,
) -> Result<(u32, u32), SendError> {
    let invalid = |source| SendError::WarmupSettings { mailbox, source };
    let json = serde_json::from_str(&enrolment.settings).map_err(|e| {
        invalid(Invalid {
            field: "settings",
            message: e.to_string(),
        })
    })?;
    let settings = Settings::from_json(json).map_err(invalid)?;
    // A start in the future (a clock set back) is day 1, not day 0 or less.
    let day = u32::try_from((today - enrolment.started_on).num_days() + 1)
        .unwrap_or(1)
        .max(1);
    Ok((
        ramp::campaign_allowance(&settings.slow_ramp, day, daily_limit),
        day,
    ))
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
    let warmup = is_warmup(
        links.vault,
        &authn,
        req.message_id.as_deref(),
        req.warmup_marker.as_deref(),
    );
    let unsubscribe = unsubscribe::links(
        links.vault,
        links.public_url,
        entry.mailbox_id,
        &authn,
        &req.recipients[0],
    );
    let recipients = req.recipients;
    store
        .write(move |tx| {
            // Read here, not cached in the entry: a status change (or a
            // removal) takes effect with the next message.
            let status = domains::get(tx, entry.domain_id, None)?
                .filter(|d| d.domain_name == entry.domain)
                .map(|d| d.status);
            if let Some(refusal) = domain_refusal(&entry.domain, status) {
                return Ok(refusal);
            }
            for r in &recipients {
                if mailboxes::is_suppressed(tx, entry.user_id, r.trim())? {
                    return Ok(refuse(
                        550,
                        format!("5.7.1 {r} unsubscribed or is suppressed"),
                    ));
                }
            }
            let counted = if warmup {
                count_warmup(tx, &entry, today, now)?
            } else {
                count_campaign(tx, &entry, &authn, today, now)?
            };
            Ok(match counted {
                Ok(remaining_today) => Decision {
                    allow: true,
                    code: 250,
                    reason: "2.0.0 ok".into(),
                    remaining_today,
                    list_unsubscribe: Some(unsubscribe),
                    warmup,
                },
                Err(refusal) => refusal,
            })
        })
        .await
}

/// The campaign mail a warming mailbox may send today under its slow
/// ramp, with its warmup day; `None` when it is not warming (or its
/// warmup is not enabled), so only its daily limit applies.
fn slow_ramp(
    tx: &rusqlite::Connection,
    entry: &Entry,
    today: NaiveDate,
) -> Result<Option<(u32, u32)>, SendError> {
    if !entry.is_warming() {
        return Ok(None);
    }
    sends::enabled(tx, entry.mailbox_id)?
        .map(|e| campaign_allowance(entry.mailbox_id, &e, today, entry.daily_limit))
        .transpose()
}

/// What the owner's plan leaves for today (`None`: no plan cap), or the
/// refusal when nothing is left.
fn plan_left(
    tx: &rusqlite::Connection,
    owner: uuid::Uuid,
    today: NaiveDate,
) -> Result<Result<u32, Decision>, SendError> {
    Ok(match tiers::volume_left(tx, owner, today)? {
        Some((tier, volume, 0)) => Err(refuse(
            452,
            format!(
                "4.7.1 the daily sending volume of this account's plan ({tier}: {volume} messages a day) is reached; try again tomorrow"
            ),
        )),
        Some((_, _, left)) => Ok(left),
        None => Ok(u32::MAX),
    })
}

/// Counts a campaign message against the mailbox's limit (its slow ramp
/// while warming) and its owner's plan, all in the caller's transaction,
/// so two messages at the limit cannot both pass. Returns what the mailbox
/// may still send today, or the refusal.
fn count_campaign(
    tx: &rusqlite::Connection,
    entry: &Entry,
    authn: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Result<u32, Decision>, SendError> {
    let user_left = match plan_left(tx, entry.user_id, today)? {
        Ok(left) => left,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let ramp = slow_ramp(tx, entry, today)?;
    let cap = ramp.map(|(allowance, _)| allowance);
    Ok(
        match mailboxes::count_send(tx, entry.mailbox_id, today, now, cap)? {
            Some(remaining) => {
                tier_counts::count_send(tx, entry.user_id, today)?;
                Ok(remaining.min(user_left - 1))
            }
            None => Err(match ramp {
                Some((allowance, day)) => refuse(
                    452,
                    format!(
                        "4.7.1 {authn} is warming up: it may send {allowance} campaign messages today (day {day} of its warmup); try again tomorrow"
                    ),
                ),
                None => refuse(452, "4.7.1 daily sending limit reached; try again tomorrow"),
            }),
        },
    )
}

/// Counts a warmup message apart from campaign mail: neither the daily
/// limit nor the plan applies or changes. Returns the campaign mail the
/// mailbox may still send today, as for any message.
fn count_warmup(
    tx: &rusqlite::Connection,
    entry: &Entry,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Result<u32, Decision>, SendError> {
    let id = entry.mailbox_id;
    if mailboxes::count_warmup_send(tx, id, today, now)?.is_none() {
        // The datasource still had an entry for a mailbox SQLite no longer
        // has: removed a moment ago.
        return Ok(Err(refuse(550, "5.7.1 not an InboxGrove mailbox")));
    }
    let user_left = plan_left(tx, entry.user_id, today)?.unwrap_or(0);
    let cap = slow_ramp(tx, entry, today)?.map_or(entry.daily_limit, |(allowance, _)| allowance);
    let sent = mailboxes::sent_today(tx, id, today)?;
    Ok(Ok(cap.saturating_sub(sent).min(user_left)))
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
    fn the_marker_and_the_message_id_are_optional_and_typed() {
        let base = r#""authn_id":"a@b.test","envelope_from":"a@b.test","from_headers":[],"sender_headers":[],"recipients":[]"#;
        let none = parse(&format!("{{{base}}}")).unwrap();
        assert_eq!((none.warmup_marker, none.message_id), (None, None));
        let both = parse(&format!(
            r#"{{{base},"warmup_marker":"ab12","message_id":"<m@b.test>"}}"#
        ))
        .unwrap();
        assert_eq!(both.warmup_marker.as_deref(), Some("ab12"));
        assert_eq!(both.message_id.as_deref(), Some("<m@b.test>"));
        for bad in [
            format!(r#"{{{base},"warmup_marker":1}}"#),
            format!(r#"{{{base},"message_id":["<m@b.test>"]}}"#),
            format!(r#"{{{base},"warmup":true}}"#),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_engines_marker_for_this_message_and_mailbox_makes_warmup_mail() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _) = Vault::load_or_create(dir.path()).unwrap();
        let good = marker::make(&vault, "<w1@b.test>", "ada@b.test");
        assert!(is_warmup(
            &vault,
            "ada@b.test",
            Some("<w1@b.test>"),
            Some(&good)
        ));
        assert!(is_warmup(
            &vault,
            " ada@b.test ",
            Some("w1@b.test"),
            Some(&good)
        ));
        for (id, sender, marker) in [
            (Some("<w1@b.test>"), "ada@b.test", None),
            (None, "ada@b.test", Some(good.as_str())),
            (Some("<w2@b.test>"), "ada@b.test", Some(good.as_str())),
            (Some("<w1@b.test>"), "bob@b.test", Some(good.as_str())),
            (Some("<w1@b.test>"), "ada@b.test", Some("00")),
            (Some("<w1@b.test>"), "ada@b.test", Some("")),
        ] {
            assert!(
                !is_warmup(&vault, sender, id, marker),
                "{id:?} {sender} {marker:?}"
            );
        }
    }

    fn enrolment(settings: serde_json::Value, started_on: &str) -> Enrolment {
        Enrolment {
            settings: settings.to_string(),
            started_on: started_on.parse().unwrap(),
        }
    }

    #[test]
    fn a_warming_mailbox_is_allowed_its_slow_ramp_counted_from_its_first_day() {
        let id = uuid::Uuid::nil();
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        let start = enrolment(defaults.clone(), "2026-12-01");
        let on = |d: &str| d.parse::<NaiveDate>().unwrap();
        // The default: a quiet week, then 2 and +2 a day, never over the limit.
        assert_eq!(
            campaign_allowance(id, &start, on("2026-12-01"), 40).unwrap(),
            (0, 1)
        );
        assert_eq!(
            campaign_allowance(id, &start, on("2026-12-07"), 40).unwrap(),
            (0, 7)
        );
        assert_eq!(
            campaign_allowance(id, &start, on("2026-12-08"), 40).unwrap(),
            (2, 8)
        );
        assert_eq!(
            campaign_allowance(id, &start, on("2026-12-10"), 40).unwrap(),
            (6, 10)
        );
        assert_eq!(
            campaign_allowance(id, &start, on("2027-03-01"), 40)
                .unwrap()
                .0,
            40
        );
        // A start after today (a clock set back) is day 1.
        assert_eq!(
            campaign_allowance(id, &start, on("2026-11-20"), 40).unwrap(),
            (0, 1)
        );
        let mut own = defaults;
        own["slow_ramp"] = serde_json::json!({ "quiet_days": 0, "start": 5, "increment": 1 });
        let own = enrolment(own, "2026-12-01");
        assert_eq!(
            campaign_allowance(id, &own, on("2026-12-03"), 40).unwrap(),
            (7, 3)
        );
    }

    #[test]
    fn stored_settings_that_no_longer_parse_are_a_fault_naming_the_mailbox() {
        let id = uuid::Uuid::from_u128(7);
        let today = "2026-12-01".parse().unwrap();
        for bad in [
            Enrolment {
                settings: "not json".into(),
                started_on: today,
            },
            enrolment(serde_json::json!({ "reply_rate_pct": 900 }), "2026-12-01"),
        ] {
            let e = campaign_allowance(id, &bad, today, 40).unwrap_err();
            assert!(matches!(e, SendError::WarmupSettings { .. }), "{e}");
            assert!(e.to_string().contains(&id.to_string()), "{e}");
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
