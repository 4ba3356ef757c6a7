-- Alerts, their append-only audit trail, the escalation work queue and the webhook delivery log.
-- Times are milliseconds since the Unix epoch (UTC), as `Timestamp` holds them.

CREATE TABLE alert_record (
    id              BIGINT PRIMARY KEY,
    site            TEXT     NOT NULL,
    subject         TEXT     NOT NULL, -- the Subject as canonical JSON text: one key per subject
    kind            TEXT     NOT NULL,
    severity        TEXT     NOT NULL,
    severity_rank   SMALLINT NOT NULL, -- 0 = critical … 3 = warning, for "most urgent first"
    state           TEXT     NOT NULL,
    is_open         BOOLEAN  NOT NULL,
    repeat_count    BIGINT   NOT NULL,
    opened_at       BIGINT   NOT NULL,
    last_seen_at    BIGINT   NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    disposition     TEXT,
    closed_at       BIGINT,
    closed_by       TEXT,
    details         JSONB    NOT NULL,
    body            JSONB    NOT NULL, -- the whole Alert, to reload it losslessly
    CHECK (is_open = (state IN ('open', 'acknowledged', 'dispatched', 'on_scene')))
);
-- One open alert per (subject, kind), enforced by the database as well as by the AlertBook.
CREATE UNIQUE INDEX alert_record_one_open ON alert_record (subject, kind) WHERE is_open;
CREATE INDEX alert_record_listing ON alert_record (site, severity_rank, opened_at);

CREATE TABLE alert_audit (
    seq      BIGSERIAL PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alert_record (id),
    site     TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    change   TEXT   NOT NULL,
    record   JSONB  NOT NULL
);
CREATE INDEX alert_audit_by_alert ON alert_audit (alert_id, seq);
CREATE INDEX alert_audit_raised ON alert_audit (site, at) WHERE change = 'raised';

CREATE FUNCTION alert_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_audit is append-only';
END
$$;
CREATE TRIGGER alert_audit_no_update_or_delete BEFORE UPDATE OR DELETE ON alert_audit
    FOR EACH ROW EXECUTE FUNCTION alert_audit_refuse_change();
CREATE TRIGGER alert_audit_no_truncate BEFORE TRUNCATE ON alert_audit
    FOR EACH STATEMENT EXECUTE FUNCTION alert_audit_refuse_change();

-- One row per alert under escalation; (tier, due_at) is the task's next_due().
CREATE TABLE escalation_task (
    alert_id      BIGINT PRIMARY KEY REFERENCES alert_record (id),
    site          TEXT   NOT NULL,
    tier          BIGINT,
    due_at        BIGINT,
    claimed_until BIGINT, -- a claimer's lease: handed out again once it has passed
    claim_token   BIGINT,
    task          JSONB  NOT NULL
);
CREATE INDEX escalation_task_due ON escalation_task (due_at) WHERE due_at IS NOT NULL;
CREATE SEQUENCE escalation_claim_token;

CREATE TABLE webhook_delivery (
    seq         BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    endpoint    TEXT   NOT NULL,
    event       TEXT   NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    record      JSONB  NOT NULL
);
CREATE INDEX webhook_delivery_by_delivery ON webhook_delivery (delivery_id, seq);
