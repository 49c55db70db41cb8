-- Every KumoMTA log record is taken (issue: the mail path, for real).

-- Refusals counted per mailbox from KumoMTA's Rejection records: logins
-- refused for a mailbox's address, and messages refused in its sessions.
ALTER TABLE mailboxes ADD COLUMN refused_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN refused_messages INTEGER NOT NULL DEFAULT 0;

-- Records the appliance could not read, kept aside with the reason instead
-- of bouncing the batch they came in. `digest` (SHA-256 of `raw`) makes a
-- retried batch add nothing; `raw` never holds a SASL payload.
CREATE TABLE quarantined_events (
    digest      TEXT PRIMARY KEY,
    error       TEXT NOT NULL,
    raw         TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;
