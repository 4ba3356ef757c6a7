//! What the API needs from the telemetry store, as a trait the store implements.
//!
//! The API resolves scope through the registry first (which devices a caller may see, which
//! meters belong to a resident, the site's timezone), then asks these three questions with
//! plain device ids. The store answers them; it never needs to know about users or sites.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::DeviceId;

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The last thing heard from a device, kept current by ingest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceLatestState {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::registry::id_text")]
    pub device_id: DeviceId,
    pub last_seen: DateTime<Utc>,
    /// Last reported battery voltage, in millivolts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_mv: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reading: Option<Reading>,
}

/// What a reading reported (mirrors `vigil_protocol::UplinkBody`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadingBody {
    Meter {
        /// Cumulative volume, millilitres.
        total_ml: u64,
        flow_ml_per_min: u32,
        battery_mv: u16,
        tamper: bool,
        leak: bool,
    },
    Button {
        /// `press`, `long_press` or `cancel`.
        action: String,
    },
    Fall {
        free_fall_ms: u32,
        peak_mg: u32,
        stillness_ms: u32,
        orientation_change_deg: u16,
        cancelled: bool,
    },
    Fire {
        sensor: String,
        value: i32,
        unit: String,
        /// `normal`, `alarm`, `supervisory` or `trouble`.
        signal: String,
        zone: String,
    },
    Heartbeat {
        battery_mv: u16,
        rssi_dbm: i8,
        firmware: String,
    },
}

/// One stored reading.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Reading {
    pub boot_id: u32,
    pub seq: u32,
    /// When it happened: the board's wall time when it had one, else when it was received.
    pub at: DateTime<Utc>,
    pub body: ReadingBody,
}

/// Position in a device's readings, ordered by `(at, boot_id, seq)`. Travels as an opaque
/// string `<at ms>.<boot_id>.<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadingCursor {
    pub at: DateTime<Utc>,
    pub boot_id: u32,
    pub seq: u32,
}

impl ReadingCursor {
    pub fn of(r: &Reading) -> Self {
        Self {
            at: r.at,
            boot_id: r.boot_id,
            seq: r.seq,
        }
    }
}

impl fmt::Display for ReadingCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.at.timestamp_millis(),
            self.boot_id,
            self.seq
        )
    }
}

/// A cursor that is not of the form `<at ms>.<boot_id>.<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl FromStr for ReadingCursor {
    type Err = InvalidCursor;
    fn from_str(s: &str) -> Result<Self, InvalidCursor> {
        let mut parts = s.split('.');
        let (Some(ms), Some(boot), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidCursor);
        };
        let at = ms
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(InvalidCursor)?;
        Ok(Self {
            at,
            boot_id: boot.parse().map_err(|_| InvalidCursor)?,
            seq: seq.parse().map_err(|_| InvalidCursor)?,
        })
    }
}

/// One page of readings, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingsPage {
    pub readings: Vec<Reading>,
    /// Where the next page starts; `None` when the range is exhausted.
    pub next: Option<ReadingCursor>,
}

/// Length of a water-use bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaterBucket {
    Hour,
    Day,
}

/// Water used in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaterUse {
    /// Start of the bucket; day buckets start at local midnight in the site's timezone.
    pub start: DateTime<Utc>,
    pub used_ml: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry store unavailable: {0}")]
    Unavailable(String),
    #[error("telemetry store error: {0}")]
    Backend(String),
}

