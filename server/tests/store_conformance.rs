//! One behaviour, two backends: every test here runs against SQLite and against a real
//! PostgreSQL (its own schema per test).

mod common;

use std::sync::Arc;

use common::*;
use vigil_server::dedup::Admission;
use vigil_server::store::{Bucket, IngestBatch, Quarantined, ReadingsQuery, Store, StoreError};

const T0: i64 = 1_764_460_800_000; // 2025-11-30T00:00:00Z
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn batch_of(frames: Vec<vigil_server::store::IncomingFrame>) -> Arc<IngestBatch> {
    Arc::new(IngestBatch {
        frames,
        quarantine: Vec::new(),
        quarantine_bound: 100,
    })
}

async fn count(store: &dyn Store, device: &str) -> usize {
    let mut n = 0;
    let mut after = None;
    loop {
        let page = store
            .readings(ReadingsQuery {
                device: common::device(device),
                from_ms: i64::MIN,
                to_ms: i64::MAX,
                after,
                limit: 1000,
            })
            .await
            .unwrap();
        n += page.readings.len();
        match page.next {
            Some(c) => after = Some(c),
            None => return n,
        }
    }
}

async fn a_batch_delivered_twice_is_stored_once(store: &dyn Store) {
    let frames: Vec<_> = (1..=50)
        .map(|s| incoming(meter("m-1", 1, s, 10, 3000), T0 + i64::from(s) * 1000))
        .collect();
    let first = store.commit(batch_of(frames.clone())).await.unwrap();
    assert_eq!(first.stored(), 50);
    let again = store.commit(batch_of(frames)).await.unwrap();
    assert_eq!(again.stored(), 0);
    assert_eq!(again.duplicates(), 50);
    assert_eq!(count(store, "m-1").await, 50);
}

async fn overlapping_batches_store_each_frame_once(store: &dyn Store) {
    let f = |s| incoming(meter("m-2", 1, s, 10, 3000), T0 + i64::from(s) * 1000);
    store
        .commit(batch_of((1..=30).map(f).collect()))
        .await
        .unwrap();
    let report = store
        .commit(batch_of((20..=60).map(f).collect()))
        .await
        .unwrap();
    assert_eq!(report.stored(), 30);
    assert_eq!(report.duplicates(), 11);
    // Duplicates inside one batch too.
    let report = store
        .commit(batch_of(vec![f(61), f(61), f(62)]))
        .await
        .unwrap();
    assert_eq!(
        report.admissions,
        vec![Admission::New, Admission::Duplicate, Admission::New]
    );
    assert_eq!(count(store, "m-2").await, 62);
}

async fn urgent_frames_overtaking_routine_ones_are_all_stored(store: &dyn Store) {
    // The call (seq 40) arrives first; the routine readings before it come later.
    store
        .commit(batch_of(vec![incoming(press("p-1", 1, 40), T0 + 40_000)]))
        .await
        .unwrap();
    let late: Vec<_> = (1..40)
        .map(|s| incoming(heartbeat("p-1", 1, s, 2900, -60), T0 + i64::from(s) * 1000))
        .collect();
    let report = store.commit(batch_of(late)).await.unwrap();
    assert_eq!(report.stored(), 39);
    assert_eq!(count(store, "p-1").await, 40);
    // The late heartbeats do not hide the call as the latest reading.
    let latest = store.latest(Some(vec![device("p-1")])).await.unwrap();
    assert_eq!(latest[0].last_seq, 40);
    assert_eq!(latest[0].last_kind, "button");
}

async fn a_new_boot_starts_its_sequence_again_without_losing_frames(store: &dyn Store) {
    let f = |boot, s| incoming(meter("m-3", boot, s, 10, 3000), T0 + i64::from(s) * 1000);
    store
        .commit(batch_of((1..=20).map(|s| f(1, s)).collect()))
        .await
        .unwrap();
    let report = store
        .commit(batch_of((1..=20).map(|s| f(2, s)).collect()))
        .await
        .unwrap();
    assert_eq!(report.stored(), 20, "boot 2 reuses seq 1..20");
    // A frame of the old boot arriving late is still recognised.
    let report = store
        .commit(batch_of(vec![f(1, 5), f(1, 21)]))
        .await
        .unwrap();
    assert_eq!(
        report.admissions,
        vec![Admission::Duplicate, Admission::New]
    );
    assert_eq!(count(store, "m-3").await, 41);
}

async fn a_never_seen_frame_older_than_the_window_is_stored_once(store: &dyn Store) {
    let f = |s| incoming(meter("m-4", 1, s, 1, 3000), T0 + i64::from(s));
    let first: Vec<_> = (1..=3000).filter(|s| s % 100 != 0).map(f).collect();
    store.commit(batch_of(first)).await.unwrap();
    let report = store
        .commit(batch_of(vec![f(100), f(100), f(101), f(1500), f(2900)]))
        .await
        .unwrap();
    // 100 and 1500 lie below the window (it covers the last 1024), 2900 inside it.
    assert_eq!(
        report.admissions,
        vec![
            Admission::LateFill,
            Admission::Duplicate,
            Admission::Duplicate,
            Admission::LateFill,
            Admission::New
        ]
    );
    assert_eq!(count(store, "m-4").await, 3000 - 30 + 3);
}

