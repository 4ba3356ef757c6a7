//! What goes into the store and what comes out of it.

use bytes::Bytes;
use vigil_protocol::{DeviceId, GatewayId, SiteId, UplinkBody, UplinkFrame};

use crate::dedup::Admission;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// Furthest into the future (relative to the server's clock) an event time is believed.
pub const MAX_CLOCK_AHEAD_MS: i64 = 10 * 60 * 1000;
/// Furthest into the past an event time is believed.
pub const MAX_CLOCK_BEHIND_MS: i64 = 366 * 24 * 3600 * 1000;

/// One decoded board frame as ingest received it.
#[derive(Debug, Clone)]
pub struct IncomingFrame {
    pub frame: UplinkFrame,
    /// The board's encoded frame, exactly as received.
    pub raw: Bytes,
    /// The gateway that forwarded it, for frames that came in a batch.
    pub via: Option<(SiteId, GatewayId)>,
    /// When the gateway received it (Unix ms, gateway clock).
    pub gateway_received_ms: Option<u64>,
    /// When this server received it (Unix ms).
    pub server_received_ms: i64,
}

impl IncomingFrame {
    /// The time the reading is filed under: the gateway's receive time (gateways keep
    /// synchronised clocks), else the board's wall time, else the server's receive time;
    /// clamped to a window around the server's clock so that a board or gateway with a
    /// wrong clock cannot file readings in 1970. The unclamped times stay in their columns.
    pub fn event_ms(&self) -> i64 {
        let claimed = self
            .gateway_received_ms
            .or(self.frame.wall_ms)
            .and_then(|ms| i64::try_from(ms).ok())
            .unwrap_or(self.server_received_ms);
        claimed.clamp(
            self.server_received_ms - MAX_CLOCK_BEHIND_MS,
            self.server_received_ms + MAX_CLOCK_AHEAD_MS,
        )
    }

    /// The queryable columns of the frame's body.
    pub fn columns(&self) -> ReadingColumns {
        ReadingColumns::of(&self.frame)
    }
}

/// A message that could not be accepted, kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub received_ms: i64,
    pub topic: String,
    /// Stable reason code (`DecodeError::code()`, `unknown_device`, `unknown_topic`, …).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// The payload, cut to the configured length.
    pub payload: Vec<u8>,
    /// The payload's full length.
    pub payload_len: usize,
}

/// What one transaction writes.
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub frames: Vec<IncomingFrame>,
    pub quarantine: Vec<Quarantined>,
    /// Quarantine records kept; the oldest beyond are deleted in the same transaction.
    pub quarantine_bound: u64,
}

/// What a commit did with each frame, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub admissions: Vec<Admission>,
}

impl CommitReport {
    pub fn stored(&self) -> usize {
        self.admissions.iter().filter(|a| a.is_stored()).count()
    }

    pub fn duplicates(&self) -> usize {
        self.admissions.len() - self.stored()
    }
}

/// The queryable columns derived from a frame's body; the frame's bytes are kept as well.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadingColumns {
    pub kind: &'static str,
    pub total_ml: Option<i64>,
    pub flow_ml_per_min: Option<i64>,
    /// Water used since the meter's previous report (sum of its slots), in millilitres.
    pub volume_ml: Option<i64>,
    pub battery_mv: Option<i32>,
    pub rssi_dbm: Option<i32>,
    /// Fire sensor kind, button kind, or `fall`/`fall_cancelled`.
    pub event: Option<&'static str>,
    pub fire_value: Option<i32>,
    pub fire_signal: Option<&'static str>,
    pub urgent: bool,
}

impl ReadingColumns {
    pub fn of(frame: &UplinkFrame) -> Self {
        let mut c = ReadingColumns {
            kind: frame.body.kind_name(),
            urgent: frame.is_urgent(),
            ..Default::default()
        };
        match &frame.body {
            UplinkBody::Meter(m) => {
                c.total_ml = i64::try_from(m.total_ml).ok();
                c.flow_ml_per_min = Some(i64::from(m.flow_ml_per_min));
                c.volume_ml = Some(m.slots_ml.iter().map(|&v| i64::from(v)).sum());
                c.battery_mv = Some(i32::from(m.battery_mv));
            }
            UplinkBody::Button(b) => {
                c.event = Some(match b.kind {
                    vigil_protocol::ButtonKind::Press => "press",
                    vigil_protocol::ButtonKind::LongPress => "long_press",
                    vigil_protocol::ButtonKind::Cancel => "cancel",
                });
            }
            UplinkBody::Fall(f) => {
                c.event = Some(if f.cancelled {
                    "fall_cancelled"
                } else {
                    "fall"
                });
            }
            UplinkBody::Fire(f) => {
                c.event = Some(f.sensor.name());
                c.fire_value = Some(f.value);
                c.fire_signal = Some(f.signal.name());
            }
            UplinkBody::Heartbeat(h) => {
                c.battery_mv = Some(i32::from(h.battery_mv));
                c.rssi_dbm = Some(i32::from(h.rssi_dbm));
            }
        }
        c
    }