/// The three questions the API asks of the telemetry store.
#[async_trait]
pub trait TelemetryQueries: Send + Sync + 'static {
    /// Latest state of each listed device that has reported; silent devices are left out.
    async fn latest_states(
        &self,
        devices: &[DeviceId],
    ) -> Result<Vec<DeviceLatestState>, TelemetryError>;

    /// Readings of one device in `range`, ordered by `(at, boot_id, seq)`, strictly after
    /// `after`, at most `limit`.
    async fn readings(
        &self,
        device: &DeviceId,
        range: TimeRange,
        after: Option<ReadingCursor>,
        limit: u32,
    ) -> Result<ReadingsPage, TelemetryError>;

    /// Water used by the listed meters together, per bucket of `range` (bucket boundaries in
    /// `tz`); buckets without use are reported with 0, in order.
    async fn water_use(
        &self,
        meters: &[DeviceId],
        range: TimeRange,
        bucket: WaterBucket,
        tz: Tz,
    ) -> Result<Vec<WaterUse>, TelemetryError>;
}

impl From<&vigil_protocol::UplinkBody> for ReadingBody {
    fn from(body: &vigil_protocol::UplinkBody) -> Self {
        use vigil_protocol::uplink::{ButtonKind, Unit};
        use vigil_protocol::UplinkBody;
        match body {
            UplinkBody::Meter(m) => Self::Meter {
                total_ml: m.total_ml,
                flow_ml_per_min: m.flow_ml_per_min,
                battery_mv: m.battery_mv,
                tamper: m.tamper,
                leak: m.leak,
            },
            UplinkBody::Button(b) => Self::Button {
                action: match b.kind {
                    ButtonKind::Press => "press",
                    ButtonKind::LongPress => "long_press",
                    ButtonKind::Cancel => "cancel",
                }
                .to_owned(),
            },
            UplinkBody::Fall(f) => Self::Fall {
                free_fall_ms: f.free_fall_ms,
                peak_mg: f.peak_mg,
                stillness_ms: f.stillness_ms,
                orientation_change_deg: f.orientation_change_deg,
                cancelled: f.cancelled,
            },
            UplinkBody::Fire(f) => Self::Fire {
                sensor: f.sensor.name().to_owned(),
                value: f.value,
                unit: match f.unit {
                    Unit::CentiPercentPerMetre => "centi_percent_per_metre",
                    Unit::DeciCelsius => "deci_celsius",
                    Unit::PartsPerMillion => "ppm",
                    Unit::MilliAmpere => "milliampere",
                    Unit::Kilopascal => "kilopascal",
                    Unit::State => "state",
                }
                .to_owned(),
                signal: f.signal.name().to_owned(),
                zone: f.zone.to_string(),
            },
            UplinkBody::Heartbeat(h) => Self::Heartbeat {
                battery_mv: h.battery_mv,
                rssi_dbm: h.rssi_dbm,
                firmware: h.firmware.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::uplink::{ButtonEvent, ButtonKind, FireReport, SensorKind, SignalClass};
    use vigil_protocol::{UplinkBody, ZoneId};

    #[test]
    fn protocol_bodies_become_reading_bodies_with_their_names() {
        let press = UplinkBody::Button(ButtonEvent {
            kind: ButtonKind::LongPress,
            cancels_seq: None,
        });
        assert_eq!(
            ReadingBody::from(&press),
            ReadingBody::Button {
                action: "long_press".into()
            }
        );
        let fire = UplinkBody::Fire(FireReport {
            sensor: SensorKind::Smoke,
            value: 250,
            unit: SensorKind::Smoke.unit(),
            signal: SignalClass::Alarm,
            zone: ZoneId::new("room-203").unwrap(),
            self_test: false,
        });
        let json = serde_json::to_value(ReadingBody::from(&fire)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "fire", "sensor": "smoke", "value": 250,
                "unit": "centi_percent_per_metre", "signal": "alarm", "zone": "room-203"})
        );
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = ReadingCursor {
            at: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
            boot_id: 7,
            seq: 42,
        };
        assert_eq!(c.to_string().parse::<ReadingCursor>(), Ok(c));
        for junk in [
            "",
            "1.2",
            "1.2.3.4",
            "x.1.2",
            "1.-1.2",
            "99999999999999999999.1.1",
        ] {
            assert_eq!(
                junk.parse::<ReadingCursor>(),
                Err(InvalidCursor),
                "{junk:?}"
            );
        }
    }
}
