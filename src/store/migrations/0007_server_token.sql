-- Whether a member may have the server-wide Cloudflare token publish their
-- domains (issue 12, point 1). Off by default; admins always may, so the
-- column means nothing for them.
ALTER TABLE users ADD COLUMN may_use_server_token INTEGER NOT NULL DEFAULT 0
    CHECK (may_use_server_token IN (0, 1));
