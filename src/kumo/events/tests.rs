//! Samples follow the field list of KumoMTA's log_record docs and
//! `kumo-log-types`: integer `timestamp`/`created`, `enhanced_code` split into
//! parts, `feedback_report` as KumoMTA parses it from an ARF message.

use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;

const SPOOL_ID: &str = "1d98076abbbc11ed940250ebf67f93bd";

fn delivery() -> Value {
    json!({
        "type": "Delivery",
        "id": SPOOL_ID,
        "sender": "alex@grove-mail.example",
        "recipient": "pat@prospect.example",
        "queue": "prospect.example",
        "site": "source2->(alt1|alt2)?.aspmx.l.google.com.",
        "size": 1047,
        "response": {
            "code": 250,
            "enhanced_code": { "class": 2, "subject": 0, "detail": 0 },
            "content": "OK 1678069691 x12-20020a170902",
            "command": "."
        },
        "peer_address": { "name": "aspmx.l.google.com.", "addr": "142.251.2.27" },
        "timestamp": 1678069691,
        "created": 1678069680,
        "num_attempts": 0,
        "bounce_classification": "Uncategorized",
        "egress_pool": "pool0",
        "egress_source": "source2",
        "source_address": { "address": "10.0.0.1:53210" },
        "feedback_report": null,
        "meta": { "authn_id": "alex@grove-mail.example", "mailbox_id": "mbx_01H" },
        "headers": { "message-id": "<a1@grove-mail.example>" },
        "delivery_protocol": "ESMTP",
        "reception_protocol": "ESMTP",
        "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173",
        "tls_cipher": "TLS_AES_256_GCM_SHA384",
        "tls_protocol_version": "TLSv1.3",
        "session_id": "9bcd689e-23d9-41b7-a015-63a1382f8b57"
    })
}

/// The delivery sample with some fields replaced.
fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(obj), Value::Object(changes)) = (base.as_object_mut(), changes) {
        obj.extend(changes);
    }
    base
}

fn bounce(classification: &str, code: u16, content: &str) -> Value {
    with(
        delivery(),
        json!({
            "type": "Bounce",
            "num_attempts": 1,
            "bounce_classification": classification,
            "response": {
                "code": code,
                "enhanced_code": { "class": code / 100, "subject": 1, "detail": 1 },
                "content": content,
                "command": "RCPT TO"
            }
        }),
    )
}

fn transient(attempt: u32, timestamp: i64) -> Value {
    with(
        delivery(),
        json!({
            "type": "TransientFailure",
            "num_attempts": attempt,
            "timestamp": timestamp,
            "bounce_classification": "InvalidRecipient",
            "response": {
                "code": 451,
                "enhanced_code": { "class": 4, "subject": 1, "detail": 1 },
                "content": "temporary recipient lookup failure",
                "command": "RCPT TO"
            }
        }),
    )
}

fn one(record: Value) -> MailEvent {
    let body = serde_json::to_vec(&record).unwrap();
    let mut batch = parse_batch(&body).unwrap();
    assert_eq!(batch.events.len(), 1, "{batch:?}");
    assert!(batch.quarantined.is_empty(), "{batch:?}");
    batch.events.remove(0)
}

