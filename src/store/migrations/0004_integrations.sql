-- Sequencer API keys a user chose to keep, sealed in the vault (AAD:
-- integration_keys.key_sealed.<user_id>:<tool>). `hint` is the key's last
-- four characters, so a person can tell which key is saved.
CREATE TABLE integration_keys (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool       TEXT NOT NULL,
    key_sealed BLOB NOT NULL,
    hint       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, tool)
) STRICT;
