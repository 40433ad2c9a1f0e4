-- Web sessions of the pages (leadership dashboard, office desk): a signed-in browser holds a
-- random session id in an HttpOnly cookie; only its SHA-256 digest is stored here, with the
-- token it was exchanged for (re-checked on every request, so revoking the token ends the
-- session), the per-session CSRF token every form carries, and its expiry on the service's clock.
CREATE TABLE web_sessions (
    id_digest  bytea PRIMARY KEY,
    token_id   uuid NOT NULL REFERENCES tokens (id),
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at   timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);
