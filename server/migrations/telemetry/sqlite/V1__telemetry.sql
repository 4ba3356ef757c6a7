-- Telemetry store, SQLite. Same meaning as ../postgres/V1__telemetry.sql; times are Unix ms.

-- Raw readings: append-only. No unique index on (device_id, boot_id, seq): deduplication
-- is done by the replay windows below, in the same transaction.
CREATE TABLE readings (
    device_id           TEXT    NOT NULL,
    boot_id             INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    ts_ms               INTEGER NOT NULL,
    server_received_ms  INTEGER NOT NULL,
    gateway_received_ms INTEGER,
    wall_ms             INTEGER,
    uptime_ms           INTEGER NOT NULL,
    site_id             TEXT,
    gateway_id          TEXT,
    kind                TEXT    NOT NULL,
    total_ml            INTEGER,
    flow_ml_per_min     INTEGER,
    volume_ml           INTEGER,
    battery_mv          INTEGER,
    rssi_dbm            INTEGER,
    event               TEXT,
    fire_value          INTEGER,
    fire_signal         TEXT,
    urgent              INTEGER NOT NULL,
    frame               BLOB    NOT NULL
);
CREATE INDEX readings_device_ts ON readings (device_id, ts_ms, boot_id, seq);
CREATE INDEX readings_ts ON readings (ts_ms);

CREATE TABLE dedup_windows (
    device_id  TEXT    NOT NULL,
    boot_id    INTEGER NOT NULL,
    replay     BLOB    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, boot_id)
) WITHOUT ROWID;

CREATE TABLE device_latest (
    device_id       TEXT PRIMARY KEY,
    site_id         TEXT,
    gateway_id      TEXT,
    last_seen_ms    INTEGER NOT NULL,
    last_ts_ms      INTEGER NOT NULL,
    boot_id         INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    last_kind       TEXT    NOT NULL,
    last_summary    TEXT    NOT NULL,
    battery_mv      INTEGER,
    battery_ms      INTEGER,
    rssi_dbm        INTEGER,
    firmware        TEXT,
    readings_stored INTEGER NOT NULL
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    payload_len INTEGER NOT NULL
);
