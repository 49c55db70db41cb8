//! One representative row per table, written into a database an older
//! binary left (see `tests.rs`). Each row names the columns its table had
//! when its migration created it, every one with a value a real appliance
//! would hold, so a later migration that loses or rewrites a column shows.
//! A new table gets its row here; the upgrade test refuses a table without
//! one, and a row that leaves out a column of its table's first version.

use rusqlite::types::ValueRef;

pub(super) const USER: &str = "0195a3c2-7e41-7b2a-9c1d-2f4e6a8b0c11";
pub(super) const SESSION: &str = "0195a3c2-9a10-7c3b-8d2e-3a5f7b9c1d22";
pub(super) const DOMAIN: &str = "0195a3c3-1b22-7d4c-9e3f-4b6a8c0d2e33";
pub(super) const MAILBOX: &str = "0195a3c3-4c33-7e5d-8f4a-5c7b9d1e3f44";
pub(super) const PEER: &str = "0195a3c5-0a00-7000-8000-000000000012";
pub(super) const JOB: &str = "0195a3c4-0d44-7f6e-9a5b-6d8c0e2f4a55";
pub(super) const REFRESH_HASH: &[u8] = &[0x5a; 32];
pub(super) const EXPORT_HASH: &[u8] = &[0x3c; 32];
pub(super) const SETTING: &str = "server.hostname";
pub(super) const SETTING_VALUE: &[u8] = b"\"mail.ada-outreach.com\"";
pub(super) const JOB_PAYLOAD: &str = r#"{"domain_id":"0195a3c3-1b22-7d4c-9e3f-4b6a8c0d2e33"}"#;

pub(super) struct Fixture {
    pub table: &'static str,
    /// The table's own migration seeds its rows, so this one replaces a
    /// seeded row instead of adding one.
    pub seeded: bool,
    pub row: &'static [(&'static str, ValueRef<'static>)],
}

const fn text(s: &'static str) -> ValueRef<'static> {
    ValueRef::Text(s.as_bytes())
}

const fn int(n: i64) -> ValueRef<'static> {
    ValueRef::Integer(n)
}

const fn blob(b: &'static [u8]) -> ValueRef<'static> {
    ValueRef::Blob(b)
}

const fn row(table: &'static str, row: &'static [(&'static str, ValueRef<'static>)]) -> Fixture {
    Fixture {
        table,
        seeded: false,
        row,
    }
}

// Timestamps as rusqlite's chrono mapping writes them (0001's header).
const CREATED: ValueRef<'static> = text("2026-03-01 09:30:00.000+00:00");
const UPDATED: ValueRef<'static> = text("2026-03-04 17:05:12.250+00:00");
const LATER: ValueRef<'static> = text("2026-04-01 09:30:00.000+00:00");
// A value sealed by the vault: nonce and ciphertext, opaque here.
const SEALED: ValueRef<'static> = blob(&[
    0x01, 0x9c, 0x3e, 0x77, 0x10, 0xa4, 0x5b, 0x02, 0xee, 0x41, 0x8d, 0x6f, 0x23, 0x90, 0xc7, 0x18,
    0x55, 0xfa, 0x0b, 0x3d,
]);

