-- Tiers mean something (issue 12, point 8): each subscription tier of the
-- spec's users table carries limits an admin can edit. NULL is unlimited.
-- Limits bind members; admins run the appliance and are never limited.
--
-- The defaults follow the spec's per-mailbox default of 40 messages a day
-- (technical design, mailboxes.daily_limit): free is a trial of a few
-- domains (3) with five mailboxes each (15), and 15 x 40 = 600 a day;
-- pro is an agency client (25 domains, 250 mailboxes, 250 x 40 = 10,000
-- a day); enterprise is bounded only by the hardware.
CREATE TABLE tiers (
    tier         TEXT PRIMARY KEY CHECK (tier IN ('free', 'pro', 'enterprise')),
    domains      INTEGER CHECK (domains >= 0),
    mailboxes    INTEGER CHECK (mailboxes >= 0),
    daily_volume INTEGER CHECK (daily_volume >= 0),
    updated_at   TEXT
) STRICT;
INSERT INTO tiers (tier, domains, mailboxes, daily_volume) VALUES
    ('free', 3, 15, 600),
    ('pro', 25, 250, 10000),
    ('enterprise', NULL, NULL, NULL);

-- Messages a user's mailboxes were allowed today, all mailboxes together:
-- one row per user, reset by the first send of a new day (the sending
-- day's time zone, like mailboxes.last_reset_date), so send-check reads
-- one row instead of summing the user's mailboxes. WITHOUT ROWID: the key
-- is the row, so each counted message writes one page, not a row and an
-- index entry (sqlite.org/withoutrowid.html).
CREATE TABLE user_daily_sends (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    day     TEXT NOT NULL,
    sent    INTEGER NOT NULL CHECK (sent >= 0)
) STRICT, WITHOUT ROWID;
