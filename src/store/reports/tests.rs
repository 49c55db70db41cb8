//! The matching through `events::record`, on a migrated SQLite database:
//! what a report changes depends only on whether it matches a message sent.

use chrono::TimeZone;
use rusqlite::Connection;
use serde_json::{Value, json};

use super::*;
use crate::kumo::events::parse_batch;
use crate::store::{events, migrations};

const USER: &str = "5a1f6a4e-0000-4000-8000-000000000001";
const ADA: &str = "5a1f6a4e-0000-4000-8000-0000000000a1";
const BOB: &str = "5a1f6a4e-0000-4000-8000-0000000000b2";
const SPOOL: &str = "1d98076abbbc11ed940250ebf67f93bd";
const PROSPECT: &str = "pat@prospect.example";

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations::migrate(&mut conn).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES ('{USER}', 'owner@b.test', 'h', 'member', 't', 't');
         INSERT INTO domains (id, user_id, domain_name, dns_mode, created_at, updated_at)
             VALUES ('d', '{USER}', 'grove.test', 'manual', 't', 't');
         INSERT INTO mailboxes (id, domain_id, user_id, username, password_hash, created_at, updated_at)
             VALUES ('{ADA}', 'd', '{USER}', 'ada', 'h', 't', 't'),
                    ('{BOB}', 'd', '{USER}', 'bob', 'h', 't', 't');"
    ))
    .unwrap();
    conn
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
}

/// Posts one record as the log hook would, on `day`.
fn post(conn: &Connection, record: Value, day: u32) {
    let batch = parse_batch(&serde_json::to_vec(&record).unwrap()).unwrap();
    assert!(batch.quarantined.is_empty(), "{batch:?}");
    for ev in &batch.events {
        events::record(conn, ev, at(day)).unwrap();
    }
}

fn base(kind: &str, id: &str, sender: &str, recipient: &str, stamp: i64) -> Value {
    json!({ "type": kind, "id": id, "sender": sender, "recipient": recipient,
            "timestamp": stamp, "meta": {}, "headers": {} })
}

/// The Reception KumoMTA logs for a message ada submitted on port 587.
fn sent(id: &str, recipient: &str, message_id: &str) -> Value {
    let mut r = base("Reception", id, "ada@grove.test", recipient, 100);
    r["reception_protocol"] = json!("ESMTP");
    r["meta"] = json!({ "x_listener": "submission", "mailbox_id": ADA });
    r["headers"] = json!({ "Message-ID": format!("<{message_id}>") });
    r
}

fn hard_bounce(id: &str, recipient: &str, stamp: i64) -> Value {
    let mut r = base("Bounce", id, "ada@grove.test", recipient, stamp);
    r["bounce_classification"] = json!("InvalidRecipient");
    r["response"] = json!({ "code": 550, "content": "no such user" });
    r["meta"] = json!({ "mailbox_id": ADA });
    r
}

/// An OOB record: the DSN's own spool id, its envelope recipient as
/// `sender`, the failed recipient.
fn dsn(to: &str, failed: &str, stamp: i64) -> Value {
    let mut r = base("OOB", "9e1f0000000011efb0c2525400a1b2c3", to, failed, stamp);
    r["response"] = json!({ "code": 550, "content": "5.1.1 user unknown" });
    r
}

fn arf(original_message: &str, trace: Value, stamp: i64) -> Value {
    let mut r = base(
        "Feedback",
        "7f0c4b2e9a1d11efb0c2525400a1b2c3",
        "fbl@isp.example",
        "fbl@grove.test",
        stamp,
    );
    r["feedback_report"] = json!({
        "feedback_type": "abuse",
        "original_rcpto_to": [],
        "original_message": original_message,
        "supplemental_trace": trace,
    });
    r
}

