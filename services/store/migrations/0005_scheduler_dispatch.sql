-- junheng scheduler, third step. Owned by the `junheng-scheduler` crate; append-only.

-- Found by the burst benchmark: the partial index `outbox_leased` (status = 'sending') made
-- the planner drive the dispatcher's finishing UPDATE … FROM UNNEST(ids) from *every* row in
-- flight (its statistics, taken when nothing was in flight, promised one row), so each batch of
-- results re-read all rows being sent: quadratic in the rows in flight. An index whose
-- predicate the finishing UPDATE cannot imply leaves the planner the primary key. Invariant
-- kept by the dispatcher: lease_until is set exactly while status = 'sending'.
DROP INDEX outbox_leased;
-- Rows the old deferral put back to pending kept their lease_until: clear them first.
UPDATE outbox SET lease_until = NULL WHERE status <> 'sending' AND lease_until IS NOT NULL;
CREATE INDEX outbox_lease ON outbox (lease_until) WHERE lease_until IS NOT NULL;

-- Nothing reads the outbox by obligation (the dispatcher joins from the outbox row), and every
-- claim and finish paid for keeping this index up to date.
DROP INDEX outbox_by_obligation;

-- The dedupe key is an identifier, not prose: byte order is all its unique index needs, and
-- every claim and finish re-inserts into that index (a profile of the dispatcher showed
-- strcoll() of the cluster's C.UTF-8 locale among PostgreSQL's top costs).
ALTER TABLE outbox ALTER COLUMN dedupe_key TYPE text COLLATE "C";

-- An endpoint the vendor reports as gone or misconfigured (robot removed from its group,
-- token revoked, bad secret: CHANNELS.md "disable the channel") is disabled until the office
-- re-enables it over gRPC. Its messages are parked instead of failing one by one, and go out
-- with their own ids once it is enabled again.
CREATE TABLE endpoint_states (
    endpoint     text COLLATE "C" PRIMARY KEY,
    disabled_at  timestamptz NOT NULL,
    reason       text NOT NULL,
    outbox_id    uuid NOT NULL      -- the delivery whose attempt disabled it
);
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'held', 'sending', 'sent', 'dead', 'cancelled', 'parked'));
CREATE INDEX outbox_parked ON outbox (endpoint) WHERE status = 'parked';
