-- Inboxes and the KumoMTA control plane.

-- The person behind a mailbox (sequencer exports need the names) and the
-- counters the control plane keeps from KumoMTA's log records.
ALTER TABLE mailboxes ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE mailboxes ADD COLUMN total_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN bounced_hard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN bounced_soft INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN complaints INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN last_send_at TEXT;
CREATE INDEX mailboxes_domain_status ON mailboxes (domain_id, status);

-- Addresses an owner must never send to again (one-click unsubscribes,
-- complaints, hard bounces). Addresses are stored lower-cased.
CREATE TABLE suppressions (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, address)
) STRICT;

-- KumoMTA log records as received; the key makes a re-post a no-op.
CREATE TABLE mail_events (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    mailbox_id      TEXT,
    sender          TEXT,
    recipient       TEXT,
    response_code   INTEGER,
    response_text   TEXT,
    bounce          TEXT CHECK (bounce IN ('hard', 'soft')),
    complaint       INTEGER NOT NULL DEFAULT 0,
    at              TEXT NOT NULL,
    received_at     TEXT NOT NULL
) STRICT;
CREATE INDEX mail_events_mailbox ON mail_events (mailbox_id, at);
