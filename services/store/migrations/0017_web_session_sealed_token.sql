-- The office's desk calls the scheduler's gRPC as the signed-in person: the token a session was
-- exchanged for is kept with the session, sealed (ChaCha20-Poly1305) under a key derived with
-- HKDF from the random session id, which only the browser's cookie holds (the row keeps only
-- its SHA-256). A request with the cookie can open it; a dump of this table cannot. Sessions
-- from before this migration have none and are asked to sign in again for the desk.
ALTER TABLE web_sessions ADD COLUMN token_sealed bytea;
