//! Ingest end to end against the real Mosquitto and PostgreSQL: a plain MQTT client
//! publishes, the in-process server (`run_with`) stores, the test reads the store.
//!
//! The broker is shared with other tests, so every test uses its own site, device-id prefix,
//! client id and shared-subscription group, and looks only at its own frames.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vigil_server::config::ServerConfig;
use vigil_server::ingest::{AcceptAllDevices, DeviceDirectory, IngestError, IngestStats};
use vigil_server::run::{run_with, Attachments, Ready, RunError};
use vigil_server::store::{QuarantineRecord, ReadingsQuery, SharedStore, Store};

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RunError>>,
    ready: Ready,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server stops");
        result.unwrap().unwrap();
    }
}

fn config(client_id: &str, database_url: Option<String>, dir: &tempfile::TempDir) -> ServerConfig {
    let mut c = ServerConfig::default();
    c.broker.url = Some(mqtt_url());
    c.broker.client_id = client_id.to_owned();
    c.broker.shared_group = format!("g-{client_id}");
    c.broker.session_expiry_s = 300;
    c.database.url = database_url;
    c.database.data_dir = dir.path().to_owned();
    c.ingest.max_batch_delay_ms = 5;
    c
}

async fn start(config: ServerConfig, attachments: Attachments) -> Running {
    let stats = Arc::clone(&attachments.stats);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let attachments = Attachments {
        ready: Some(ready_tx),
        // These tests publish ids nobody registered.
        directory: attachments
            .directory
            .or_else(|| Some(Arc::new(AcceptAllDevices))),
        ..attachments
    };
    let task = tokio::spawn(run_with(config, attachments, async {
        let _ = stop_rx.await;
    }));
    let ready = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("server becomes ready")
        .expect("server starts");
    tokio::time::timeout(Duration::from_secs(30), stats.subscribed(2))
        .await
        .expect("server subscribes");
    Running { stop, task, ready }
}

async fn stored_seqs(store: &SharedStore, device: &str) -> Vec<(u32, u32)> {
    let page = store
        .readings(ReadingsQuery {
            device: common::device(device),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            after: None,
            limit: 10_000,
        })
        .await
        .unwrap();
    let mut v: Vec<_> = page.readings.iter().map(|r| (r.boot_id, r.seq)).collect();
    v.sort_unstable();
    v
}

async fn quarantined_for(store: &SharedStore, needle: &str) -> Vec<QuarantineRecord> {
    store
        .quarantined(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|q| q.topic.contains(needle))
        .collect()
}

fn batch_topic(site: &str) -> String {
    format!("vigil/v1/site/{site}/gw/gw-1/batch")
}

