-- junheng scheduler, fourth step. Owned by the `junheng-scheduler` crate; append-only.

-- The dispatcher's invariant, so far kept by code alone (0005): `lease_until` is set exactly
-- while `status = 'sending'`. The claim finds expired leases through `outbox_lease`
-- (lease_until IS NOT NULL): a `sending` row without a lease would never be claimed again
-- (lost), and a lease left on another status would make the claim take a finished row.
-- Now the database refuses either.

-- Rows that broke it before (none is known): a stray lease is dropped, and a `sending` row
-- without one goes back to `pending`, to be claimed and sent with its id.
UPDATE outbox SET lease_until = NULL WHERE status <> 'sending' AND lease_until IS NOT NULL;
UPDATE outbox SET status = 'pending' WHERE status = 'sending' AND lease_until IS NULL;

ALTER TABLE outbox ADD CONSTRAINT outbox_lease_while_sending
    CHECK ((status = 'sending') = (lease_until IS NOT NULL));
