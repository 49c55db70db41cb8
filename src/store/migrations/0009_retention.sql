-- Bounded growth (issue 12, point 7).

-- Refused mailbox logins are one audit row per (service, mailbox, source,
-- hour) whose count rises, found again by this key; every other row has
-- none.
ALTER TABLE audit_logs ADD COLUMN aggregate_key TEXT;
CREATE UNIQUE INDEX audit_logs_aggregate ON audit_logs (aggregate_key)
    WHERE aggregate_key IS NOT NULL;

-- The maintenance job deletes the raw rows older than their retention by
-- the time the appliance stored them.
CREATE INDEX mail_events_received ON mail_events (received_at);
CREATE INDEX quarantined_events_received ON quarantined_events (received_at);
CREATE INDEX outbound_messages_at ON outbound_messages (at);