#[tokio::test]
async fn a_batch_delivered_twice_is_stored_and_forwarded_exactly_once() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let id = unique("d");
    let site = unique("s");
    let dev = format!("{id}-m");
    let sink = Collector::new(&id);
    let server = start(
        config(&unique("c"), Some(schema.url.clone()), &dir),
        Attachments {
            sink: sink.clone(),
            ..Default::default()
        },
    )
    .await;
    let now = now_ms() as u64;
    let frames: Vec<_> = (1..=20)
        .map(|s| (now, meter(&dev, 1, s, 5, 3000)))
        .collect();
    let payload = batch(&site, "gw-1", 1, &frames);
    publish(
        &mqtt_url(),
        vec![
            (batch_topic(&site), payload.clone()),
            (batch_topic(&site), payload),
        ],
    )
    .await;
    // A marker published after both copies: once it is committed, both copies were handled
    // (one writer, messages in order).
    let marker = batch(&site, "gw-1", 2, &[(now, meter(&dev, 1, 21, 5, 3000))]);
    publish(&mqtt_url(), vec![(batch_topic(&site), marker)]).await;
    sink.wait_until("the marker", |v| v.iter().any(|f| f.2 == 21))
        .await;

    let expected: Vec<(u32, u32)> = (1..=21).map(|s| (1, s)).collect();
    assert_eq!(stored_seqs(&server.ready.store, &dev).await, expected);
    let mut forwarded: Vec<u32> = sink.seen().iter().map(|f| f.2).collect();
    forwarded.sort_unstable();
    assert_eq!(
        forwarded,
        (1..=21).collect::<Vec<_>>(),
        "each frame forwarded once"
    );
    let latest = server
        .ready
        .store
        .latest(Some(vec![device(&dev)]))
        .await
        .unwrap();
    assert_eq!(latest[0].site_id.as_deref(), Some(site.as_str()));
    assert_eq!(latest[0].last_seq, 21);
    server.stop().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_server_killed_between_commit_and_acknowledgement_stores_the_redelivery_once() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let id = unique("k");
    let site = unique("s");
    let dev = format!("{id}-m");
    let client_id = unique("c");

    // First life: commits, then "dies" before acknowledging.
    // Only a commit holding this test's frames "kills" it (the broker carries other tests'
    // traffic too).
    let crash_prefix = id.clone();
    let crash: vigil_server::ingest::writer::CrashAfterCommit =
        Arc::new(move |b: &vigil_server::store::IngestBatch| {
            b.frames
                .iter()
                .any(|f| f.frame.device_id.as_str().starts_with(&crash_prefix))
        });
    let sink = Collector::new(&id);
    let first = start(
        config(&client_id, Some(schema.url.clone()), &dir),
        Attachments {
            crash_after_commit: Some(crash),
            sink: sink.clone(),
            ..Default::default()
        },
    )
    .await;
    let now = now_ms() as u64;
    let frames: Vec<_> = (1..=20)
        .map(|s| (now, meter(&dev, 1, s, 5, 3000)))
        .collect();
    publish(
        &mqtt_url(),
        vec![(batch_topic(&site), batch(&site, "gw-1", 1, &frames))],
    )
    .await;
    let died = tokio::time::timeout(Duration::from_secs(30), first.task)
        .await
        .expect("the first server stops at its first commit")
        .unwrap();
    assert!(
        matches!(died, Err(RunError::Ingest(IngestError::CrashedAfterCommit))),
        "{died:?}"
    );
    let store = schema.store().await;
    let committed = {
        let page = store
            .readings(ReadingsQuery {
                device: device(&dev),
                from_ms: i64::MIN,
                to_ms: i64::MAX,
                after: None,
                limit: 100,
            })
            .await
            .unwrap();
        page.readings.len()
    };
    assert_eq!(committed, 20, "the first life committed the batch");
    assert!(
        sink.seen().is_empty(),
        "nothing forwarded before the crash point"
    );

    // Second life, same client id: the broker redelivers the unacknowledged batch.
    let seen_by_directory = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&seen_by_directory);
    let prefix = id.clone();
    let directory = move |d: &vigil_protocol::DeviceId| {
        if d.as_str().starts_with(&prefix) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        true
    };
    let sink = Collector::new(&id);
    let second = start(
        config(&client_id, Some(schema.url.clone()), &dir),
        Attachments {
            directory: Some(Arc::new(directory) as Arc<dyn DeviceDirectory>),
            sink: sink.clone(),
            stats: Arc::new(IngestStats::default()),
            ..Default::default()
        },
    )
    .await;
    let marker = batch(&site, "gw-1", 2, &[(now, meter(&dev, 1, 21, 5, 3000))]);
    publish(&mqtt_url(), vec![(batch_topic(&site), marker)]).await;
    sink.wait_until("the marker", |v| v.iter().any(|f| f.2 == 21))
        .await;
    let redelivered = IngestStats::get(&seen_by_directory);
    assert!(
        redelivered >= 21,
        "the broker redelivered the batch ({redelivered} frames seen, 21 expected)"
    );
    // Whatever the first life committed, every frame is stored exactly once now.
    let expected: Vec<(u32, u32)> = (1..=21).map(|s| (1, s)).collect();
    assert_eq!(stored_seqs(&second.ready.store, &dev).await, expected);
    assert_eq!(
        sink.seen().len(),
        1,
        "only the marker is new to the second life: the redelivery was absorbed"
    );
    second.stop().await;
    drop(store);
    schema.drop_schema().await;
}