    /// One line for dashboards: what the reading said.
    pub fn summary(&self) -> String {
        let mut s = String::from(self.kind);
        let mut add = |k: &str, v: String| {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            s.push_str(&v);
        };
        if let Some(v) = self.event {
            add("event", v.to_owned());
        }
        if let Some(v) = self.fire_signal {
            add("signal", v.to_owned());
        }
        if let Some(v) = self.fire_value {
            add("value", v.to_string());
        }
        if let Some(v) = self.total_ml {
            add("total_ml", v.to_string());
        }
        if let Some(v) = self.flow_ml_per_min {
            add("flow_ml_per_min", v.to_string());
        }
        if let Some(v) = self.battery_mv {
            add("battery_mv", v.to_string());
        }
        if let Some(v) = self.rssi_dbm {
            add("rssi_dbm", v.to_string());
        }
        s
    }
}

/// A stored reading, as queries return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReading {
    pub device_id: String,
    pub boot_id: u32,
    pub seq: u32,
    /// The time it is filed under (see [`IncomingFrame::event_ms`]).
    pub ts_ms: i64,
    pub server_received_ms: i64,
    pub gateway_received_ms: Option<i64>,
    pub wall_ms: Option<i64>,
    pub uptime_ms: i64,
    pub site_id: Option<String>,
    pub gateway_id: Option<String>,
    pub kind: String,
    pub total_ml: Option<i64>,
    pub flow_ml_per_min: Option<i64>,
    pub volume_ml: Option<i64>,
    pub battery_mv: Option<i32>,
    pub rssi_dbm: Option<i32>,
    pub event: Option<String>,
    pub fire_value: Option<i32>,
    pub fire_signal: Option<String>,
    pub urgent: bool,
    /// The board's encoded frame.
    pub frame: Vec<u8>,
}

impl StoredReading {
    /// Decodes the stored frame.
    pub fn decode(&self) -> Result<UplinkFrame, vigil_protocol::DecodeError> {
        UplinkFrame::decode(&self.frame)
    }

    pub fn cursor(&self) -> ReadingCursor {
        ReadingCursor {
            ts_ms: self.ts_ms,
            boot_id: self.boot_id,
            seq: self.seq,
        }
    }
}

/// Where a page of readings ends; pass it back to get the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadingCursor {
    pub ts_ms: i64,
    pub boot_id: u32,
    pub seq: u32,
}

/// A query for one device's readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingsQuery {
    pub device: DeviceId,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Readings strictly after this cursor (keyset paging).
    pub after: Option<ReadingCursor>,
    /// At most this many (1..=10 000).
    pub limit: u32,
}

/// Largest page a query may ask for.
pub const MAX_PAGE: u32 = 10_000;

impl ReadingsQuery {
    pub(crate) fn check(&self) -> Result<(), super::StoreError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(super::StoreError::InvalidQuery("limit must be 1..=10000"));
        }
        if self.from_ms > self.to_ms {
            return Err(super::StoreError::InvalidQuery("from must not be after to"));
        }
        Ok(())
    }
}

/// A page of readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingsPage {
    pub readings: Vec<StoredReading>,
    /// Present when more readings may follow.
    pub next: Option<ReadingCursor>,
}

/// The latest known state of a device, kept current by every commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLatest {
    pub device_id: String,
    pub site_id: Option<String>,
    pub gateway_id: Option<String>,
    /// Server time of the last frame received.
    pub last_seen_ms: i64,
    /// Event time of the newest reading.
    pub last_ts_ms: i64,
    pub boot_id: u32,
    pub last_seq: u32,
    pub last_kind: String,
    pub last_summary: String,
    pub battery_mv: Option<i32>,
    pub battery_ms: Option<i64>,
    pub rssi_dbm: Option<i32>,
    pub firmware: Option<String>,
    pub readings_stored: i64,
}

/// Width of a water-use bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }
}

/// Water used in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaterUse {
    /// Start of the bucket (UTC), Unix ms.
    pub start_ms: i64,
    pub used_ml: i64,
    pub readings: i64,
}

/// A quarantined message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub id: i64,
    pub received_ms: i64,
    pub topic: String,
    pub reason: String,
    pub detail: String,
    pub payload: Vec<u8>,
    pub payload_len: i64,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows deleted (SQLite) or partitions dropped (PostgreSQL).
    pub readings_deleted: u64,
    pub partitions_dropped: Vec<String>,
    pub windows_deleted: u64,
}