/// In creation order: a row's parents come before it (foreign keys are on
/// while fixtures are written, as they are in the server).
pub(super) const FIXTURES: &[Fixture] = &[
    // 0001_foundation
    row(
        "users",
        &[
            ("id", text(USER)),
            ("email", text("ada@ada-outreach.com")),
            (
                "password_hash",
                text("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$b3V0cmVhY2hoYXNo"),
            ),
            ("role", text("member")),
            ("subscription_tier", text("pro")),
            ("disabled_at", text("2026-03-20 08:00:00.000+00:00")),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
        ],
    ),
    row(
        "sessions",
        &[
            ("id", text(SESSION)),
            ("user_id", text(USER)),
            ("created_at", CREATED),
            ("revoked_at", UPDATED),
            ("revoked_reason", text("logout")),
        ],
    ),
    row(
        "refresh_tokens",
        &[
            ("id", text("0195a3c2-9a11-7c3b-8d2e-3a5f7b9c1d23")),
            ("session_id", text(SESSION)),
            ("token_hash", blob(REFRESH_HASH)),
            ("expires_at", LATER),
            ("spent_at", UPDATED),
            ("created_at", CREATED),
        ],
    ),
    row(
        "api_tokens",
        &[
            ("id", text("0195a3c2-b001-7a00-8000-000000000001")),
            ("user_id", text(USER)),
            ("name", text("smartlead sync")),
            ("prefix", text("igk_3f9a")),
            ("token_hash", blob(&[0x7e; 32])),
            ("expires_at", LATER),
            ("created_at", CREATED),
        ],
    ),
    row(
        "domains",
        &[
            ("id", text(DOMAIN)),
            ("user_id", text(USER)),
            ("domain_name", text("ada-outreach.com")),
            ("status", text("active")),
            ("dns_mode", text("cloudflare")),
            (
                "cloudflare_zone_id",
                text("023e105f4ecef8ad9ca31a8372d0c353"),
            ),
            (
                "cloudflare_account_id",
                text("01a7362d577a6c3019a474fd6f485823"),
            ),
            ("cloudflare_api_token", SEALED),
            (
                "zone_name_servers",
                text(r#"["lola.ns.cloudflare.com","rob.ns.cloudflare.com"]"#),
            ),
            ("tracking_domain", text("track.ada-outreach.com")),
            ("spf_record", text("v=spf1 ip4:203.0.113.7 -all")),
            ("dmarc_policy", text("quarantine")),
            ("last_error", text("SERVFAIL from rob.ns.cloudflare.com")),
            ("checks_since", CREATED),
            ("verified_at", UPDATED),
            ("activated_at", UPDATED),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
        ],
    ),
    row(
        "domain_records",
        &[
            ("domain_id", text(DOMAIN)),
            ("position", int(2)),
            ("purpose", text("mx")),
            ("type", text("MX")),
            ("name", text("ada-outreach.com")),
            ("content", text("mail.ada-outreach.com")),
            ("priority", int(10)),
            ("status", text("verified")),
            ("observed", text(r#"["10 mail.ada-outreach.com."]"#)),
            ("checked_at", UPDATED),
        ],
    ),
    row(
        "dkim_keys",
        &[
            ("id", text("0195a3c3-2c00-7000-8000-000000000002")),
            ("domain_id", text(DOMAIN)),
            ("selector", text("ig202603")),
            ("private_key", SEALED),
            (
                "public_key",
                text("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1L7VLPHCgcBIjg"),
            ),
            ("state", text("active")),
            ("created_at", CREATED),
            ("rotated_at", UPDATED),
        ],
    ),
    row(
        "mailboxes",
        &[
            ("id", text(MAILBOX)),
            ("domain_id", text(DOMAIN)),
            ("user_id", text(USER)),
            ("username", text("ada.lovelace")),
            (
                "password_hash",
                text("$argon2id$v=19$m=19456,t=2,p=1$bWJveHNhbHQ$bWFpbGJveGhhc2g"),
            ),
            ("password_sealed", SEALED),
            ("daily_limit", int(35)),
            ("emails_sent_today", int(12)),
            ("last_reset_date", text("2026-03-04")),
            ("health_score", ValueRef::Real(97.5)),
            ("status", text("active")),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
        ],
    ),
    row(
        "oauth_accounts",
        &[
            ("id", text("0195a3c3-5d00-7000-8000-000000000003")),
            ("user_id", text(USER)),
            ("provider", text("google")),
            ("account_email", text("ada.lovelace@gmail.com")),
            ("refresh_token", SEALED),
            ("access_token", SEALED),
            ("token_expires_at", UPDATED),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
        ],
    ),
    row(
        "warmup_campaigns",
        &[
            ("id", text("0195a3c3-6e00-7000-8000-000000000004")),
            ("mailbox_id", text(MAILBOX)),
            ("campaign_day", int(3)),
            ("scheduled_sends", int(12)),
            ("actual_sends", int(11)),
            ("opens", int(6)),
            ("replies", int(2)),
            ("bounces", int(1)),
            ("status", text("running")),
            ("created_at", CREATED),
        ],
    ),
    row(
        "audit_logs",
        &[
            ("id", text("0195a3c3-7f00-7000-8000-000000000005")),
            ("user_id", text(USER)),
            ("action", text("domain.create")),
            ("resource_type", text("domain")),
            ("resource_id", text(DOMAIN)),
            ("status", text("success")),
            ("metadata", text(r#"{"domain_name":"ada-outreach.com"}"#)),
            ("client_ip", text("198.51.100.23")),
            ("request_id", text("0195a3c3-7f01-7000-8000-000000000006")),
            ("created_at", CREATED),
        ],
    ),
    row(
        "jobs",
        &[
            ("id", text(JOB)),
            ("kind", text("domain.verify")),
            ("payload", text(JOB_PAYLOAD)),
            ("unique_key", text("domain.verify:ada-outreach.com")),
            ("state", text("failed")),
            ("run_at", CREATED),
            ("attempts", int(5)),
            ("max_attempts", int(5)),
            ("last_error", text("SERVFAIL from rob.ns.cloudflare.com")),
            ("locked_by", text("inboxgrove-4711")),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
            ("finished_at", UPDATED),
        ],
    ),
    row(
        "settings",
        &[
            ("key", text(SETTING)),
            ("value", blob(SETTING_VALUE)),
            ("updated_at", UPDATED),
        ],
    ),
    // 0002_inboxes
    row(
        "suppressions",
        &[
            ("user_id", text(USER)),
            ("address", text("jane.doe@prospect.example")),
            ("reason", text("unsubscribe")),
            ("created_at", UPDATED),
        ],
    ),
    row(
        "mail_events",
        &[
            (
                "idempotency_key",
                text("kumo:2b1f0c6e9d7a4e5f:TransientFailure:1"),
            ),
            ("kind", text("TransientFailure")),
            ("message_id", text("2b1f0c6e9d7a4e5f8a3b1c2d3e4f5a6b")),
            ("mailbox_id", text(MAILBOX)),
            ("sender", text("ada.lovelace@ada-outreach.com")),
            ("recipient", text("jane.doe@prospect.example")),
            ("response_code", int(451)),
            ("response_text", text("4.7.1 Try again later")),
            ("bounce", text("soft")),
            ("complaint", int(0)),
            ("at", UPDATED),
            ("received_at", UPDATED),
        ],
    ),
    // 0003_exports
    row(
        "exports",
        &[
            ("id", text("0195a3c4-1a00-7000-8000-000000000007")),
            ("user_id", text(USER)),
            ("token_hash", blob(EXPORT_HASH)),
            ("format", text("smartlead")),
            ("include_passwords", int(1)),
            (
                "mailbox_ids",
                text(r#"["0195a3c3-4c33-7e5d-8f4a-5c7b9d1e3f44"]"#),
            ),
            ("rows", int(1)),
            ("created_at", CREATED),
            ("expires_at", LATER),
        ],
    ),
    // 0004_integrations
    row(
        "integration_keys",
        &[
            ("user_id", text(USER)),
            ("tool", text("instantly")),
            ("key_sealed", SEALED),
            ("hint", text("x9Qa")),
            ("updated_at", UPDATED),
        ],
    ),
    // 0005_event_ingest
    row(
        "quarantined_events",
        &[
            (
                "digest",
                text("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
            ),
            ("error", text("missing field `queue` at line 1 column 42")),
            ("raw", text(r#"{"type":"Delivery","id":"2b1f0c6e"}"#)),
            ("received_at", UPDATED),
        ],
    ),
    // 0008_unmatched_reports
    row(
        "outbound_messages",
        &[
            ("spool_id", text("2b1f0c6e9d7a4e5f8a3b1c2d3e4f5a6b")),
            ("recipient", text("jane.doe@prospect.example")),
            ("mailbox_id", text(MAILBOX)),
            ("message_id", text("<20260304170512.1@ada-outreach.com>")),
            ("at", UPDATED),
        ],
    ),
    // 0010_auth_generation: the counter after some sign-in changes.
    Fixture {
        table: "auth_generation",
        seeded: true,
        row: &[("id", int(1)), ("n", int(7))],
    },
    // 0011_tiers: an admin raised the pro plan; a user's count today.
    Fixture {
        table: "tiers",
        seeded: true,
        row: &[
            ("tier", text("pro")),
            ("domains", int(40)),
            ("mailboxes", int(400)),
            ("daily_volume", int(16000)),
            ("updated_at", UPDATED),
        ],
    },
    row(
        "user_daily_sends",
        &[
            ("user_id", text(USER)),
            ("day", text("2026-03-04")),
            ("sent", int(12)),
        ],
    ),
    // 0012_certificates: the mail bundle, issued and due in two months.
    row(
        "certificates",
        &[
            ("id", text("mail-1")),
            ("names", text(r#"["mail.ada-outreach.com"]"#)),
            ("status", text("valid")),
            ("issued_names", text(r#"["mail.ada-outreach.com"]"#)),
            (
                "chain_pem",
                text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
            ),
            ("private_key", SEALED),
            ("serial", text("04a1f3c2")),
            ("not_after", text("2026-06-02 09:30:00.000+00:00")),
            ("issued_at", UPDATED),
            ("renew_after", text("2026-05-02 01:10:00.000+00:00")),
            ("last_error", text("pebble: rate limited")),
            ("needs_reload", int(0)),
            ("created_at", CREATED),
            ("updated_at", UPDATED),
        ],
    ),
    // 0013_warmup: a mailbox on day 3 of its ramp, a shared Gmail peer, and
    // a message it sent the peer that landed in the inbox and was answered.
    row(
        "warmup_mailboxes",
        &[
            ("mailbox_id", text(MAILBOX)),
            ("enabled", int(1)),
            ("paused", int(0)),
            (
                "settings",
                text(r#"{"variation_pct":20,"reply_rate_pct":30}"#),
            ),
            ("seed", int(7_301_992)),
            ("started_on", text("2026-03-02")),
            ("ramp_step", int(3)),
            ("frozen_until", text("2026-03-06 10:00:00.000+00:00")),
            ("ready_at", text("2026-03-20 00:20:00.000+00:00")),
            ("updated_at", UPDATED),
        ],
    ),
    row(
        "warmup_peers",
        &[
            ("id", text(PEER)),
            ("user_id", text(USER)),
            ("kind", text("imap")),
            ("email", text("ada.peer@gmail.com")),
            ("display_name", text("Ada Peer")),
            ("provider", text("gmail")),
            ("imap_host", text("imap.gmail.com")),
            ("imap_port", int(993)),
            ("smtp_host", text("smtp.gmail.com")),
            ("smtp_port", int(587)),
            ("imap_implicit_tls", int(1)),
            ("smtp_implicit_tls", int(0)),
            ("username", text("ada.peer@gmail.com")),
            ("password_sealed", SEALED),
            ("shared", int(1)),
            ("receive_only", int(0)),
            ("status", text("active")),
            ("last_error", text("IMAP login failed: timed out")),
            ("checked_at", UPDATED),
            ("created_at", CREATED),
        ],
    ),
    row(
        "warmup_messages",
        &[
            ("id", text("0195a3c5-1e00-7000-8000-000000000013")),
            ("message_id", text("<3f2a9c1d@ada-outreach.com>")),
            ("day", text("2026-03-04")),
            ("counts_for", text(MAILBOX)),
            ("sender_mailbox", text(MAILBOX)),
            ("sender_peer", ValueRef::Null),
            ("recipient_mailbox", ValueRef::Null),
            ("recipient_peer", text(PEER)),
            ("sender_email", text("ada@ada-outreach.com")),
            ("recipient_email", text("ada.peer@gmail.com")),
            ("reply_to", ValueRef::Null),
            (
                "subject",
                text("Quick question about the offsite | K7Q2M9X"),
            ),
            (
                "body",
                text("Hi Ada,\n\nDo you have the agenda?\n\nBest,\nAda"),
            ),
            ("scheduled_at", text("2026-03-04 09:14:37.000+00:00")),
            ("status", text("sent")),
            ("sent_at", text("2026-03-04 09:14:38.000+00:00")),
            ("error", text("451 4.7.0 try again later")),
            ("engage_at", text("2026-03-04 09:52:11.000+00:00")),
            ("placement", text("inbox")),
            ("engaged_at", text("2026-03-04 09:52:12.000+00:00")),
            ("rescued", int(0)),
            ("flagged", int(1)),
            ("replied", int(1)),
            ("expunged", int(0)),
            ("created_at", CREATED),
        ],
    ),
];