#[tokio::test]
async fn bad_messages_are_quarantined_with_their_reason_and_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("q");
    let site = unique("s");
    let other_site = unique("o");
    let good = format!("{id}-good");
    let sink = Collector::new(&id);
    let server = start(
        config(&unique("c"), None, &dir),
        Attachments {
            sink: sink.clone(),
            ..Default::default()
        },
    )
    .await;
    let now = now_ms() as u64;
    let bad_entry = {
        // One good frame and one entry whose frame bytes are not a frame.
        let good_frame = encode(&meter(&good, 1, 1, 5, 3000));
        let entries = [
            vigil_protocol::BatchEntry {
                received_ms: now,
                frame: &good_frame,
            },
            vigil_protocol::BatchEntry {
                received_ms: now,
                frame: &[0xff, 0x00, 0x13],
            },
        ];
        let header = vigil_protocol::BatchHeader {
            gateway_id: vigil_protocol::GatewayId::new("gw-1").unwrap(),
            site_id: vigil_protocol::SiteId::new(&site).unwrap(),
            batch_seq: 1,
        };
        let mut buf = vec![0u8; 4096];
        let n = vigil_protocol::encode_batch(&header, &entries, &mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    let wrong_site = batch(
        &other_site,
        "gw-1",
        1,
        &[(now, meter(&good, 1, 50, 5, 3000))],
    );
    let dev_topic = format!("vigil/v1/dev/{good}/up");
    let mismatched_uplink = encode(&meter(&format!("{id}-other"), 1, 1, 5, 3000));
    let messages = vec![
        (batch_topic(&site), b"not cbor at all".to_vec()),
        (batch_topic(&site), vec![0xa5; 200 * 1024]),
        (batch_topic(&site), wrong_site),
        (batch_topic(&site), bad_entry),
        (dev_topic.clone(), mismatched_uplink),
        (format!("vigil/v1/dev/{id} bad/up"), vec![1, 2, 3]),
        // A well-formed direct uplink after all that: still ingested.
        (dev_topic.clone(), encode(&press(&good, 1, 2))),
    ];
    publish(&mqtt_url(), messages).await;
    sink.wait_until("both good frames", |v| v.len() == 2).await;

    assert_eq!(
        stored_seqs(&server.ready.store, &good).await,
        vec![(1, 1), (1, 2)]
    );
    let mut reasons: Vec<String> = quarantined_for(&server.ready.store, &site)
        .await
        .into_iter()
        .map(|q| q.reason)
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons.contains(&"oversize".to_owned()), "{reasons:?}");
    assert!(
        reasons.contains(&"topic_mismatch".to_owned()),
        "{reasons:?}"
    );
    let oversize = quarantined_for(&server.ready.store, &site)
        .await
        .into_iter()
        .find(|q| q.reason == "oversize")
        .unwrap();
    assert_eq!(oversize.payload_len, 200 * 1024);
    assert_eq!(oversize.payload.len(), 4096, "payload kept is capped");
    let dev_reasons: Vec<String> = quarantined_for(&server.ready.store, &id)
        .await
        .into_iter()
        .filter(|q| q.topic.starts_with("vigil/v1/dev/"))
        .map(|q| q.reason)
        .collect();
    assert_eq!(dev_reasons.len(), 2, "{dev_reasons:?}");
    assert!(dev_reasons.contains(&"topic_mismatch".to_owned()));
    assert!(dev_reasons.contains(&"unknown_topic".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn frames_of_devices_unknown_to_the_directory_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique("u");
    let site = unique("s");
    let known = format!("{id}-known");
    let stranger = format!("{id}-stranger");
    let sink = Collector::new(&id);
    let known_id = known.clone();
    let server = start(
        config(&unique("c"), None, &dir),
        Attachments {
            sink: sink.clone(),
            directory: Some(Arc::new(move |d: &vigil_protocol::DeviceId| {
                d.as_str() == known_id
            })),
            ..Default::default()
        },
    )
    .await;
    let now = now_ms() as u64;
    let payload = batch(
        &site,
        "gw-1",
        1,
        &[
            (now, meter(&known, 1, 1, 5, 3000)),
            (now, meter(&stranger, 1, 1, 5, 3000)),
            (now, meter(&known, 1, 2, 5, 3000)),
        ],
    );
    publish(&mqtt_url(), vec![(batch_topic(&site), payload)]).await;
    sink.wait_until("the known device's frames", |v| v.len() == 2)
        .await;
    assert!(stored_seqs(&server.ready.store, &stranger).await.is_empty());
    let q = quarantined_for(&server.ready.store, &site).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].reason, "unknown_device");
    assert!(q[0].detail.contains(&stranger));
    server.stop().await;
}