/// The one record of `record` that could not be read.
fn kept_aside(record: &Value) -> Quarantined {
    let body = serde_json::to_vec(record).unwrap();
    let mut batch = parse_batch(&body).unwrap();
    assert!(batch.events.is_empty(), "{batch:?}");
    assert_eq!(batch.quarantined.len(), 1, "{batch:?}");
    batch.quarantined.remove(0)
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

#[test]
fn delivery_is_read_with_mailbox_from_meta() {
    let e = one(delivery());
    assert_eq!(e.kind, EventKind::Delivery);
    assert_eq!(e.message_id, SPOOL_ID);
    assert_eq!(e.mailbox_id.as_deref(), Some("mbx_01H"));
    assert_eq!(e.sender.as_deref(), Some("alex@grove-mail.example"));
    assert_eq!(e.recipient.as_deref(), Some("pat@prospect.example"));
    assert_eq!(e.at, at(1678069691));
    assert_eq!(e.response_code, Some(250));
    assert_eq!(
        e.response_text.as_deref(),
        Some("2.0.0 OK 1678069691 x12-20020a170902")
    );
    assert_eq!(e.bounce, None);
    assert!(!e.complaint);
    assert_eq!(e.idempotency_key.len(), 64);
}

#[test]
fn bounce_classes_map_to_hard_or_soft() {
    let cases = [
        ("InvalidRecipient", 550, BounceClass::Hard),
        ("InactiveMailbox", 550, BounceClass::Hard),
        ("BadDomain", 550, BounceClass::Hard),
        ("SpamBlock", 550, BounceClass::Soft),
        ("PolicyRelated", 554, BounceClass::Soft),
        ("QuotaIssues", 552, BounceClass::Soft),
        // No usable class: the SMTP code decides.
        ("Uncategorized", 550, BounceClass::Hard),
        ("Uncategorized", 452, BounceClass::Soft),
        ("MyOwnRuleName", 553, BounceClass::Hard),
    ];
    for (class, code, want) in cases {
        let e = one(bounce(class, code, "rejected"));
        assert_eq!(e.kind, EventKind::Bounce);
        assert_eq!(e.bounce, Some(want), "{class} {code}");
    }
}

#[test]
fn bounce_without_class_or_code_is_hard() {
    let mut record = bounce("Uncategorized", 550, "x");
    record["response"] = Value::Null;
    record
        .as_object_mut()
        .unwrap()
        .remove("bounce_classification");
    let e = one(record);
    assert_eq!(e.bounce, Some(BounceClass::Hard));
    assert_eq!(e.response_code, None);
    assert_eq!(e.response_text, None);
}

#[test]
fn transient_failure_is_soft_even_when_classed_invalid_recipient() {
    let e = one(transient(2, 1678070000));
    assert_eq!(e.kind, EventKind::TransientFailure);
    assert_eq!(e.bounce, Some(BounceClass::Soft));
    assert_eq!(e.response_code, Some(451));
}

#[test]
fn expiration_is_soft_despite_its_5xx() {
    let e = one(with(
        delivery(),
        json!({
            "type": "Expiration",
            "num_attempts": 14,
            "bounce_classification": "Uncategorized",
            "response": {
                "code": 551,
                "enhanced_code": { "class": 5, "subject": 4, "detail": 7 },
                "content": "Next delivery time would be after the message expiration",
                "command": null
            },
            "delivery_protocol": null
        }),
    ));
    assert_eq!(e.kind, EventKind::Expiration);
    assert_eq!(e.bounce, Some(BounceClass::Soft));
}

fn arf(feedback_type: &str) -> Value {
    json!({
        "type": "Feedback",
        "id": "7f0c4b2e9a1d11efb0c2525400a1b2c3",
        "sender": "fbl-noreply@isp.example",
        "recipient": "fbl@grove-mail.example",
        "queue": "grove-mail.example",
        "site": "",
        "size": 4096,
        "response": { "code": 250, "enhanced_code": null, "content": "", "command": "." },
        "peer_address": { "name": "feedback.isp.example", "addr": "198.51.100.7" },
        "timestamp": 1678090000,
        "created": 1678090000,
        "num_attempts": 0,
        "bounce_classification": "Uncategorized",
        "feedback_report": {
            "feedback_type": feedback_type,
            "user_agent": "SomeGenerator/1.0",
            "version": 1,
            "arrival_date": "2023-03-06T02:28:11Z",
            "incidents": null,
            "original_envelope_id": null,
            "original_mail_from": "<alex@grove-mail.example>",
            "reporting_mta": { "mta_type": "dns", "name": "mail.isp.example" },
            "source_ip": "192.0.2.1",
            "authentication_results": [],
            "original_rcpto_to": ["<pat@prospect.example>"],
            "reported_domain": ["grove-mail.example"],
            "reported_uri": [],
            "extensions": {},
            "original_message": "From: <alex@grove-mail.example>\nX-KumoRef: e30=\n\nhi\n",
            "supplemental_trace": { "recipient": "pat@prospect.example", "mailbox_id": "mbx_01H" }
        },
        "meta": {},
        "headers": {},
        "reception_protocol": "ESMTP",
        "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173"
    })
}

#[test]
fn arf_abuse_report_is_a_complaint_about_the_reported_message() {
    let e = one(arf("abuse"));
    assert_eq!(e.kind, EventKind::Feedback);
    assert!(e.complaint);
    assert_eq!(e.bounce, None);
    // The reported message's parties, not the FBL envelope.
    assert_eq!(e.sender.as_deref(), Some("alex@grove-mail.example"));
    assert_eq!(e.recipient.as_deref(), Some("pat@prospect.example"));
    // Meta is the report's (empty); the trace header carries the mailbox.
    assert_eq!(e.mailbox_id.as_deref(), Some("mbx_01H"));
}

#[test]
fn arf_without_trace_falls_back_on_original_rcpt_to() {
    let mut record = arf("fraud");
    record["feedback_report"]["supplemental_trace"] = Value::Null;
    let e = one(record);
    assert!(e.complaint);
    assert_eq!(e.recipient.as_deref(), Some("pat@prospect.example"));
    assert_eq!(e.mailbox_id, None);
}

#[test]
fn not_spam_and_auth_failure_reports_are_not_complaints() {
    for t in ["not-spam", "auth-failure", "other"] {
        assert!(!one(arf(t)).complaint, "{t}");
    }
}

#[test]
fn oob_dsn_is_classified_from_its_diagnostic() {
    let e = one(json!({
        "type": "OOB",
        "id": "5a1e0c3f9a1d11efb0c2525400a1b2c3",
        "sender": "alex@grove-mail.example",
        "recipient": "gone@prospect.example",
        "queue": "grove-mail.example",
        "site": "",
        "size": 2310,
        "response": {
            "code": 550,
            "enhanced_code": { "class": 5, "subject": 1, "detail": 1 },
            "content": "user unknown",
            "command": null
        },
        "peer_address": { "name": "mx.prospect.example", "addr": "203.0.113.5" },
        "timestamp": 1678080000,
        "created": 1678080000,
        "num_attempts": 0,
        "bounce_classification": "InvalidRecipient",
        "meta": {},
        "headers": {},
        "reception_protocol": "ESMTP",
        "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173"
    }));
    assert_eq!(e.kind, EventKind::Oob);
    assert_eq!(e.bounce, Some(BounceClass::Hard));
    assert_eq!(e.recipient.as_deref(), Some("gone@prospect.example"));
    assert_eq!(e.response_text.as_deref(), Some("5.1.1 user unknown"));
    assert_eq!(e.mailbox_id, None);
}

#[test]
fn reception_has_no_bounce_and_reads_x_mailbox_id() {
    let e = one(with(
        delivery(),
        json!({
            "type": "Reception",
            "site": "",
            "response": { "code": 250, "enhanced_code": null, "content": "", "command": null },
            "peer_address": { "name": "laptop.local", "addr": "192.0.2.44" },
            "meta": { "authn_id": "alex@grove-mail.example", "x_mailbox_id": 42 },
            "delivery_protocol": null
        }),
    ));
    assert_eq!(e.kind, EventKind::Reception);
    assert_eq!(e.bounce, None);
    assert_eq!(e.mailbox_id.as_deref(), Some("42"));
    assert_eq!(e.response_text, None);
}

#[test]
fn other_kinds_keep_their_names() {
    for (name, kind) in [
        ("AdminBounce", EventKind::AdminBounce),
        ("Rejection", EventKind::Rejection),
        ("Delayed", EventKind::Other("Delayed".into())),
    ] {
        let e = one(with(delivery(), json!({ "type": name })));
        assert_eq!(e.kind, kind);
        assert_eq!(e.kind.as_str(), name);
    }
}

#[test]
fn timestamps_accept_seconds_fractions_and_rfc3339() {
    let fraction = one(with(delivery(), json!({ "timestamp": 1678069691.25 })));
    assert_eq!(
        fraction.at,
        at(1678069691) + chrono::Duration::milliseconds(250)
    );

    let rfc = one(with(
        delivery(),
        json!({ "timestamp": "2023-03-06T02:28:11+01:00" }),
    ));
    assert_eq!(rfc.at, Utc.with_ymd_and_hms(2023, 3, 6, 1, 28, 11).unwrap());

    // The newer `event_time` wins over whole seconds.
    let precise = one(with(
        delivery(),
        json!({ "event_time": "2023-03-06T02:28:11.123456Z" }),
    ));
    assert_eq!(precise.at.timestamp_subsec_micros(), 123456);
}

#[test]
fn recipient_list_yields_one_event_per_recipient() {
    let body = serde_json::to_vec(&with(
        bounce("BadDomain", 550, "no such domain"),
        json!({ "recipient": ["a@gone.example", "b@gone.example"] }),
    ))
    .unwrap();
    let events = parse_batch(&body).unwrap().events;
    let rcpts: Vec<_> = events.iter().map(|e| e.recipient.as_deref()).collect();
    assert_eq!(rcpts, [Some("a@gone.example"), Some("b@gone.example")]);
    assert!(events.iter().all(|e| e.bounce == Some(BounceClass::Hard)));
    assert_ne!(events[0].idempotency_key, events[1].idempotency_key);
}

#[test]
fn idempotency_key_is_stable_across_reposts_and_distinct_across_records() {
    let first = one(transient(1, 1678070000));
    assert_eq!(one(transient(1, 1678070000)), first);

    // A re-post whose keys the Lua side wrote in another order.
    let a = br#"{"type":"TransientFailure","id":"abc","recipient":"pat@prospect.example","num_attempts":1,"timestamp":1678070000,"response":{"code":451,"content":"later"}}"#;
    let b = br#"{"response":{"content":"later","code":451},"timestamp":1678070000,"num_attempts":1,"recipient":"pat@prospect.example","id":"abc","type":"TransientFailure"}"#;
    let key = |body: &[u8]| parse_batch(body).unwrap().events.remove(0).idempotency_key;
    assert_eq!(key(a), key(b));

    let others = [
        one(transient(2, 1678070000)),
        one(transient(1, 1678070060)),
        one(with(transient(1, 1678070000), json!({ "type": "Bounce" }))),
        one(with(
            transient(1, 1678070000),
            json!({ "recipient": "kim@prospect.example" }),
        )),
        one(with(
            transient(1, 1678070000),
            json!({ "id": "ffffffffbbbc11ed940250ebf67f93bd" }),
        )),
    ];
    for other in &others {
        assert_ne!(other.idempotency_key, first.idempotency_key, "{other:?}");
    }
}

#[test]
fn batch_keeps_good_records_and_sets_bad_ones_aside() {
    let mut missing_type = delivery();
    missing_type.as_object_mut().unwrap().remove("type");
    let mut missing_id = delivery();
    missing_id.as_object_mut().unwrap().remove("id");
    let body = serde_json::to_vec(&json!([
        delivery(),
        "not a record",
        missing_type,
        with(delivery(), json!({ "timestamp": "yesterday-ish" })),
        transient(1, 1678070000),
        missing_id,
        with(delivery(), json!({ "response": { "code": "250" } })),
        with(delivery(), json!({ "id": "  ", "session_id": null })),
    ]))
    .unwrap();
    let batch = parse_batch(&body).unwrap();
    assert_eq!(
        batch
            .events
            .iter()
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>(),
        [EventKind::Delivery, EventKind::TransientFailure]
    );
    let bad = &batch.quarantined;
    assert_eq!(
        bad.iter().map(|q| q.index).collect::<Vec<_>>(),
        [1, 2, 3, 5, 6, 7]
    );
    assert!(bad[0].error.contains("got a string"), "{bad:?}");
    assert!(bad[1].error.contains("`type`"), "{bad:?}");
    assert!(bad[2].error.starts_with("timestamp:"), "{bad:?}");
    assert!(bad[2].error.contains("RFC 3339"), "{bad:?}");
    assert!(bad[3].error.contains("`id`"), "{bad:?}");
    assert!(bad[4].error.starts_with("response.code:"), "{bad:?}");
    assert!(bad[5].error.contains("spool id"), "{bad:?}");
    // Kept as posted, so a person can see what KumoMTA sent.
    assert!(bad[2].raw.contains("yesterday-ish"), "{}", bad[2].raw);
    assert_eq!(bad[0].raw, "\"not a record\"");
}

#[test]
fn missing_timestamp_sets_the_record_aside() {
    let mut record = delivery();
    record.as_object_mut().unwrap().remove("timestamp");
    let q = kept_aside(&record);
    assert_eq!(q.index, 0);
    assert!(q.error.contains("timestamp"), "{q:?}");
}

#[test]
fn bodies_that_are_not_records_are_set_aside_whole() {
    let batch = parse_batch(b"type=Delivery&id=1").unwrap();
    assert!(batch.events.is_empty());
    assert!(batch.quarantined[0].error.contains("not JSON"), "{batch:?}");
    assert_eq!(batch.quarantined[0].raw, "type=Delivery&id=1");

    let batch = parse_batch(b"\"Delivery\"").unwrap();
    assert!(
        batch.quarantined[0]
            .error
            .contains("expected a KumoMTA log record"),
        "{batch:?}"
    );
    assert_eq!(parse_batch(b"[]").unwrap(), Batch::default());
    // Kept text is bounded.
    let huge = format!(
        "[{{\"type\":\"Delivery\",\"x\":\"{}\"}}]",
        "é".repeat(40_000)
    );
    let q = parse_batch(huge.as_bytes()).unwrap().quarantined.remove(0);
    assert!(q.raw.len() <= 16 * 1024 + 3, "{}", q.raw.len());
}

/// A Rejection as kumod's `log_rejection` writes it: no spool id, the
/// session's meta (the keys the hook lists), the refused command.
fn rejection(code: u16, content: &str, command: &str, meta: Value) -> Value {
    json!({
        "type": "Rejection", "id": "", "sender": "", "recipient": "", "queue": "",
        "site": "", "size": 0,
        "response": { "code": code, "enhanced_code": null, "content": content, "command": command },
        "peer_address": { "name": "client.example", "addr": "198.51.100.7" },
        "timestamp": 1678069700, "event_time": "2023-03-06T02:28:20.123456789Z",
        "created": 1678069700, "num_attempts": 0, "bounce_classification": "Uncategorized",
        "egress_pool": null, "egress_source": null, "feedback_report": null,
        "meta": meta, "headers": {}, "delivery_protocol": null, "reception_protocol": null,
        "nodeid": "557f3ad4-2c8c-11ee-976e-782d7e12e173",
        "session_id": "9bcd689e-23d9-41b7-a015-63a1382f8b57"
    })
}

#[test]
fn rejections_without_a_spool_id_are_taken_and_say_what_was_refused() {
    // AUTH PLAIN's payload is the password, base64: never kept.
    let login = one(rejection(
        535,
        "5.7.8 AUTH invalid",
        "AGFkYUBhY21lLnRlc3QAaHVudGVyMg==",
        json!({ "x_auth_attempt": "Ada@Acme.test", "x_listener": "submission" }),
    ));
    assert_eq!(login.kind, EventKind::Rejection);
    assert_eq!(login.message_id, "");
    assert_eq!(
        login.refusal,
        Some(Refusal::Login {
            username: "ada@acme.test".into()
        })
    );
    assert!(!format!("{login:?}").contains("AGFkYUBh"), "{login:?}");

    let message = one(rejection(
        550,
        "5.7.1 From header must be ada@acme.test",
        ".",
        json!({ "x_mailbox_id": "mbx_01H", "authn_id": "ada@acme.test" }),
    ));
    assert_eq!(message.refusal, Some(Refusal::Message));
    assert_eq!(message.mailbox_id.as_deref(), Some("mbx_01H"));

    // On port 25, a stranger's refused RCPT names no mailbox of ours.
    let stranger = one(rejection(
        550,
        "5.1.1 No such mailbox here",
        "RCPT TO:<x@acme.test>",
        json!({}),
    ));
    assert_eq!(stranger.refusal, None);
    // A wrong password with no attempt noted names nobody.
    let anonymous = one(rejection(535, "5.7.8 AUTH invalid", "AA==", json!({})));
    assert_eq!(anonymous.refusal, None);

    // Two refusals in one session are two events; the same one posted
    // again is the same event.
    assert_ne!(stranger.idempotency_key, message.idempotency_key);
    assert_eq!(
        one(rejection(
            550,
            "5.1.1 No such mailbox here",
            "RCPT TO:<x@acme.test>",
            json!({})
        )),
        stranger
    );
    // No spool id and no session: nothing to key it by.
    let q = kept_aside(&with(
        rejection(550, "no", "MAIL", json!({})),
        json!({ "session_id": null, "response": { "code": 550, "content": "no", "command": "AUTH PLAIN AGFkYQ==" } }),
    ));
    assert!(q.error.contains("spool id"), "{q:?}");
    assert!(
        !q.raw.contains("AGFkYQ"),
        "the SASL payload is dropped: {}",
        q.raw
    );
}

#[test]
fn the_log_hook_message_id_keys_a_record_across_retries() {
    let record = rejection(
        550,
        "5.7.1 relaying not permitted",
        "RCPT TO:<a@b.example>",
        json!({}),
    );
    let posted = |hook: &str| {
        let body = serde_json::to_vec(&json!([{ "hook_id": hook, "record": record }])).unwrap();
        parse_batch(&body).unwrap().events.remove(0)
    };
    assert_eq!(posted("aaaa0001"), posted("aaaa0001"));
    assert_ne!(
        posted("aaaa0001").idempotency_key,
        posted("aaaa0002").idempotency_key
    );
    // A record with a spool id keeps its own key whatever carried it.
    let body = serde_json::to_vec(&json!([{ "hook_id": "h1", "record": delivery() }])).unwrap();
    assert_eq!(
        parse_batch(&body).unwrap().events.remove(0),
        one(delivery())
    );
}

#[test]
fn batches_over_the_limit_are_refused() {
    let body = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
    assert_eq!(
        parse_batch(body.as_bytes()).unwrap_err(),
        BatchError::TooLarge { max: MAX_BATCH }
    );

    // Expansion counts too: few records, too many recipients.
    let rcpts: Vec<String> = (0..=MAX_BATCH / 2)
        .map(|i| format!("r{i}@x.example"))
        .collect();
    let record = with(delivery(), json!({ "recipient": rcpts }));
    let body = serde_json::to_vec(&json!([record.clone(), record])).unwrap();
    assert_eq!(
        parse_batch(&body).unwrap_err(),
        BatchError::TooLarge { max: MAX_BATCH }
    );
}
