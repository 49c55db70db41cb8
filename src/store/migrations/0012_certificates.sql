-- Certificates from an ACME CA (issue 13, point 4): one row per bundle, a
-- certificate for up to 100 names (Let's Encrypt's limit) with a stable id
-- ('admin', 'mail-1', 'mail-2' ...). `names` is what the bundle should
-- cover now; `issued_names` what its current certificate covers. The
-- chain and its key (sealed, slot certificates.private_key of the row) are
-- kept here as well as in tls_dir, so a restored data dir rewrites tls_dir.
-- `needs_reload`: installed in tls_dir, but KumoMTA and Dovecot have not
-- been told yet (the next run tells them).
CREATE TABLE certificates (
    id           TEXT PRIMARY KEY,
    names        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'failed')),
    issued_names TEXT,
    chain_pem    TEXT,
    private_key  BLOB,
    serial       TEXT,
    not_after    TEXT,
    issued_at    TEXT,
    renew_after  TEXT,
    last_error   TEXT,
    needs_reload INTEGER NOT NULL DEFAULT 0 CHECK (needs_reload IN (0, 1)),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
