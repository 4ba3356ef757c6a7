-- The alert engine's detector states that carry timers (call, fire and health detectors),
-- saved periodically and at shutdown, restored at start. One row per detector instance;
-- the last writer wins (a detector's state is whole, not a log).
CREATE TABLE detector_state (
    key         TEXT   PRIMARY KEY,
    state       TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);