async fn readings_page_through_a_time_range_without_gaps_or_repeats(store: &dyn Store) {
    let frames: Vec<_> = (1..=95)
        .map(|s| incoming(meter("m-5", 1, s, 10, 3000), T0 + i64::from(s / 2) * 1000))
        .collect();
    store.commit(batch_of(frames)).await.unwrap();
    let (from, to) = (T0 + 10_000, T0 + 40_000);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .readings(ReadingsQuery {
                device: device("m-5"),
                from_ms: from,
                to_ms: to,
                after,
                limit: 7,
            })
            .await
            .unwrap();
        assert!(page.readings.len() <= 7);
        seen.extend(page.readings.iter().map(|r| (r.ts_ms, r.seq)));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let expected: Vec<(i64, u32)> = (1..=95u32)
        .map(|s| (T0 + i64::from(s / 2) * 1000, s))
        .filter(|(ts, _)| *ts >= from && *ts < to)
        .collect();
    assert_eq!(seen, expected);
    let page = store
        .readings(ReadingsQuery {
            device: device("m-5"),
            from_ms: from,
            to_ms: from + 1000,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let r = &page.readings[0];
    assert_eq!(r.kind, "meter");
    assert_eq!(r.volume_ml, Some(10));
    assert_eq!(r.site_id.as_deref(), Some("site-1"));
    assert_eq!(r.decode().unwrap().seq, r.seq, "the original frame is kept");
}

async fn latest_state_keeps_the_newest_reading_and_battery(store: &dyn Store) {
    store
        .commit(batch_of(vec![
            incoming(meter("m-6", 1, 10, 5, 2800), T0 + 10_000),
            incoming(heartbeat("m-6", 1, 11, 2750, -70), T0 + 11_000),
        ]))
        .await
        .unwrap();
    // An older frame arriving late must not roll the state back.
    store
        .commit(batch_of(vec![incoming(
            meter("m-6", 1, 3, 5, 3100),
            T0 + 3_000,
        )]))
        .await
        .unwrap();
    let l = &store.latest(Some(vec![device("m-6")])).await.unwrap()[0];
    assert_eq!((l.boot_id, l.last_seq), (1, 11));
    assert_eq!(l.last_kind, "heartbeat");
    assert_eq!(l.battery_mv, Some(2750));
    assert_eq!(l.rssi_dbm, Some(-70));
    assert_eq!(l.firmware.as_deref(), Some("1.2.3"));
    assert_eq!(l.readings_stored, 3);
    assert_eq!(l.last_ts_ms, T0 + 11_000);
    assert!(
        l.last_summary.contains("battery_mv=2750"),
        "{}",
        l.last_summary
    );
    let all = store.latest(None).await.unwrap();
    assert!(all.iter().any(|x| x.device_id == "m-6"));
    assert!(store
        .latest(Some(vec![device("nobody")]))
        .await
        .unwrap()
        .is_empty());
}

async fn water_use_is_summed_per_hour_and_per_day(store: &dyn Store) {
    let mut frames = Vec::new();
    // 3 readings in hour 0, 2 in hour 5, 1 on the next day.
    for (i, (ts, ml)) in [
        (T0 + 60_000, 100),
        (T0 + 120_000, 200),
        (T0 + HOUR - 1, 300),
        (T0 + 5 * HOUR, 1000),
        (T0 + 5 * HOUR + 10, 1),
        (T0 + DAY + 5, 7),
    ]
    .into_iter()
    .enumerate()
    {
        frames.push(incoming(meter("m-7", 1, i as u32 + 1, ml, 3000), ts));
    }
    frames.push(incoming(heartbeat("m-7", 1, 99, 3000, -50), T0 + 100));
    store.commit(batch_of(frames)).await.unwrap();
    let hourly = store
        .water_use(device("m-7"), T0, T0 + 2 * DAY, Bucket::Hour)
        .await
        .unwrap();
    let got: Vec<(i64, i64, i64)> = hourly
        .iter()
        .map(|w| (w.start_ms, w.used_ml, w.readings))
        .collect();
    assert_eq!(
        got,
        vec![(T0, 600, 3), (T0 + 5 * HOUR, 1001, 2), (T0 + DAY, 7, 1)]
    );
    let daily = store
        .water_use(device("m-7"), T0, T0 + 2 * DAY, Bucket::Day)
        .await
        .unwrap();
    assert_eq!(
        daily.iter().map(|w| w.used_ml).collect::<Vec<_>>(),
        vec![1601, 7]
    );
    assert!(matches!(
        store
            .water_use(device("m-7"), T0 + 1, T0, Bucket::Day)
            .await,
        Err(StoreError::InvalidQuery(_))
    ));
}

async fn quarantine_keeps_only_the_newest_records_up_to_its_bound(store: &dyn Store) {
    for round in 0..3 {
        let quarantine = (0..4)
            .map(|i| Quarantined {
                received_ms: T0 + round * 10 + i,
                topic: format!("vigil/v1/dev/x{round}-{i}/up"),
                reason: "truncated".into(),
                detail: "truncated: input ended".into(),
                payload: vec![0xa1, round as u8, i as u8],
                payload_len: 3000,
            })
            .collect();
        store
            .commit(Arc::new(IngestBatch {
                frames: Vec::new(),
                quarantine,
                quarantine_bound: 5,
            }))
            .await
            .unwrap();
    }
    let q = store.quarantined(100).await.unwrap();
    assert_eq!(q.len(), 5);
    assert_eq!(q[0].topic, "vigil/v1/dev/x2-3/up", "newest first");
    assert_eq!(q[4].topic, "vigil/v1/dev/x1-3/up");
    assert_eq!(q[0].payload, vec![0xa1, 2, 3]);
    assert_eq!(q[0].payload_len, 3000);
    assert_eq!(q[0].reason, "truncated");
}

async fn prune_deletes_raw_readings_older_than_the_cutoff(store: &dyn Store) {
    let frames: Vec<_> = (0..5)
        .map(|d| {
            incoming(
                meter("m-8", 1, d + 1, 10, 3000),
                T0 + i64::from(d) * DAY + HOUR,
            )
        })
        .collect();
    store.commit(batch_of(frames)).await.unwrap();
    let report = store.prune(T0 + 3 * DAY).await.unwrap();
    assert!(
        report.readings_deleted == 3 || report.partitions_dropped.len() == 3,
        "{report:?}"
    );
    assert_eq!(count(store, "m-8").await, 2);
    // Frames of the pruned days can still be written afterwards.
    let report = store
        .commit(batch_of(vec![incoming(
            meter("m-8", 1, 6, 1, 3000),
            T0 + HOUR,
        )]))
        .await
        .unwrap();
    assert_eq!(report.stored(), 1);
}

async fn bad_queries_get_a_typed_error(store: &dyn Store) {
    for (limit, from, to) in [(0, 0, 1), (10_001, 0, 1), (10, 5, 1)] {
        let r = store
            .readings(ReadingsQuery {
                device: device("m-9"),
                from_ms: from,
                to_ms: to,
                after: None,
                limit,
            })
            .await;
        assert!(matches!(r, Err(StoreError::InvalidQuery(_))), "{r:?}");
    }
    store.ping().await.unwrap();
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::sqlite_store(&dir).await;
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let schema = super::PgSchema::create().await;
                    let store = schema.store().await;
                    super::$name(&store).await;
                    drop(store);
                    schema.drop_schema().await;
                }
            )*
        }
    };
}

