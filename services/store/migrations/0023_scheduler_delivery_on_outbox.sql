-- junheng scheduler: the attempt that delivers a message is recorded on its outbox row.
--
-- Each delivered message cost three row writes: the claim's lease, the finisher's settled
-- row and a `delivery_attempts` row saying it was delivered. The settled row already carries
-- the attempt number (`attempts`) and when the answer arrived (`sent_at`); with who sent it,
-- when the send began and what the vendor answered beside them, the delivering attempt needs
-- no row of its own, and a message costs two writes. `delivery_attempts` keeps every attempt
-- that did not deliver (and a delivery reported by a worker whose lease had been taken over).
-- Rows delivered before this migration keep their `delivery_attempts` row and no `sent_by`.
ALTER TABLE outbox
    ADD COLUMN sent_by         text,         -- the worker whose attempt `attempts` delivered it
    ADD COLUMN sent_started_at timestamptz,  -- when that attempt began
    ADD COLUMN sent_detail     text;         -- what the vendor answered

-- Every attempt of every delivery, wherever it is recorded. Read this, not the tables. An
-- attempt found in both (a finisher that retried a write whose commit had in fact gone
-- through) is listed once, from `delivery_attempts`.
CREATE VIEW delivery_log AS
    SELECT outbox_id, attempt, worker, started_at, finished_at, outcome, detail
    FROM delivery_attempts
    UNION ALL
    SELECT o.id, o.attempts, o.sent_by, o.sent_started_at, o.sent_at, 'delivered', o.sent_detail
    FROM outbox o
    WHERE o.sent_by IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.outbox_id = o.id AND a.attempt = o.attempts);
