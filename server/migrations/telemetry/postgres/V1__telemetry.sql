-- Telemetry store, PostgreSQL. Same meaning as ../sqlite/V1__telemetry.sql; times are Unix ms
-- (bigint), so that both backends bucket and page with the same arithmetic.

-- Raw readings: append-only, one partition per UTC day of ts_ms (created ahead by the store,
-- dropped by retention). No unique index on (device_id, boot_id, seq): deduplication is done
-- by the replay windows below, in the same transaction (ARCHITECTURE.md section 12).
CREATE TABLE readings (
    device_id           text    NOT NULL,
    boot_id             bigint  NOT NULL,
    seq                 bigint  NOT NULL,
    ts_ms               bigint  NOT NULL,
    server_received_ms  bigint  NOT NULL,
    gateway_received_ms bigint,
    wall_ms             bigint,
    uptime_ms           bigint  NOT NULL,
    site_id             text,
    gateway_id          text,
    kind                text    NOT NULL,
    total_ml            bigint,
    flow_ml_per_min     bigint,
    volume_ml           bigint,
    battery_mv          integer,
    rssi_dbm            integer,
    event               text,
    fire_value          integer,
    fire_signal         text,
    urgent              boolean NOT NULL,
    frame               bytea   NOT NULL
) PARTITION BY RANGE (ts_ms);
CREATE INDEX readings_device_ts ON readings (device_id, ts_ms);

CREATE TABLE dedup_windows (
    device_id  text   NOT NULL,
    boot_id    bigint NOT NULL,
    replay     bytea  NOT NULL,
    updated_ms bigint NOT NULL,
    PRIMARY KEY (device_id, boot_id)
);

CREATE TABLE device_latest (
    device_id       text PRIMARY KEY,
    site_id         text,
    gateway_id      text,
    last_seen_ms    bigint  NOT NULL,
    last_ts_ms      bigint  NOT NULL,
    boot_id         bigint  NOT NULL,
    last_seq        bigint  NOT NULL,
    last_kind       text    NOT NULL,
    last_summary    text    NOT NULL,
    battery_mv      integer,
    battery_ms      bigint,
    rssi_dbm        integer,
    firmware        text,
    readings_stored bigint  NOT NULL
);

CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    received_ms bigint NOT NULL,
    topic       text   NOT NULL,
    reason      text   NOT NULL,
    detail      text   NOT NULL,
    payload     bytea  NOT NULL,
    payload_len bigint NOT NULL
);
