-- A counter that every change to who may sign in raises: a user changed
-- (role, disabled, password), a session revoked or purged, an API token
-- deleted. The server caches verified tokens and sessions and drops the
-- cache when the counter moves, so a logout, revocation or disable still
-- takes effect on the next request. Triggers raise it whichever process
-- writes (the server or a CLI command), so no code path can forget to.
-- New rows (a login, a new token) change nothing already cached.
CREATE TABLE auth_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO auth_generation (id, n) VALUES (1, 0);

CREATE TRIGGER users_changed_auth AFTER UPDATE ON users
BEGIN UPDATE auth_generation SET n = n + 1; END;
CREATE TRIGGER users_deleted_auth AFTER DELETE ON users
BEGIN UPDATE auth_generation SET n = n + 1; END;
CREATE TRIGGER sessions_changed_auth AFTER UPDATE ON sessions
BEGIN UPDATE auth_generation SET n = n + 1; END;
CREATE TRIGGER sessions_deleted_auth AFTER DELETE ON sessions
BEGIN UPDATE auth_generation SET n = n + 1; END;
CREATE TRIGGER api_tokens_changed_auth AFTER UPDATE ON api_tokens
BEGIN UPDATE auth_generation SET n = n + 1; END;
CREATE TRIGGER api_tokens_deleted_auth AFTER DELETE ON api_tokens
BEGIN UPDATE auth_generation SET n = n + 1; END;
