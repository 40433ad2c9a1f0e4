-- Phases 3–5: 1+X pairing, baselines, assistance, acceptance scoring, results, awards.

-- One row per potential school: its mentor's group.
CREATE TABLE pairings (
    potential_id  uuid PRIMARY KEY REFERENCES schools (id),
    mentor_id     uuid NOT NULL REFERENCES schools (id),
    campaign_id   uuid NOT NULL REFERENCES campaigns (id),
    set_at        timestamptz NOT NULL
);
CREATE INDEX pairings_by_campaign ON pairings (campaign_id, mentor_id);

CREATE TABLE baselines (
    school_id    uuid PRIMARY KEY REFERENCES schools (id),
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    scores       jsonb NOT NULL,   -- indicator code -> score
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL
);

CREATE TABLE assistance_activities (
    id             uuid PRIMARY KEY,
    campaign_id    uuid NOT NULL REFERENCES campaigns (id),
    mentor_id      uuid NOT NULL REFERENCES schools (id),
    potential_id   uuid NOT NULL REFERENCES schools (id),
    activity_date  date NOT NULL,
    indicators     text[] NOT NULL,
    description    text NOT NULL,
    evidence_ref   text NOT NULL,
    logged_by      text NOT NULL,
    logged_at      timestamptz NOT NULL
);
CREATE INDEX assistance_by_mentor ON assistance_activities (campaign_id, mentor_id);

CREATE TABLE panel_members (
    campaign_id       uuid NOT NULL REFERENCES campaigns (id),
    actor             text NOT NULL,
    name              text NOT NULL,
    affiliation       text NOT NULL CHECK (affiliation IN ('department', 'high_school', 'mentor_school')),
    mentor_school_id  uuid REFERENCES schools (id),
    PRIMARY KEY (campaign_id, actor)
);

-- One sheet per (school, panel member); revisable until the results notice.
CREATE TABLE acceptance_scores (
    school_id    uuid NOT NULL REFERENCES schools (id),
    member       text NOT NULL,
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    report       double precision NOT NULL,
    onsite       jsonb NOT NULL,   -- indicator code -> score
    scored_at    timestamptz NOT NULL,
    PRIMARY KEY (school_id, member)
);

-- Results as published on the results notice; `disputed` after an upheld objection, then
-- recomputed when the acceptance phase completes.
CREATE TABLE results (
    school_id    uuid PRIMARY KEY REFERENCES schools (id),
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    result       jsonb NOT NULL,
    disputed     boolean NOT NULL DEFAULT false,
    computed_at  timestamptz NOT NULL
);

CREATE TABLE awards (
    school_id        uuid PRIMARY KEY REFERENCES schools (id),
    campaign_id      uuid NOT NULL REFERENCES campaigns (id),
    class            text NOT NULL,
    proposed_class   text NOT NULL,
    reason           text NOT NULL,
    override_reason  text NOT NULL DEFAULT '',
    principal        text NOT NULL,
    confirmed_at     timestamptz NOT NULL
);
CREATE INDEX awards_by_campaign ON awards (campaign_id, class);
CREATE INDEX awards_by_principal ON awards (principal);

ALTER TABLE campaigns
    ADD COLUMN results_notice_id uuid REFERENCES notices (id),
    ADD COLUMN results_final_at timestamptz,
    ADD COLUMN awards_confirmed_at timestamptz;
