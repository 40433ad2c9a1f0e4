-- junheng scheduler schema: the notification outbox, its delivery log, shared rate-limit
-- budgets and planning cursors. Owned by the `junheng-scheduler` crate; append-only like 0001.

-- One row per (source, occasion, recipient, endpoint): the unique dedupe_key is what makes a
-- notification exist at most once whatever the number of replicas or restarts.
CREATE TABLE outbox (
    id             uuid PRIMARY KEY,
    dedupe_key     text NOT NULL UNIQUE,
    campaign_id    uuid NOT NULL,
    kind           text NOT NULL,          -- reminder | overdue | notice_expiry | phase_summary | daily_digest
    endpoint       text NOT NULL,          -- endpoint name from the scheduler configuration
    recipient      text NOT NULL,          -- role:office | role:leader | school:<uuid> | …
    -- Re-checked when claimed: a reminder whose obligation is no longer open, or whose due
    -- time moved (an extension), is cancelled instead of sent.
    obligation_id  uuid,
    planned_due_at timestamptz,
    payload        jsonb NOT NULL,         -- the rendered message (see junheng_scheduler::outbox::Payload)
    urgent         boolean NOT NULL DEFAULT false,
    not_before     timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'held', 'sending', 'sent', 'dead', 'cancelled')),
    attempts       integer NOT NULL DEFAULT 0,
    lease_until    timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL,
    sent_at        timestamptz
);
-- The dispatcher's claim scans only rows that may be due.
CREATE INDEX outbox_due ON outbox (not_before) WHERE status IN ('pending', 'held');
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
CREATE INDEX outbox_by_campaign ON outbox (campaign_id, created_at);
CREATE INDEX outbox_by_obligation ON outbox (obligation_id) WHERE obligation_id IS NOT NULL;

-- One row per delivery attempt, written after the channel answered.
CREATE TABLE delivery_attempts (
    outbox_id    uuid NOT NULL REFERENCES outbox (id),
    attempt      integer NOT NULL,
    worker       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'permanent', 'disable_endpoint', 'cancelled')),
    detail       text NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);

-- Per-endpoint sliding-window rate limit shared by every replica: `recent` holds the claim
-- instants of the last `max_sends` claims and is updated in the claiming transaction.
CREATE TABLE endpoint_budgets (
    endpoint   text NOT NULL,
    window_ms  bigint NOT NULL CHECK (window_ms > 0),
    max_sends  integer NOT NULL CHECK (max_sends > 0),
    recent     timestamptz[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (endpoint, window_ms)
);

-- How far the planner has got, per campaign and kind (event stream cursor, digest instant).
CREATE TABLE scheduler_cursors (
    campaign_id  uuid NOT NULL,
    kind         text NOT NULL,
    event_xid    text,
    event_id     bigint,
    planned_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, kind)
);

-- Notices whose expiry the scheduler has announced and asked the workflow to close.
CREATE TABLE notice_expiries (
    notice_id    uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL,
    planned_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    last_error   text
);
