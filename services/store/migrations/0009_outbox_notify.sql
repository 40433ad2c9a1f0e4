-- Wakes the scheduler's dispatcher from the transaction that enqueues outbox rows, so a row
-- that is due (or due soon) is claimed as soon as it is committed instead of at the next poll.
-- One notification per statement (the payload is empty: listeners re-read the outbox), and
-- PostgreSQL folds identical notifications of one transaction into one, so a planning pass
-- that inserts thousands of rows in batches wakes the dispatcher once per batch at most.
CREATE FUNCTION junheng_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('junheng_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION junheng_outbox_notify();
