-- junheng workflow schema. Migrations are append-only: never edit a released file.

CREATE TABLE campaigns (
    id                 uuid PRIMARY KEY,
    code               text NOT NULL UNIQUE,
    county             text NOT NULL,
    year               integer NOT NULL,
    time_zone          text NOT NULL,
    -- The definition the rules are evaluated against, canonical JSON, never re-read from a file.
    definition         jsonb NOT NULL,
    definition_sha256  text NOT NULL,
    -- junheng_core::PhaseBoard as JSON.
    phases             jsonb NOT NULL,
    mentors_confirmed_at timestamptz,
    created_at         timestamptz NOT NULL
);

CREATE TABLE schools (
    id           uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    code         text NOT NULL CHECK (code ~ '^[0-9]{10}$'),
    name         text NOT NULL,
    level        text NOT NULL CHECK (level IN ('primary', 'junior', 'nine_year')),
    town         text NOT NULL,
    principal    text NOT NULL,
    contacts     jsonb NOT NULL DEFAULT '[]',
    state        text NOT NULL,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (campaign_id, code)
);
CREATE INDEX schools_by_campaign_state ON schools (campaign_id, state);
CREATE INDEX schools_by_campaign_name ON schools (campaign_id, code);

CREATE TABLE applications (
    id               uuid PRIMARY KEY,
    campaign_id      uuid NOT NULL REFERENCES campaigns (id),
    school_id        uuid NOT NULL UNIQUE REFERENCES schools (id),
    self_assessment  jsonb NOT NULL,
    statement        text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    reason           text NOT NULL DEFAULT '',
    submitted_at     timestamptz NOT NULL,
    decided_at       timestamptz
);
CREATE INDEX applications_by_campaign ON applications (campaign_id, status);

CREATE TABLE notices (
    id           uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    kind         text NOT NULL,
    title        text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    last_day     date NOT NULL,
    closed_at    timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX notices_by_campaign ON notices (campaign_id, ends_at);

CREATE TABLE notice_schools (
    notice_id  uuid NOT NULL REFERENCES notices (id),
    school_id  uuid NOT NULL REFERENCES schools (id),
    ordinal    integer NOT NULL,
    PRIMARY KEY (notice_id, school_id)
);
CREATE INDEX notice_schools_by_school ON notice_schools (school_id);

CREATE TABLE objections (
    id                uuid PRIMARY KEY,
    campaign_id       uuid NOT NULL REFERENCES campaigns (id),
    notice_id         uuid NOT NULL REFERENCES notices (id),
    school_id         uuid NOT NULL REFERENCES schools (id),
    objector_name     text NOT NULL,
    objector_contact  text NOT NULL,
    grounds           text NOT NULL,
    evidence          text NOT NULL,
    filed_by          text NOT NULL,
    status            text NOT NULL CHECK (status IN ('open', 'upheld', 'dismissed')),
    resolution        text NOT NULL DEFAULT '',
    filed_at          timestamptz NOT NULL,
    resolved_at       timestamptz
);
CREATE INDEX objections_by_notice ON objections (notice_id);
CREATE INDEX objections_open ON objections (campaign_id) WHERE status = 'open';

CREATE TABLE presentations (
    school_id        uuid PRIMARY KEY REFERENCES schools (id),
    campaign_id      uuid NOT NULL REFERENCES campaigns (id),
    document_ref     text NOT NULL,
    document_sha256  text NOT NULL,
    submitted_at     timestamptz NOT NULL
);

CREATE TABLE practices (
    id           uuid PRIMARY KEY,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    school_id    uuid NOT NULL REFERENCES schools (id),
    ordinal      integer NOT NULL,
    indicator    text NOT NULL,
    title        text NOT NULL,
    description  text NOT NULL
);
CREATE INDEX practices_by_school ON practices (school_id, ordinal);

-- One sheet per (school, panel member); a member may revise it until mentors are confirmed.
CREATE TABLE ratings (
    school_id    uuid NOT NULL REFERENCES schools (id),
    rater        text NOT NULL,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    ratings      jsonb NOT NULL,   -- indicator code -> rating code
    verdicts     jsonb NOT NULL,   -- practice id -> accepted
    rated_at     timestamptz NOT NULL,
    PRIMARY KEY (school_id, rater)
);

-- Append-only audit log, also the campaign event stream. `xid` lets readers follow without
-- gaps: they take only events whose transaction is older than every running transaction.
CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    campaign_id  uuid NOT NULL,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    school_id    uuid,
    actor        text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,
    before       jsonb NOT NULL,
    after        jsonb NOT NULL,
    reason       text,
    request_id   text NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX events_by_campaign_cursor ON events (campaign_id, xid, id);
CREATE INDEX events_by_school ON events (school_id, id) WHERE school_id IS NOT NULL;

CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Who owes what by when; written in the transaction that creates or discharges it.
CREATE TABLE obligations (
    id            uuid PRIMARY KEY,
    campaign_id   uuid NOT NULL REFERENCES campaigns (id),
    kind          text NOT NULL,
    school_id     uuid,
    key           text NOT NULL DEFAULT '',
    owner_role    text NOT NULL,
    owner_school  uuid,
    deadline_ref  text NOT NULL,
    due_at        timestamptz NOT NULL,
    subject       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    created_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    UNIQUE NULLS NOT DISTINCT (campaign_id, kind, school_id, key)
);
CREATE INDEX obligations_open_due ON obligations (due_at) WHERE status = 'open';
CREATE INDEX obligations_by_deadline ON obligations (campaign_id, deadline_ref) WHERE status = 'open';

CREATE TABLE idempotency_keys (
    actor        text NOT NULL,
    key          text NOT NULL,
    method       text NOT NULL,
    fingerprint  bytea NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);

CREATE TABLE tokens (
    sha256      bytea PRIMARY KEY,
    actor       text NOT NULL UNIQUE,
    name        text NOT NULL,
    role        text NOT NULL,
    school_id   uuid REFERENCES schools (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The one clock: real by default; the simulated instant lives here so every service and
-- replica agrees on "now". Announced with NOTIFY junheng_clock.
CREATE TABLE clock (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    simulated_now  timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
