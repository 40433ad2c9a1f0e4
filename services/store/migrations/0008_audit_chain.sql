-- The audit trail proves itself: a SHA-256 hash chain per campaign over `events`, kept by a
-- trigger nobody but the owner can drop, and the privileges of the runtime role.
--
-- Chain. Every event carries its position in its campaign's chain (`chain_seq`, 1, 2, …), the
-- hash of the event before it (`prev_hash`; for the first event the campaign's genesis hash)
-- and its own hash over a canonical encoding of the row including `prev_hash`
-- (`junheng_audit_hash`, re-implemented independently by the verifier in
-- `junheng_store::audit::verify`). Events that belong to no campaign (the clock, the
-- scheduler's endpoints and deliveries without a campaign) live in the system chain, campaign
-- id 00000000-0000-0000-0000-000000000000.
--
-- Genesis. prev_hash of a chain's first event = hex(sha256('junheng-audit-genesis:' ||
-- campaign id)). Events that existed before this migration are chained here, per campaign in
-- id order, starting from the genesis: the chain proves they have not changed since this
-- migration ran, not before.
--
-- Serialisation. Appends to one campaign are serialised by the row of `audit_chain_heads`
-- (the chain's tip): the trigger updates it, so a second transaction appending to the same
-- campaign waits until the first commits and then links to its last event. The lock is taken
-- at the first event a transaction writes and held to commit; the unique index on
-- (campaign_id, chain_seq) makes a fork impossible even if that were bypassed.

ALTER TABLE events
    ADD COLUMN chain_seq bigint,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;

CREATE TABLE audit_chain_heads (
    campaign_id  uuid PRIMARY KEY,
    seq          bigint NOT NULL,
    hash         text NOT NULL
);

CREATE FUNCTION junheng_audit_genesis(campaign uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(sha256(convert_to('junheng-audit-genesis:' || campaign::text, 'UTF8')), 'hex')
$$;

-- One field of the canonical encoding: `-\n` for NULL, else `<octets>:<text>\n`.
CREATE FUNCTION junheng_audit_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN E'-\n' ELSE octet_length(v)::text || ':' || v || E'\n' END
$$;

-- The canonical encoding (v1) and its hash. Fields in this order, each as junheng_audit_field:
-- prev_hash, chain_seq, id, campaign_id, xid, school_id, actor, role, action, before (jsonb
-- text), after (jsonb text), reason, request_id, occurred_at (microseconds since the Unix
-- epoch), after the line `junheng-audit-v1`.
CREATE FUNCTION junheng_audit_hash(e events) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(
        E'junheng-audit-v1\n'
        || junheng_audit_field(e.prev_hash)
        || junheng_audit_field(e.chain_seq::text)
        || junheng_audit_field(e.id::text)
        || junheng_audit_field(e.campaign_id::text)
        || junheng_audit_field(e.xid::text)
        || junheng_audit_field(e.school_id::text)
        || junheng_audit_field(e.actor)
        || junheng_audit_field(e.role)
        || junheng_audit_field(e.action)
        || junheng_audit_field(e.before::text)
        || junheng_audit_field(e.after::text)
        || junheng_audit_field(e.reason)
        || junheng_audit_field(e.request_id)
        || junheng_audit_field((extract(epoch FROM e.occurred_at) * 1000000)::bigint::text),
        'UTF8')), 'hex')
$$;

-- Chain the existing events (the append-only trigger is off for this one statement block).
ALTER TABLE events DISABLE TRIGGER events_append_only;
DO $$
DECLARE
    r events%ROWTYPE;
    cur uuid;
    seq bigint := 0;
    prev text;
BEGIN
    FOR r IN SELECT * FROM events ORDER BY campaign_id, id LOOP
        IF cur IS DISTINCT FROM r.campaign_id THEN
            IF cur IS NOT NULL THEN
                INSERT INTO audit_chain_heads (campaign_id, seq, hash) VALUES (cur, seq, prev);
            END IF;
            cur := r.campaign_id;
            seq := 0;
            prev := junheng_audit_genesis(cur);
        END IF;
        seq := seq + 1;
        r.chain_seq := seq;
        r.prev_hash := prev;
        r.hash := junheng_audit_hash(r);
        UPDATE events SET chain_seq = r.chain_seq, prev_hash = r.prev_hash, hash = r.hash
            WHERE id = r.id;
        prev := r.hash;
    END LOOP;
    IF cur IS NOT NULL THEN
        INSERT INTO audit_chain_heads (campaign_id, seq, hash) VALUES (cur, seq, prev);
    END IF;
END $$;
ALTER TABLE events ENABLE TRIGGER events_append_only;

ALTER TABLE events
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX events_chain ON events (campaign_id, chain_seq);

-- Links each new event to its chain. SECURITY DEFINER: the runtime role writes events but
-- never the chain heads; whatever chain values an INSERT supplies are overwritten.
CREATE FUNCTION events_link_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE audit_chain_heads SET seq = seq + 1 WHERE campaign_id = NEW.campaign_id
        RETURNING seq, hash INTO NEW.chain_seq, NEW.prev_hash;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_heads (campaign_id, seq, hash)
            VALUES (NEW.campaign_id, 0, junheng_audit_genesis(NEW.campaign_id))
            ON CONFLICT (campaign_id) DO NOTHING;
        UPDATE audit_chain_heads SET seq = seq + 1 WHERE campaign_id = NEW.campaign_id
            RETURNING seq, hash INTO NEW.chain_seq, NEW.prev_hash;
    END IF;
    NEW.hash := junheng_audit_hash(NEW);
    UPDATE audit_chain_heads SET hash = NEW.hash WHERE campaign_id = NEW.campaign_id;
    RETURN NEW;
END $$;
CREATE TRIGGER events_chain BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_link_chain();

-- Privileges. Nobody but the owner (the role that runs migrations) may change the audit
-- table; the runtime role gets what `junheng_grant_runtime` gives it, which the migrate step
-- calls after every migration when the service runs as a different role.
REVOKE ALL ON events, audit_chain_heads FROM PUBLIC;
REVOKE ALL ON FUNCTION events_link_chain() FROM PUBLIC;

-- The runtime role: the normal privileges on every table and sequence of this schema, but on
-- `events` only SELECT and INSERT, on `audit_chain_heads` only SELECT, and on the migration
-- history only SELECT. Idempotent; grants nothing that lets it alter a table or its
-- triggers (that needs ownership).
CREATE FUNCTION junheng_grant_runtime(runtime name) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t record;
    s text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, runtime);
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = s AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %I', s, t.relname, runtime);
        IF t.relname IN ('events', 'audit_chain_heads', '_sqlx_migrations') THEN
            EXECUTE format('GRANT SELECT ON TABLE %I.%I TO %I', s, t.relname, runtime);
            IF t.relname = 'events' THEN
                EXECUTE format('GRANT INSERT ON TABLE %I.%I TO %I', s, t.relname, runtime);
            END IF;
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I.%I TO %I',
                           s, t.relname, runtime);
        END IF;
    END LOOP;
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = s AND c.relkind = 'S' LOOP
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO %I', s, t.relname, runtime);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION junheng_grant_runtime(name) FROM PUBLIC;
