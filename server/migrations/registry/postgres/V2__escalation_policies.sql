-- Escalation policies: district-wide objects a site refers to by id (the reference lives in
-- the site's document, so a site may name a policy that was deleted: it then escalates by
-- the built-in default, with a warning).
CREATE TABLE escalation_policies (
    id TEXT PRIMARY KEY,
    doc JSONB NOT NULL
);
