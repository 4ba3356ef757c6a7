//! The API's telemetry questions answered by the real store (SQLite here; the store's own
//! conformance suite proves PostgreSQL answers the store's queries the same way).

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use vigil_server::http::store_telemetry::StoreTelemetry;
use vigil_server::http::telemetry::{ReadingBody, TelemetryQueries, TimeRange, WaterBucket};
use vigil_server::store::{IngestBatch, SharedStore};

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

async fn store_with(
    frames: Vec<(vigil_protocol::UplinkFrame, DateTime<Utc>)>,
) -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(sqlite_store(&dir).await);
    let batch = IngestBatch {
        frames: frames
            .into_iter()
            .map(|(f, t)| incoming(f, t.timestamp_millis()))
            .collect(),
        quarantine: Vec::new(),
        quarantine_bound: 100,
    };
    store.commit(Arc::new(batch)).await.unwrap();
    (store, dir)
}

#[tokio::test]
async fn readings_come_back_decoded_and_paged_in_order() {
    let frames = (1..=5)
        .map(|seq| (meter("met-1", 1, seq, 1000 * seq, 3600), utc(30, 8, seq)))
        .collect();
    let (store, _dir) = store_with(frames).await;
    let t = StoreTelemetry::new(store);
    let range = TimeRange {
        from: utc(30, 0, 0),
        to: utc(30, 23, 0),
    };
    let first = t.readings(&device("met-1"), range, None, 3).await.unwrap();
    assert_eq!(
        first.readings.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(matches!(
        first.readings[0].body,
        ReadingBody::Meter {
            battery_mv: 3600,
            ..
        }
    ));
    let rest = t
        .readings(&device("met-1"), range, first.next, 3)
        .await
        .unwrap();
    assert_eq!(
        rest.readings.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(rest.next.is_none());
}

#[tokio::test]
async fn latest_state_carries_the_newest_reading_and_battery() {
    let (store, _dir) = store_with(vec![
        (meter("met-1", 1, 1, 500, 3600), utc(30, 8, 0)),
        (heartbeat("met-1", 1, 2, 3550, -70), utc(30, 9, 0)),
        (press("pend-1", 4, 7), utc(30, 9, 5)),
    ])
    .await;
    let t = StoreTelemetry::new(store);
    let states = t
        .latest_states(&[device("met-1"), device("pend-1"), device("silent")])
        .await
        .unwrap();
    assert_eq!(states.len(), 2, "a device that never reported is left out");
    let met = states
        .iter()
        .find(|s| s.device_id.as_str() == "met-1")
        .unwrap();
    assert_eq!(met.battery_mv, Some(3550));
    assert_eq!(met.last_reading.as_ref().map(|r| r.seq), Some(2));
    let pend = states
        .iter()
        .find(|s| s.device_id.as_str() == "pend-1")
        .unwrap();
    assert!(matches!(
        pend.last_reading.as_ref().unwrap().body,
        ReadingBody::Button { .. }
    ));
}

#[tokio::test]
async fn water_use_is_summed_over_meters_into_local_days_with_empty_days_as_zero() {
    // Asia/Shanghai is UTC+8: the local day of 1 December starts at 30 Nov 16:00 UTC.
    let (store, _dir) = store_with(vec![
        (meter("met-a", 1, 1, 10_000, 3600), utc(30, 15, 10)), // 30 Nov local
        (meter("met-a", 1, 2, 20_000, 3600), utc(30, 16, 10)), // 1 Dec local
        (meter("met-b", 1, 1, 5_000, 3600), utc(30, 23, 10)),  // 1 Dec local, other meter
    ])
    .await;
    let t = StoreTelemetry::new(store);
    let tz = "Asia/Shanghai".parse().unwrap();
    let range = TimeRange {
        from: utc(28, 16, 0),
        to: utc(30, 16, 0) + chrono::Duration::days(1),
    };
    let days = t
        .water_use(
            &[device("met-a"), device("met-b")],
            range,
            WaterBucket::Day,
            tz,
        )
        .await
        .unwrap();
    let got: Vec<(DateTime<Utc>, u64)> = days.iter().map(|w| (w.start, w.used_ml)).collect();
    assert_eq!(
        got,
        [
            (utc(28, 16, 0), 0),
            (utc(29, 16, 0), 10_000),
            (utc(30, 16, 0), 25_000)
        ]
    );
}
