-- junheng scheduler, second step. Owned by the `junheng-scheduler` crate; append-only.

-- Resends made through the gRPC API remember which delivery they copy, so an idempotency key
-- re-used for a different delivery is refused instead of answering with the first copy.
ALTER TABLE outbox ADD COLUMN resend_of uuid;

-- The claim orders due rows by (not_before, id). With only (not_before) indexed, a burst of
-- rows due at one instant (100,000 reminders at 08:30) made every claim sort the whole burst;
-- this index lets `ORDER BY not_before, id LIMIT n FOR UPDATE SKIP LOCKED` stop after n rows.
CREATE INDEX outbox_due_order ON outbox (not_before, id) WHERE status IN ('pending', 'held');
DROP INDEX outbox_due;