/// (bounced_hard, complaints, unmatched_reports) of a mailbox.
fn counters(conn: &Connection, id: &str) -> (i64, i64, i64) {
    conn.query_row(
        "SELECT bounced_hard, complaints, unmatched_reports FROM mailboxes WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn suppressed(conn: &Connection, address: &str) -> bool {
    let user = Uuid::parse_str(USER).unwrap();
    mailboxes::is_suppressed(conn, user, address).unwrap()
}

fn unmatched(conn: &Connection) -> u64 {
    events::unmatched_count(conn).unwrap()
}

#[test]
fn a_bounce_acts_only_for_the_spool_id_and_recipient_of_a_sent_message() {
    let conn = db();
    // No Reception yet: kept, unmatched, nothing else changes. A DSN that
    // claims the same spool id is no outcome of our queue.
    post(&conn, hard_bounce(SPOOL, PROSPECT, 200), 1);
    let mut early_dsn = dsn("bob@grove.test", PROSPECT, 150);
    early_dsn["id"] = json!(SPOOL);
    post(&conn, early_dsn, 1);
    assert_eq!(counters(&conn, ADA), (0, 0, 1));
    assert_eq!(counters(&conn, BOB), (0, 0, 1));
    assert!(!suppressed(&conn, PROSPECT));

    // The Reception arrives late (the log hook retries each record with
    // its own jitter): the bounce that waited acts now, once.
    post(
        &conn,
        sent(SPOOL, "Pat@Prospect.example", "a1@grove.test"),
        1,
    );
    assert_eq!(counters(&conn, ADA), (1, 0, 0));
    assert_eq!(counters(&conn, BOB), (0, 0, 1));
    assert!(suppressed(&conn, PROSPECT));
    post(&conn, sent(SPOOL, PROSPECT, "a1@grove.test"), 1);
    assert_eq!(counters(&conn, ADA), (1, 0, 0));

    // The same spool id for another recipient is not that message.
    post(&conn, hard_bounce(SPOOL, "other@prospect.example", 300), 1);
    assert_eq!(counters(&conn, ADA), (1, 0, 1));
    assert!(!suppressed(&conn, "other@prospect.example"));

    // A bounce of the message counts for the mailbox that sent it, even
    // when its meta names another.
    let mut genuine = hard_bounce(SPOOL, PROSPECT, 400);
    genuine["meta"] = json!({ "mailbox_id": BOB });
    post(&conn, genuine, 1);
    assert_eq!(counters(&conn, ADA), (2, 0, 1));
    assert_eq!(counters(&conn, BOB), (0, 0, 1));
    assert_eq!(unmatched(&conn), 2);
}

#[test]
fn only_a_reception_on_the_submission_listener_is_an_outbound_record() {
    let conn = db();
    // Mail that arrived on port 25 claiming ada as its sender.
    let mut inbound = sent(SPOOL, PROSPECT, "x@grove.test");
    inbound["meta"] = json!({ "x_listener": "inbound", "mailbox_id": ADA });
    post(&conn, inbound, 1);
    let mut injected = sent("2d98076abbbc11ed940250ebf67f93bd", PROSPECT, "y@grove.test");
    injected["reception_protocol"] = json!("HTTP");
    post(&conn, injected, 1);
    post(&conn, hard_bounce(SPOOL, PROSPECT, 200), 1);
    post(
        &conn,
        hard_bounce("2d98076abbbc11ed940250ebf67f93bd", PROSPECT, 200),
        1,
    );
    assert_eq!(counters(&conn, ADA), (0, 0, 2));
    assert!(!suppressed(&conn, PROSPECT));
}

#[test]
fn a_maildir_delivery_of_incoming_mail_counts_for_nobody() {
    let conn = db();
    let mut local = base("Delivery", SPOOL, "ada@grove.test", "bob@grove.test", 200);
    local["delivery_protocol"] = json!("Maildir");
    post(&conn, local, 1);
    let delivered: i64 = conn
        .query_row("SELECT sum(delivered) FROM mailboxes", [], |r| r.get(0))
        .unwrap();
    assert_eq!((delivered, unmatched(&conn)), (0, 0));
}

#[test]
fn a_dsn_acts_only_for_a_recipient_its_mailbox_wrote_to_lately() {
    let conn = db();
    post(&conn, sent(SPOOL, PROSPECT, "a1@grove.test"), 1);
    // To bob, who never wrote to pat; to ada about someone she never
    // wrote to; to an address that is no mailbox.
    post(&conn, dsn("bob@grove.test", PROSPECT, 200), 2);
    post(&conn, dsn("ada@grove.test", "ceo@prospect.example", 201), 2);
    post(&conn, dsn("nobody@grove.test", PROSPECT, 202), 2);
    assert_eq!(counters(&conn, ADA), (0, 0, 1));
    assert_eq!(counters(&conn, BOB), (0, 0, 1));
    assert!(!suppressed(&conn, PROSPECT));
    assert!(!suppressed(&conn, "ceo@prospect.example"));
    assert_eq!(unmatched(&conn), 3);

    // Eleven days later, past DSN_WINDOW: no longer believable.
    post(&conn, dsn("ada@grove.test", PROSPECT, 300), 12);
    assert_eq!(counters(&conn, ADA), (0, 0, 2));
    assert!(!suppressed(&conn, PROSPECT));

    // Within the window it is the bounce of that message.
    post(&conn, dsn("ADA@grove.test", PROSPECT, 400), 9);
    assert_eq!(counters(&conn, ADA), (1, 0, 2));
    assert!(suppressed(&conn, PROSPECT));
}

#[test]
fn an_arf_report_acts_only_when_it_quotes_a_message_id_we_sent_to_the_recipient() {
    let conn = db();
    post(&conn, sent(SPOOL, PROSPECT, "a1@grove.test"), 1);
    let quoted =
        |id: &str| format!("From: ada@grove.test\r\nMessage-ID: <{id}>\r\nSubject: hi\r\n\r\n");
    let trace = |rcpt: &str, mailbox: &str| json!({ "_@_": "\\_/", "recipient": rcpt, "x_mailbox_id": mailbox });

    // A Message-ID we never used; ours, but the complaint is for someone
    // else; ours, but the trace names another mailbox; no Message-ID.
    post(
        &conn,
        arf(&quoted("forged@grove.test"), trace(PROSPECT, ADA), 200),
        2,
    );
    post(
        &conn,
        arf(
            &quoted("a1@grove.test"),
            trace("ceo@prospect.example", ADA),
            201,
        ),
        2,
    );
    post(
        &conn,
        arf(&quoted("a1@grove.test"), trace(PROSPECT, BOB), 202),
        2,
    );
    post(
        &conn,
        arf("Subject: hi\r\n\r\n", trace(PROSPECT, ADA), 203),
        2,
    );
    assert_eq!(counters(&conn, ADA).1, 0);
    assert!(!suppressed(&conn, PROSPECT));
    assert!(!suppressed(&conn, "ceo@prospect.example"));
    assert_eq!(unmatched(&conn), 4);

    post(
        &conn,
        arf(&quoted("a1@grove.test"), trace(PROSPECT, ADA), 300),
        30,
    );
    assert_eq!(counters(&conn, ADA).1, 1);
    assert!(suppressed(&conn, PROSPECT));
}
