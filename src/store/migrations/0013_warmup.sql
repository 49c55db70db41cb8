-- The warmup engine (issue 14): per-mailbox settings and ramp state,
-- external peer accounts, every warmup message planned or sent, and the
-- day rows of the spec's warmup_campaigns with where the mail landed.

-- One row per generated mailbox that takes part in warmup. `settings` is
-- the JSON of warmup::Settings (validated before it is written); `seed`
-- makes the daily variation and the send times reproducible per mailbox;
-- `ramp_step` is the ramp day reached (a frozen ramp does not advance);
-- `frozen_until` is set by a spam placement (72 h).
CREATE TABLE warmup_mailboxes (
    mailbox_id   TEXT PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    paused       INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    settings     TEXT NOT NULL,
    seed         INTEGER NOT NULL,
    started_on   TEXT NOT NULL,
    ramp_step    INTEGER NOT NULL DEFAULT 0 CHECK (ramp_step >= 0),
    frozen_until TEXT,
    ready_at     TEXT,
    updated_at   TEXT NOT NULL
) STRICT;

-- Mailboxes elsewhere (Gmail/Outlook with an app password, Zoho, another
-- server) that warm up with this appliance's mailboxes. `kind` 'imap' is
-- IMAP+SMTP with a password; OAuth accounts (issue 16) plug in as another
-- kind with the same rows of warmup_messages. The password is sealed
-- (warmup_peers.password_sealed, row id). `shared`: an admin lent it to
-- every user; otherwise it serves its owner's mailboxes only.
CREATE TABLE warmup_peers (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL DEFAULT 'imap' CHECK (kind IN ('imap', 'oauth')),
    email           TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    provider        TEXT NOT NULL CHECK (provider IN ('gmail', 'outlook', 'yahoo', 'zoho', 'other')),
    imap_host       TEXT NOT NULL,
    imap_port       INTEGER NOT NULL CHECK (imap_port BETWEEN 1 AND 65535),
    smtp_host       TEXT NOT NULL,
    smtp_port       INTEGER NOT NULL CHECK (smtp_port BETWEEN 1 AND 65535),
    username        TEXT NOT NULL,
    password_sealed BLOB NOT NULL,
    shared          INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),
    receive_only    INTEGER NOT NULL DEFAULT 0 CHECK (receive_only IN (0, 1)),
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'failing')),
    last_error      TEXT,
    checked_at      TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (user_id, email)
) STRICT;

-- Every warmup message, planned before it is sent. A member is a mailbox
-- of this appliance or a peer: exactly one of each pair of ids is set.
-- `counts_for` is the warming mailbox whose day row this message counts
-- in (its sender when the sender is a mailbox). `status`: planned →
-- sending → sent, or skipped (the plan shrank) / failed (with `error`).
-- `sending` left by a crash is never sent again (at most once).
-- `placement` is where the receiving side found it before touching it.
CREATE TABLE warmup_messages (
    id                TEXT PRIMARY KEY,
    -- Set when the message is composed, just before it is sent.
    message_id        TEXT UNIQUE,
    day               TEXT NOT NULL,
    counts_for        TEXT REFERENCES mailboxes (id) ON DELETE CASCADE,
    sender_mailbox    TEXT REFERENCES mailboxes (id) ON DELETE CASCADE,
    sender_peer       TEXT REFERENCES warmup_peers (id) ON DELETE CASCADE,
    recipient_mailbox TEXT REFERENCES mailboxes (id) ON DELETE CASCADE,
    recipient_peer    TEXT REFERENCES warmup_peers (id) ON DELETE CASCADE,
    sender_email      TEXT NOT NULL,
    recipient_email   TEXT NOT NULL,
    reply_to          TEXT REFERENCES warmup_messages (id) ON DELETE SET NULL,
    subject           TEXT,
    -- The plain-text body as sent, quoted by a reply.
    body              TEXT,
    scheduled_at      TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'planned'
                      CHECK (status IN ('planned', 'sending', 'sent', 'skipped', 'failed')),
    sent_at           TEXT,
    error             TEXT,
    engage_at         TEXT,
    placement         TEXT CHECK (placement IN ('inbox', 'spam', 'other', 'missing')),
    engaged_at        TEXT,
    rescued           INTEGER NOT NULL DEFAULT 0 CHECK (rescued IN (0, 1)),
    flagged           INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    replied           INTEGER NOT NULL DEFAULT 0 CHECK (replied IN (0, 1)),
    -- Removed from the recipient's Warmup folder after the retention.
    expunged          INTEGER NOT NULL DEFAULT 0 CHECK (expunged IN (0, 1)),
    created_at        TEXT NOT NULL,
    CHECK ((sender_mailbox IS NULL) != (sender_peer IS NULL)),
    CHECK ((recipient_mailbox IS NULL) != (recipient_peer IS NULL))
) STRICT;
CREATE INDEX warmup_messages_counts_for_day ON warmup_messages (counts_for, day);
CREATE INDEX warmup_messages_sender_mailbox ON warmup_messages (sender_mailbox, recipient_email, sent_at);
CREATE INDEX warmup_messages_sender_peer ON warmup_messages (sender_peer, recipient_email, sent_at);

-- The spec's day rows, with the day's date, the ramp step it planned,
-- and placement as the receiving side recorded it.
ALTER TABLE warmup_campaigns ADD COLUMN day TEXT NOT NULL DEFAULT '';
ALTER TABLE warmup_campaigns ADD COLUMN ramp_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN landed_inbox INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN landed_spam INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN landed_other INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN rescued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN complaints INTEGER NOT NULL DEFAULT 0;
ALTER TABLE warmup_campaigns ADD COLUMN note TEXT;
CREATE UNIQUE INDEX warmup_campaigns_mailbox_day ON warmup_campaigns (mailbox_id, day);

-- Warmup mail a mailbox sent today, counted apart from its campaign
-- mail (emails_sent_today) so warmup never uses up the campaign limit;
-- reset by the first warmup send of a new day like emails_sent_today.
ALTER TABLE mailboxes ADD COLUMN warmup_sent_today INTEGER NOT NULL DEFAULT 0 CHECK (warmup_sent_today >= 0);
ALTER TABLE mailboxes ADD COLUMN warmup_reset_date TEXT;
