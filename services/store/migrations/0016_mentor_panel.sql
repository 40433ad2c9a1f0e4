-- The phase-2 panel (督导室邀请各业务科室和部分高中校长): the members the office appoints to rate
-- the seed schools' presentations. A member belonging to a school of the campaign (school_id)
-- is recused from rating it. Fixed once the first rating sheet is recorded (a rule in the core).
CREATE TABLE mentor_panel_members (
    campaign_id  uuid NOT NULL REFERENCES campaigns (id),
    actor        text NOT NULL,
    name         text NOT NULL,
    affiliation  text NOT NULL CHECK (affiliation IN ('department', 'high_school')),
    school_id    uuid REFERENCES schools (id),
    PRIMARY KEY (campaign_id, actor)
);
