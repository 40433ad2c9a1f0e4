-- Tokens with a scope and a life (issue #9). A token acts in the campaigns listed in
-- `campaigns`, or county-wide when it is NULL; a school token is bound to its school's campaign.
-- A token is refused once `revoked_at` or `expires_at` has passed (looked up on every call, so
-- every replica refuses it at once). `issued_by` is the actor that issued it (NULL for the
-- bootstrap token); `demo` marks the demo tokens, which a production server refuses.
ALTER TABLE tokens
    ADD COLUMN id         uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN campaigns  uuid[],
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN issued_by  text,
    ADD COLUMN demo       boolean NOT NULL DEFAULT false,
    ADD COLUMN rotated_to uuid;
ALTER TABLE tokens ADD CONSTRAINT tokens_id_unique UNIQUE (id);

-- School tokens issued before scopes existed act only in their school's campaign.
UPDATE tokens t SET campaigns = ARRAY[s.campaign_id] FROM schools s WHERE t.school_id = s.id;
-- The demo tokens (see bootstrap.rs) were labelled `（演示）` or belong to the demo campaign.
UPDATE tokens SET demo = true WHERE name LIKE '%（演示）';
