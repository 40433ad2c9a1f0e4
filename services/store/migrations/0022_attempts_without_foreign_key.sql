-- The delivery log's foreign key to the outbox cost every recorded attempt a lookup through
-- SPI and a KEY SHARE lock (a WAL record) on the outbox row the same statement had just
-- settled: about a tenth of PostgreSQL's work per message in `scheduler-bench`. Attempts are
-- written only by the dispatcher's finisher, in the statement that settles their own outbox
-- row, and outbox rows are never deleted, so the reference cannot dangle.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outbox_id_fkey;
