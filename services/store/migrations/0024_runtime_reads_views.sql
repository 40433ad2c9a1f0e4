-- The runtime role may read the schema's views. `junheng_grant_runtime` (0008) granted on
-- tables and sequences only, so the scheduler, running as the runtime role, would be refused
-- `delivery_log` (0023): GetDelivery and the metrics scrape would fail in a deployment while
-- every test running as the owner passed (found in review before any release had 0023). Same function, plus SELECT on every view; the migrate
-- step calls it after the migrations, as before.
CREATE OR REPLACE FUNCTION junheng_grant_runtime(runtime name) RETURNS void
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
    -- Views (0023's `delivery_log`): read-only, whatever they read from.
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = s AND c.relkind = 'v' LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %I', s, t.relname, runtime);
        EXECUTE format('GRANT SELECT ON TABLE %I.%I TO %I', s, t.relname, runtime);
    END LOOP;
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = s AND c.relkind = 'S' LOOP
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO %I', s, t.relname, runtime);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION junheng_grant_runtime(name) FROM PUBLIC;
