//! The ingest writer on its own: batching bounds, urgent frames, retries, acknowledgement
//! only after the commit. Real SQLite store; the broker side is a recording acknowledger.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use tokio::sync::{mpsc, watch};
use vigil_protocol::DeviceId;
use vigil_server::ingest::decode::DecodedMessage;
use vigil_server::ingest::writer::{run_writer, Acknowledger, Inbound, WriterSettings};
use vigil_server::ingest::{IngestStats, NoSink};
use vigil_server::store::sqlite::SqliteStore;
use vigil_server::store::*;

/// Records acknowledged tokens.
struct Recorder(watch::Sender<Vec<u32>>);

#[async_trait]
impl Acknowledger for Recorder {
    type Token = u32;
    async fn ack(&self, token: u32) {
        self.0.send_modify(|v| v.push(token));
    }
}

/// A store whose first `failures` commits fail.
struct Flaky {
    inner: SqliteStore,
    failures: u32,
    attempts: AtomicU32,
}

#[async_trait]
impl Store for Flaky {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn commit(&self, batch: Arc<IngestBatch>) -> Result<CommitReport, StoreError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(StoreError::WorkerGone);
        }
        self.inner.commit(batch).await
    }
    async fn readings(&self, q: ReadingsQuery) -> Result<ReadingsPage, StoreError> {
        self.inner.readings(q).await
    }
    async fn latest(&self, d: Option<Vec<DeviceId>>) -> Result<Vec<DeviceLatest>, StoreError> {
        self.inner.latest(d).await
    }
    async fn water_use(
        &self,
        d: DeviceId,
        from: i64,
        to: i64,
        b: Bucket,
    ) -> Result<Vec<WaterUse>, StoreError> {
        self.inner.water_use(d, from, to, b).await
    }
    async fn quarantined(&self, limit: u32) -> Result<Vec<QuarantineRecord>, StoreError> {
        self.inner.quarantined(limit).await
    }
    async fn prune(&self, older_than_ms: i64) -> Result<PruneReport, StoreError> {
        self.inner.prune(older_than_ms).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

struct Harness {
    tx: mpsc::Sender<Inbound<u32>>,
    acked: watch::Receiver<Vec<u32>>,
    task: tokio::task::JoinHandle<Result<(), vigil_server::ingest::IngestError>>,
    store: Arc<Flaky>,
    _dir: tempfile::TempDir,
}

async fn harness(failures: u32, max_batch_readings: usize, max_delay: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Flaky {
        inner: sqlite_store(&dir).await,
        failures,
        attempts: AtomicU32::new(0),
    });
    let (ack_tx, acked) = watch::channel(Vec::new());
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(run_writer(
        rx,
        store.clone() as SharedStore,
        Arc::new(Recorder(ack_tx)),
        Arc::new(NoSink),
        Arc::new(IngestStats::default()),
        WriterSettings {
            max_batch_readings,
            max_delay,
            quarantine_bound: 100,
        },
        None,
    ));
    Harness {
        tx,
        acked,
        task,
        store,
        _dir: dir,
    }
}

fn message(frames: Vec<vigil_protocol::UplinkFrame>) -> DecodedMessage {
    DecodedMessage {
        frames: frames.into_iter().map(|f| incoming(f, now_ms())).collect(),
        quarantine: Vec::new(),
    }
}

async fn wait_acked(h: &mut Harness, n: usize) -> Vec<u32> {
    tokio::time::timeout(Duration::from_secs(10), h.acked.wait_for(|v| v.len() >= n))
        .await
        .expect("acknowledged in time")
        .unwrap()
        .clone()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_failed_commit_is_retried_and_acknowledged_only_once_it_succeeds() {
    let mut h = harness(2, 1000, Duration::from_millis(1)).await;
    let frames = (1..=3).map(|s| meter("w-1", 1, s, 1, 3000)).collect();
    h.tx.send(Inbound {
        decoded: message(frames),
        token: 7,
    })
    .await
    .unwrap();
    assert_eq!(wait_acked(&mut h, 1).await, vec![7]);
    assert_eq!(
        h.store.attempts.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    let page = h
        .store
        .readings(ReadingsQuery {
            device: device("w-1"),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page.readings.len(), 3);
}

#[tokio::test]
async fn an_urgent_frame_is_committed_without_waiting_for_the_batch_delay() {
    let mut h = harness(0, 1000, HOUR).await;
    h.tx.send(Inbound {
        decoded: message(vec![press("w-2", 1, 1)]),
        token: 1,
    })
    .await
    .unwrap();
    assert_eq!(wait_acked(&mut h, 1).await, vec![1]);
}

#[tokio::test]
async fn a_full_transaction_is_committed_without_waiting_for_the_batch_delay() {
    let mut h = harness(0, 5, HOUR).await;
    for (token, seqs) in [(1, 1..=3), (2, 4..=6)] {
        let frames = seqs.map(|s| meter("w-3", 1, s, 1, 3000)).collect();
        h.tx.send(Inbound {
            decoded: message(frames),
            token,
        })
        .await
        .unwrap();
    }
    assert_eq!(wait_acked(&mut h, 2).await, vec![1, 2]);
}

#[tokio::test]
async fn closing_the_inbound_queue_commits_and_acknowledges_what_is_held() {
    let mut h = harness(0, 1000, HOUR).await;
    h.tx.send(Inbound {
        decoded: message(vec![meter("w-4", 1, 1, 1, 3000)]),
        token: 9,
    })
    .await
    .unwrap();
    drop(h.tx);
    let result = tokio::time::timeout(Duration::from_secs(10), h.task)
        .await
        .expect("writer ends")
        .unwrap();
    assert!(result.is_ok());
    assert_eq!(*h.acked.borrow_and_update(), vec![9]);
}
