-- Reports must be ours (issue 12, point 5). A Bounce, DSN or ARF report
-- acts only when it matches a message this appliance sent to that
-- recipient; anything else is kept with `unmatched = 1` and acts on
-- nothing.

-- One row per recipient of each message submitted on port 587, from its
-- KumoMTA Reception record: the spool id every later outcome carries, and
-- the Message-ID header that an ARF report quotes. `recipient` is
-- lower-cased; `at` is when the appliance stored it (its own clock).
CREATE TABLE outbound_messages (
    spool_id   TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    message_id TEXT,
    at         TEXT NOT NULL,
    PRIMARY KEY (spool_id, recipient)
) STRICT;
CREATE INDEX outbound_messages_header ON outbound_messages (message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX outbound_messages_pair ON outbound_messages (mailbox_id, recipient, at);

-- An outcome logged before its Reception reached the appliance (the log
-- hook retries each record with its own jitter) waits here, found by its
-- spool id, and acts once the Reception arrives.
ALTER TABLE mail_events ADD COLUMN unmatched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX mail_events_unmatched ON mail_events (message_id) WHERE unmatched = 1;

-- Reports naming a mailbox that matched nothing it sent, shown on it.
ALTER TABLE mailboxes ADD COLUMN unmatched_reports INTEGER NOT NULL DEFAULT 0;
