-- The foundation schema. Ids are UUID text; timestamps are UTC text written
-- by rusqlite's chrono mapping ("YYYY-MM-DD HH:MM:SS.fff+00:00"), which sorts
-- lexically in time order. Secret columns are BLOBs sealed by the vault with
-- (table, column, id) as associated data.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    subscription_tier TEXT NOT NULL DEFAULT 'free'
                      CHECK (subscription_tier IN ('free', 'pro', 'enterprise')),
    disabled_at       TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
) STRICT;

-- A login session: one family of rotating refresh tokens. Revoking it ends
-- the access tokens that carry its id too.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    expires_at TEXT NOT NULL,
    spent_at   TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    expires_at   TEXT,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- A sending domain. Its DNS is published through Cloudflare (dns_mode
-- 'cloudflare') or by the person (dns_mode 'manual'); either way the
-- planned records are verified against the zone's authoritative servers.
-- pending -> publishing -> verifying -> active, or awaiting_dns -> active
-- in manual mode; failed keeps the reason in last_error.
CREATE TABLE domains (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    domain_name           TEXT NOT NULL UNIQUE,
    status                TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'publishing', 'verifying',
                                            'awaiting_dns', 'active', 'failed')),
    dns_mode              TEXT NOT NULL CHECK (dns_mode IN ('cloudflare', 'manual')),
    cloudflare_zone_id    TEXT,
    cloudflare_account_id TEXT,
    -- Sealed; NULL means "use the server's default token".
    cloudflare_api_token  BLOB,
    -- JSON array of the nameservers the provider assigned to the zone.
    zone_name_servers     TEXT NOT NULL DEFAULT '[]',
    tracking_domain       TEXT,
    spf_record            TEXT,
    dmarc_policy          TEXT NOT NULL DEFAULT 'none'
                          CHECK (dmarc_policy IN ('none', 'quarantine', 'reject')),
    last_error            TEXT,
    -- When DNS checks began; they give up 48 hours later.
    checks_since          TEXT,
    verified_at           TEXT,
    activated_at          TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
) STRICT;
CREATE INDEX domains_user ON domains (user_id);

-- The record plan of a domain, one row per record, with what DNS last
-- answered for it.
CREATE TABLE domain_records (
    domain_id   TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    purpose     TEXT NOT NULL,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL,
    content     TEXT NOT NULL,
    priority    INTEGER,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'published', 'verified', 'mismatch', 'missing')),
    -- JSON array of the answers DNS gave at the last check.
    observed    TEXT NOT NULL DEFAULT '[]',
    checked_at  TEXT,
    PRIMARY KEY (domain_id, position)
) STRICT;

-- DKIM keys live here only (the spec also lists them on domains; one home
-- keeps rotation simple). States follow staged rotation:
-- pending -> active -> retiring -> retired.
CREATE TABLE dkim_keys (
    id          TEXT PRIMARY KEY,
    domain_id   TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector    TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'active'
                CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
    created_at  TEXT NOT NULL,
    rotated_at  TEXT,
    UNIQUE (domain_id, selector)
) STRICT;

CREATE TABLE mailboxes (
    id                TEXT PRIMARY KEY,
    domain_id         TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username          TEXT NOT NULL,
    password_hash     TEXT NOT NULL,
    -- The password itself, sealed, kept only so it can be exported to a
    -- sequencer later.
    password_sealed   BLOB,
    daily_limit       INTEGER NOT NULL DEFAULT 40 CHECK (daily_limit > 0),
    emails_sent_today INTEGER NOT NULL DEFAULT 0 CHECK (emails_sent_today >= 0),
    last_reset_date   TEXT,
    health_score      REAL NOT NULL DEFAULT 100 CHECK (health_score BETWEEN 0 AND 100),
    status            TEXT NOT NULL DEFAULT 'warming'
                      CHECK (status IN ('active', 'warming', 'paused', 'blacklisted')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (domain_id, username)
) STRICT;
CREATE INDEX mailboxes_user ON mailboxes (user_id);

CREATE TABLE oauth_accounts (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider         TEXT NOT NULL CHECK (provider IN ('google', 'microsoft', 'custom')),
    account_email    TEXT NOT NULL,
    refresh_token    BLOB,
    access_token     BLOB,
    token_expires_at TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (user_id, provider, account_email)
) STRICT;

CREATE TABLE warmup_campaigns (
    id              TEXT PRIMARY KEY,
    mailbox_id      TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    campaign_day    INTEGER NOT NULL CHECK (campaign_day >= 1),
    scheduled_sends INTEGER NOT NULL DEFAULT 0,
    actual_sends    INTEGER NOT NULL DEFAULT 0,
    opens           INTEGER NOT NULL DEFAULT 0,
    replies         INTEGER NOT NULL DEFAULT 0,
    bounces         INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'completed')),
    created_at      TEXT NOT NULL,
    UNIQUE (mailbox_id, campaign_day)
) STRICT;

-- Paged newest first by (created_at, id).
CREATE TABLE audit_logs (
    id            TEXT PRIMARY KEY,
    user_id       TEXT REFERENCES users (id) ON DELETE SET NULL,
    action        TEXT NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('success', 'failure')),
    metadata      TEXT NOT NULL DEFAULT '{}',
    client_ip     TEXT,
    request_id    TEXT,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX audit_logs_time ON audit_logs (created_at, id);
CREATE INDEX audit_logs_user ON audit_logs (user_id, created_at, id);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL DEFAULT '{}',
    unique_key   TEXT,
    state        TEXT NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    run_at       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    last_error   TEXT,
    locked_by    TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
) STRICT;
CREATE INDEX jobs_due ON jobs (state, run_at);
-- At most one pending or running job per unique key (periodic jobs).
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
