-- Credential exports: a link (its token stored hashed) to a CSV built on
-- download from the mailboxes it names.
CREATE TABLE exports (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash        BLOB NOT NULL UNIQUE,
    format            TEXT NOT NULL,
    include_passwords INTEGER NOT NULL,
    -- JSON array of mailbox ids.
    mailbox_ids       TEXT NOT NULL,
    rows              INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL
) STRICT;