conformance!(
    a_batch_delivered_twice_is_stored_once,
    overlapping_batches_store_each_frame_once,
    urgent_frames_overtaking_routine_ones_are_all_stored,
    a_new_boot_starts_its_sequence_again_without_losing_frames,
    a_never_seen_frame_older_than_the_window_is_stored_once,
    readings_page_through_a_time_range_without_gaps_or_repeats,
    latest_state_keeps_the_newest_reading_and_battery,
    water_use_is_summed_per_hour_and_per_day,
    quarantine_keeps_only_the_newest_records_up_to_its_bound,
    prune_deletes_raw_readings_older_than_the_cutoff,
    bad_queries_get_a_typed_error,
);

#[tokio::test]
async fn sqlite_dedup_state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<_> = (1..=10)
        .map(|s| incoming(meter("m-r", 1, s, 1, 3000), T0 + i64::from(s)))
        .collect();
    {
        let store = sqlite_store(&dir).await;
        store.commit(batch_of(frames.clone())).await.unwrap();
    }
    let store = sqlite_store(&dir).await;
    assert_eq!(store.commit(batch_of(frames)).await.unwrap().stored(), 0);
}

#[tokio::test]
async fn postgres_dedup_state_is_shared_by_two_stores_on_one_database() {
    let schema = PgSchema::create().await;
    let (a, b) = (schema.store().await, schema.store().await);
    let frames: Vec<_> = (1..=200)
        .map(|s| incoming(meter("m-s", 1, s, 1, 3000), T0 + i64::from(s)))
        .collect();
    // Two instances commit the same frames at the same time: each is stored once.
    let (ra, rb) = tokio::join!(
        a.commit(batch_of(frames.clone())),
        b.commit(batch_of(frames))
    );
    assert_eq!(ra.unwrap().stored() + rb.unwrap().stored(), 200);
    assert_eq!(count(&a, "m-s").await, 200);
    drop((a, b));
    schema.drop_schema().await;
}
