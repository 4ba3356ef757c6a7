//! The API's telemetry questions answered by the real telemetry [`Store`].
//!
//! Design: the store keeps water use in UTC hours (each reading credited to the hour it was
//! filed under); the API asks for hours or days in the resident's own timezone. Local
//! buckets are built here from the stored hours, so a local day in Asia/Shanghai or across a
//! DST change sums exactly the hours that fall inside it. In a zone whose offset is not a
//! whole number of hours, a UTC hour is credited to the local bucket its start falls in.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::telemetry::{
    DeviceLatestState, Reading, ReadingBody, ReadingCursor, ReadingsPage, TelemetryError,
    TelemetryQueries, TimeRange, WaterBucket, WaterUse,
};
use crate::ids::DeviceId;
use crate::store::{self, Bucket, ReadingsQuery, SharedStore, StoreError, StoredReading};

/// [`TelemetryQueries`] over the server's telemetry store.
pub struct StoreTelemetry {
    store: SharedStore,
}

impl StoreTelemetry {
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }
}

fn backend(e: StoreError) -> TelemetryError {
    TelemetryError::Backend(e.to_string())
}

fn at(ms: i64) -> Result<DateTime<Utc>, TelemetryError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| TelemetryError::Backend(format!("stored time {ms} ms is out of range")))
}

fn reading(r: &StoredReading) -> Result<Reading, TelemetryError> {
    let frame = r.decode().map_err(|e| {
        TelemetryError::Backend(format!(
            "stored frame {}/{}/{} does not decode: {e}",
            r.device_id, r.boot_id, r.seq
        ))
    })?;
    Ok(Reading {
        boot_id: r.boot_id,
        seq: r.seq,
        at: at(r.ts_ms)?,
        body: ReadingBody::from(&frame.body),
    })
}

/// Start (in UTC) of the local bucket that contains `t`.
fn bucket_start(t: DateTime<Utc>, bucket: WaterBucket, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz);
    let start = match bucket {
        WaterBucket::Hour => local
            .with_minute(0)
            .and_then(|l| l.with_second(0))
            .and_then(|l| l.with_nanosecond(0)),
        // Midnight may not exist (a DST change at 00:00): the day then starts at the first
        // instant that does, which `earliest` of the next hours finds.
        WaterBucket::Day => (0..4).find_map(|h| {
            tz.with_ymd_and_hms(local.year(), local.month(), local.day(), h, 0, 0)
                .earliest()
        }),
    };
    start.map_or(t, |s| s.with_timezone(&Utc))
}

fn next_bucket(start: DateTime<Utc>, bucket: WaterBucket, tz: Tz) -> DateTime<Utc> {
    match bucket {
        WaterBucket::Hour => start + Duration::hours(1),
        // 26 h after a local midnight is always inside the next local day, DST or not.
        WaterBucket::Day => bucket_start(start + Duration::hours(26), bucket, tz),
    }
}

#[async_trait]
impl TelemetryQueries for StoreTelemetry {
    async fn latest_states(
        &self,
        devices: &[DeviceId],
    ) -> Result<Vec<DeviceLatestState>, TelemetryError> {
        let latest = self
            .store
            .latest(Some(devices.to_vec()))
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(latest.len());
        for l in latest {
            let Ok(device_id) = DeviceId::new(&l.device_id) else {
                continue;
            };
            // The newest reading, for the card: one keyset query at its filing time.
            let page = self
                .store
                .readings(ReadingsQuery {
                    device: device_id.clone(),
                    from_ms: l.last_ts_ms,
                    to_ms: l.last_ts_ms.saturating_add(1),
                    after: None,
                    limit: 100,
                })
                .await
                .map_err(backend)?;
            let last_reading = page
                .readings
                .iter()
                .find(|r| r.boot_id == l.boot_id && r.seq == l.last_seq)
                .or(page.readings.last())
                .map(reading)
                .transpose()?;
            out.push(DeviceLatestState {
                device_id,
                last_seen: at(l.last_seen_ms)?,
                battery_mv: l.battery_mv.and_then(|v| u16::try_from(v).ok()),
                last_reading,
            });
        }
        Ok(out)
    }

    async fn readings(
        &self,
        device: &DeviceId,
        range: TimeRange,
        after: Option<ReadingCursor>,
        limit: u32,
    ) -> Result<ReadingsPage, TelemetryError> {
        let page = self
            .store
            .readings(ReadingsQuery {
                device: device.clone(),
                from_ms: range.from.timestamp_millis(),
                to_ms: range.to.timestamp_millis(),
                after: after.map(|c| store::ReadingCursor {
                    ts_ms: c.at.timestamp_millis(),
                    boot_id: c.boot_id,
                    seq: c.seq,
                }),
                limit: limit.clamp(1, store::MAX_PAGE),
            })
            .await
            .map_err(backend)?;
        let readings = page
            .readings
            .iter()
            .map(reading)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match page.next {
            Some(c) => Some(ReadingCursor {
                at: at(c.ts_ms)?,
                boot_id: c.boot_id,
                seq: c.seq,
            }),
            None => None,
        };
        Ok(ReadingsPage { readings, next })
    }

    async fn water_use(
        &self,
        meters: &[DeviceId],
        range: TimeRange,
        bucket: WaterBucket,
        tz: Tz,
    ) -> Result<Vec<WaterUse>, TelemetryError> {
        let from_ms = range.from.timestamp_millis();
        let to_ms = range.to.timestamp_millis();
        let mut hourly: BTreeMap<i64, u64> = BTreeMap::new();
        for meter in meters {
            let buckets = self
                .store
                .water_use(meter.clone(), from_ms, to_ms, Bucket::Hour)
                .await
                .map_err(backend)?;
            for b in buckets {
                *hourly.entry(b.start_ms).or_default() += u64::try_from(b.used_ml).unwrap_or(0);
            }
        }
        let mut out = Vec::new();
        let mut start = bucket_start(range.from, bucket, tz);
        while start < range.to {
            let next = next_bucket(start, bucket, tz);
            let lo = start.timestamp_millis().max(from_ms);
            let hi = next.timestamp_millis().min(to_ms);
            let used_ml = if lo < hi {
                hourly.range(lo..hi).map(|(_, ml)| ml).sum()
            } else {
                0
            };
            out.push(WaterUse { start, used_ml });
            if next <= start {
                break;
            }
            start = next;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
    }

    #[test]
    fn a_local_day_starts_at_local_midnight_and_the_next_one_follows_dst() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        // 29 March 2026: clocks go from 02:00 to 03:00 in Rome; that day has 23 hours.
        let start = bucket_start(utc(29, 10), WaterBucket::Day, rome);
        assert_eq!(start, utc(28, 23));
        assert_eq!(next_bucket(start, WaterBucket::Day, rome), utc(29, 22));
    }

    #[test]
    fn an_hour_bucket_is_the_local_hour() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 15, 42, 7).unwrap();
        assert_eq!(bucket_start(t, WaterBucket::Hour, shanghai), utc(1, 15));
    }
}
