//! Fourteen simulated days of the warmup engine with real SMTP and IMAP
//! (see [`super::rig`]): the volumes follow the ramp, every message obeys
//! the pairing rules, a Junk placement is recorded, rescued and freezes
//! the sender's ramp, mail that is not warmup is never touched, and the
//! mailboxes whose mail lands in the inbox leave `warming`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use inboxgrove::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::rig::{JUNKED_DOMAIN, PEERS, Rig};
use crate::inboxes::Control;
use crate::support::dovecot;
use crate::support::imap_client::{Imap, pinned_connector};
use crate::support::smtp_sink::lmtp_deliver;

const START: i64 = 2;
const CEILING: i64 = 5;

fn domain(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}

fn plain(from: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Someone <{from}>\r\nTo: <{to}>\r\nSubject: Lunch on Friday?\r\nDate: Mon, 18 Mar 2030 08:00:00 +0000\r\nMessage-ID: <{id}>\r\n\r\nAre you free?\r\n"
    )
    .into_bytes()
}

/// The FETCH FLAGS line of the message `id` in `folder`, or None.
async fn flags_of(imap: &mut Imap, folder: &str, id: &str) -> Option<String> {
    assert!(imap.command(&format!("SELECT \"{folder}\"")).await.ok());
    let found = imap
        .command(&format!("UID SEARCH HEADER Message-ID \"{id}\""))
        .await
        .text();
    let uid = found.split_whitespace().nth(2)?.to_owned();
    let flags = imap
        .command(&format!("UID FETCH {uid} (FLAGS)"))
        .await
        .text();
    Some(flags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourteen_days_follow_the_ramp_and_the_pairing_rules_and_close_the_loop_on_junk() {
    if !dovecot::available() {
        return;
    }
    let start: DateTime<Utc> = "2030-03-18T00:05:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let rig = Rig::start(clock.clone(), None).await;
    rig.add_peers().await;
    let app = &rig.w.app;
    for m in &rig.mailboxes {
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/inboxes/{}/warmup", m.id),
                Some(json!({ "ramp": { "preset": "linear", "start": START, "increment": 1, "ceiling": CEILING } })),
                Some(&rig.w.admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["ramp_days"], 4, "{body}");
    }
    // Mail that is not warmup, in a hosted INBOX and (filed there by the
    // provider's Sieve) in a peer's Junk.
    let first = &rig.mailboxes[0];
    rig.appliance.deliver(
        &first.email,
        "plain-1.test",
        &plain(
            "friend@elsewhere.test",
            &first.email,
            "plain-1@elsewhere.test",
        ),
    );
    lmtp_deliver(
        rig.provider.lmtp.unwrap(),
        &format!("news@{JUNKED_DOMAIN}"),
        PEERS[0].0,
        &plain(
            &format!("news@{JUNKED_DOMAIN}"),
            PEERS[0].0,
            "plain-2@beta.test",
        ),
    )
    .await
    .unwrap();

    // Campaign mail of a warming mailbox: nothing in its first week.
    let control = Control::of(app);
    let (_, decision) = control
        .call(
            Method::POST,
            "/send-check",
            Some(json!({
                "authn_id": first.email, "envelope_from": first.email,
                "from_headers": [first.email], "sender_headers": [],
                "recipients": ["lead@prospect.test"],
            })),
        )
        .await;
    assert_eq!(
        (decision["allow"].clone(), decision["code"].clone()),
        (json!(false), json!(452)),
        "{decision}"
    );

    // One mailbox pauses for days 3 and 4, before those days are planned.
    let paused = rig.mailboxes[5].id.clone();
    let eve = |day: i64| start + Duration::days(day) - Duration::minutes(20);
    for day in 0..14 {
        rig.run_until(eve(day + 1), Duration::minutes(10)).await;
        let verb = match day {
            2 => "pause",
            4 => "resume",
            _ => continue,
        };
        let path = format!("/api/v1/inboxes/{paused}/warmup/{verb}");
        let (s, b) = app.post(&path, json!({}), Some(&rig.w.admin)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // Let the last day's replies and engagements finish.
    rig.run_until(
        start + Duration::days(14) + Duration::hours(6),
        Duration::minutes(10),
    )
    .await;

    let db = rig.db();
    let email_of: HashMap<String, String> = rig
        .mailboxes
        .iter()
        .map(|m| (m.id.clone(), m.email.clone()))
        .collect();

    // Every message obeys the pairing rules.
    let mut stmt = db
        .prepare(
            "SELECT sender_email, recipient_email, day, reply_to IS NOT NULL, sent_at, placement, rescued
             FROM warmup_messages WHERE status = 'sent'",
        )
        .unwrap();
    type Sent = (
        String,
        String,
        String,
        bool,
        DateTime<Utc>,
        Option<String>,
        bool,
    );
    let sent: Vec<Sent> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(sent.len() > 200, "only {} messages sent", sent.len());
    let mut pairs = HashSet::new();
    let paused_email = &email_of[&paused];
    let (pause_from, pause_to) = (eve(3), eve(5));
    for (from, to, day, reply, at, _, _) in &sent {
        assert_ne!(domain(from), domain(to), "{from} → {to}: same domain");
        if !reply {
            assert!(
                pairs.insert((from.clone(), to.clone(), day.clone())),
                "{from} → {to} twice on {day}"
            );
        }
        if (from == paused_email || to == paused_email) && *at >= pause_from && *at < pause_to {
            panic!("{from} → {to} at {at} while {paused_email} was paused");
        }
    }
    let replies = sent.iter().filter(|s| s.3).count();
    assert!(replies > 20, "{replies} replies of {}", sent.len());

    // A message the provider filed into Junk is spam, rescued, and its
    // sender's ramp holds; every other lands in the inbox.
    for (from, to, _, _, _, placement, rescued) in &sent {
        // The provider's Sieve junks the domain's mail for every peer.
        let junked = domain(from) == JUNKED_DOMAIN && PEERS.iter().any(|(p, _)| p == to);
        let placement = placement.as_deref().unwrap_or("none");
        if junked {
            assert_eq!((placement, *rescued), ("spam", true), "{from} → {to}");
        } else {
            assert_eq!(placement, "inbox", "{from} → {to}");
        }
    }

    // The ramp: each day's plan is the linear ramp's step within ± 20 %,
    // all of it sent; a day planned within 72 h of a spam placement of its
    // mailbox repeats the step before it, any other climbs one.
    let mut froze = HashSet::new();
    for m in &rig.mailboxes {
        let mut stmt = db
            .prepare(
                "SELECT ramp_step, scheduled_sends, actual_sends, note, created_at FROM warmup_campaigns
                 WHERE mailbox_id = ?1 AND day < '2030-04-01' ORDER BY day",
            )
            .unwrap();
        type Planned = (u32, u32, u32, Option<String>, DateTime<Utc>);
        let days: Vec<Planned> = stmt
            .query_map([&m.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The paused one sends nothing on days 3 and 4 (day 4 may be
        // planned, empty, in the minutes after it resumes).
        let sending_days = days.iter().filter(|d| d.1 > 0).count();
        let expected_days = if m.id == paused { 12 } else { 14 };
        assert_eq!(sending_days, expected_days, "{}: {days:?}", m.email);
        for (step, scheduled, actual, note, _) in &days {
            let base = (START + i64::from(*step) - 1).min(CEILING) as f64;
            let (lo, hi) = ((base * 0.8).round() as u32, (base * 1.2).round() as u32);
            match note {
                Some(n) if *scheduled == 0 => assert!(n.contains("fit"), "{}: {n}", m.email),
                None => assert!(
                    (lo..=hi).contains(scheduled),
                    "{}: {scheduled} for step {step}",
                    m.email
                ),
                Some(n) if n.contains("spam placement") || n.contains("frozen") => {
                    assert!(scheduled <= &hi, "{n}")
                }
                Some(n) => assert!(
                    n.contains("eligible") && scheduled <= &hi,
                    "{}: {n}",
                    m.email
                ),
            }
            assert_eq!(actual, scheduled, "{}: all planned mail is sent", m.email);
        }
        let mut stmt = db
            .prepare("SELECT engaged_at FROM warmup_messages WHERE counts_for = ?1 AND placement = 'spam'")
            .unwrap();
        let spam: Vec<DateTime<Utc>> = stmt
            .query_map([&m.id], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(days[0].0, 1, "{}", m.email);
        for pair in days.windows(2) {
            let (before, (step, scheduled, .., planned_at)) = (pair[0].0, &pair[1]);
            let frozen = spam
                .iter()
                .any(|t| t < planned_at && *t + Duration::hours(72) > *planned_at);
            let want = if frozen || *scheduled == 0 {
                before
            } else {
                (before + 1).min(4)
            };
            assert_eq!(*step, want, "{}: {days:?} spam at {spam:?}", m.email);
            if frozen {
                froze.insert(m.email.clone());
            }
        }
    }
    let junked: HashSet<String> = rig
        .mailboxes
        .iter()
        .filter(|m| domain(&m.email) == JUNKED_DOMAIN)
        .map(|m| m.email.clone())
        .collect();
    assert_eq!(froze, junked, "only the junked domain's ramps froze");
    let frozen: i64 = db
        .query_row(
            "SELECT count(*) FROM warmup_mailboxes w JOIN mailboxes m ON m.id = w.mailbox_id
             JOIN domains d ON d.id = m.domain_id WHERE d.domain_name = ?1 AND w.frozen_until IS NOT NULL",
            [JUNKED_DOMAIN],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(frozen, 2);

    // Warmup never used the campaign limit; filed warmup mail expires.
    let (campaign, warmup): (i64, i64) = db
        .query_row(
            "SELECT sum(emails_sent_today), sum(warmup_sent_today) FROM mailboxes",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(campaign, 0);
    assert!(warmup > 0);
    let expunged: i64 = db
        .query_row(
            "SELECT count(*) FROM warmup_messages WHERE expunged = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(expunged > 0, "nothing older than 7 days was expunged");

    // Mail that is not warmup keeps its folder and flags.
    let mut imap = Imap::tls(rig.appliance.imaps, &pinned_connector(&rig.appliance.cert)).await;
    assert!(imap.login(&first.email, &first.password).await.ok());
    let flags = flags_of(&mut imap, "INBOX", "plain-1@elsewhere.test")
        .await
        .expect("still in INBOX");
    assert!(
        !flags.contains("\\Seen") && !flags.contains("\\Flagged"),
        "{flags}"
    );
    imap.logout().await;
    let connector = rig.ca.connector();
    let mut imap = Imap::tls(rig.provider.imaps, &connector).await;
    assert!(imap.login(PEERS[0].0, PEERS[0].1).await.ok());
    let flags = flags_of(&mut imap, "INBOX.Junk", "plain-2@beta.test")
        .await
        .expect("still in Junk");
    assert!(!flags.contains("\\Seen"), "{flags}");
    let junk = imap.command("SEARCH ALL").await.text();
    assert_eq!(
        junk.split_whitespace().count(),
        3,
        "only the plain message is left in Junk: {junk}"
    );
    imap.logout().await;

    // The mailboxes whose mail lands in the inbox are ready; the junked
    // domain's stay warming, and the API says so.
    for m in &rig.mailboxes {
        let (_, view): (StatusCode, Value) = app
            .get(&format!("/api/v1/inboxes/{}/warmup", m.id), &rig.w.admin)
            .await;
        let want = if domain(&m.email) == JUNKED_DOMAIN {
            "warming"
        } else {
            "active"
        };
        assert_eq!(view["status"], want, "{view}");
        assert!(view["history"].as_array().unwrap().len() >= 12, "{view}");
        if want == "active" {
            assert_eq!(view["placement_pct"], 100.0, "{view}");
        }
    }
}
