-- Issue 12: the actors the plan names (departments in the eligibility review) and what an
-- award means afterwards (三、结果运用): principals as people with a stable id, and every
-- confirmed award's consequences as rows other bureau systems read.

-- A principal is a person with a stable id; a school refers to its current principal
-- (`schools.principal_id`, the name stays on the school for the lists that show it) and
-- `principal_history` keeps every tenure, so a change of principal keeps the old person's record.
CREATE TABLE principals (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE principal_history (
    school_id     uuid NOT NULL REFERENCES schools (id),
    principal_id  uuid NOT NULL REFERENCES principals (id),
    since         timestamptz NOT NULL,
    until         timestamptz,
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (school_id, principal_id, since)
);
CREATE UNIQUE INDEX principal_history_current ON principal_history (school_id) WHERE until IS NULL;
CREATE INDEX principal_history_by_principal ON principal_history (principal_id);

ALTER TABLE schools ADD COLUMN principal_id uuid REFERENCES principals (id);

-- Schools registered before this migration: one person each, with an id derived from the
-- school's (stable, so a re-run restore gives the same ids).
INSERT INTO principals (id, name, created_at)
SELECT md5('junheng-principal:' || id::text)::uuid, principal, created_at FROM schools;
UPDATE schools SET principal_id = md5('junheng-principal:' || id::text)::uuid;
INSERT INTO principal_history (school_id, principal_id, since)
SELECT id, principal_id, created_at FROM schools;

-- Every school registered from now on gets its principal the same way, whichever writer
-- inserts it (registration, import, the demo county).
CREATE FUNCTION schools_principal_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.principal_id IS NULL THEN
        NEW.principal_id := md5('junheng-principal:' || NEW.id::text)::uuid;
        INSERT INTO principals (id, name, created_at)
        VALUES (NEW.principal_id, NEW.principal, NEW.created_at)
        ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION schools_principal_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO principal_history (school_id, principal_id, since)
    VALUES (NEW.id, NEW.principal_id, NEW.created_at)
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE TRIGGER schools_principal_before BEFORE INSERT ON schools
    FOR EACH ROW EXECUTE FUNCTION schools_principal_before();
CREATE TRIGGER schools_principal_after AFTER INSERT ON schools
    FOR EACH ROW EXECUTE FUNCTION schools_principal_after();

ALTER TABLE schools ALTER COLUMN principal_id SET NOT NULL;

-- 督导室协同相关业务科室: a department's opinion on a self-application, one per department
-- (a later opinion of the same department replaces it, audited with before and after).
CREATE TABLE department_opinions (
    application_id  uuid NOT NULL REFERENCES applications (id),
    department      text NOT NULL,
    campaign_id     uuid NOT NULL REFERENCES campaigns (id),
    school_id       uuid NOT NULL REFERENCES schools (id),
    agree           boolean NOT NULL,
    reason          text NOT NULL,
    actor           text NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (application_id, department)
);
CREATE INDEX department_opinions_by_campaign ON department_opinions (campaign_id);

-- 三、结果运用: one row per consequence of a confirmed award, for the school or its principal.
-- `principal_id` is the school's principal when the award was confirmed (also on the school's
-- rows), so the consequences follow the person after a change of principal.
CREATE TABLE award_consequences (
    id            uuid PRIMARY KEY,
    campaign_id   uuid NOT NULL REFERENCES campaigns (id),
    school_id     uuid NOT NULL REFERENCES schools (id),
    principal_id  uuid REFERENCES principals (id),
    year          integer NOT NULL,
    class         text NOT NULL,
    subject       text NOT NULL CHECK (subject IN ('school', 'principal')),
    kind          text NOT NULL,
    label         text NOT NULL,
    valid_until   date,
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX award_consequences_by_campaign ON award_consequences (campaign_id, school_id);
CREATE INDEX award_consequences_by_principal ON award_consequences (principal_id, year);
CREATE INDEX award_consequences_by_year ON award_consequences (year, kind);
