-- Alerts, their append-only audit trail, the escalation work queue and the webhook delivery log.
-- Times are milliseconds since the Unix epoch (UTC), as `Timestamp` holds them.

CREATE TABLE alert_record (
    id              INTEGER PRIMARY KEY,
    site            TEXT    NOT NULL,
    subject         TEXT    NOT NULL, -- the Subject as canonical JSON text: one key per subject
    kind            TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    severity_rank   INTEGER NOT NULL, -- 0 = critical … 3 = warning, for "most urgent first"
    state           TEXT    NOT NULL,
    is_open         INTEGER NOT NULL,
    repeat_count    INTEGER NOT NULL,
    opened_at       INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    disposition     TEXT,
    closed_at       INTEGER,
    closed_by       TEXT,
    details         TEXT    NOT NULL,
    body            TEXT    NOT NULL, -- the whole Alert as JSON, to reload it losslessly
    CHECK (is_open = (state IN ('open', 'acknowledged', 'dispatched', 'on_scene')))
);
-- One open alert per (subject, kind), enforced by the database as well as by the AlertBook.
CREATE UNIQUE INDEX alert_record_one_open ON alert_record (subject, kind) WHERE is_open;
CREATE INDEX alert_record_listing ON alert_record (site, severity_rank, opened_at);

CREATE TABLE alert_audit (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alert_record (id),
    site     TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    change   TEXT    NOT NULL,
    record   TEXT    NOT NULL
);
CREATE INDEX alert_audit_by_alert ON alert_audit (alert_id, seq);
CREATE INDEX alert_audit_raised ON alert_audit (site, at) WHERE change = 'raised';
CREATE TRIGGER alert_audit_no_update BEFORE UPDATE ON alert_audit
BEGIN
    SELECT RAISE(ABORT, 'alert_audit is append-only');
END;
CREATE TRIGGER alert_audit_no_delete BEFORE DELETE ON alert_audit
BEGIN
    SELECT RAISE(ABORT, 'alert_audit is append-only');
END;

-- One row per alert under escalation; (tier, due_at) is the task's next_due().
CREATE TABLE escalation_task (
    alert_id      INTEGER PRIMARY KEY REFERENCES alert_record (id),
    site          TEXT    NOT NULL,
    tier          INTEGER,
    due_at        INTEGER,
    claimed_until INTEGER, -- a claimer's lease: handed out again once it has passed
    claim_token   INTEGER,
    task          TEXT    NOT NULL
);
CREATE INDEX escalation_task_due ON escalation_task (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE escalation_claim_counter (last_token INTEGER NOT NULL);
INSERT INTO escalation_claim_counter (last_token) VALUES (0);

CREATE TABLE webhook_delivery (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    endpoint    TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX webhook_delivery_by_delivery ON webhook_delivery (delivery_id, seq);
