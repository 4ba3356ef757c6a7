//! `vigil bench ingest`: how many readings per second the server commits, measured against
//! how fast a bare MQTT subscriber receives the very same messages in the same run.
//!
//! One run: start a server (the real [`crate::run::run_with`], on a fresh SQLite file or a
//! fresh PostgreSQL schema), subscribe a bare client to the same topic, publish gateway
//! batches of meter readings at QoS 1 as fast as the broker takes them, and time both
//! receivers from the first publish until each has everything (the server: committed and
//! acknowledged). Peak RSS is the whole process's (server, publisher and subscriber).

// A benchmark measures wall time: it is a driver, not a core.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use thiserror::Error;
use tokio::sync::oneshot;
use vigil_protocol::{
    encode_batch, BatchEntry, BatchHeader, DeviceId, GatewayId, MeterReading, SiteId, UplinkBody,
    UplinkFrame,
};

use crate::config::ServerConfig;
use crate::ingest::{BrokerAddress, IngestStats};
use crate::run::{run_with, Attachments};

/// Which store to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchBackend {
    Sqlite,
    Postgres,
}

impl BenchBackend {
    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::Sqlite => "sqlite",
            BenchBackend::Postgres => "postgres",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct IngestBenchOptions {
    pub backend: BenchBackend,
    pub readings: u64,
    /// Readings per gateway batch (at most 500).
    pub batch_entries: usize,
    /// Distinct boards the readings come from.
    pub devices: u32,
    /// External broker; `None` starts the embedded one.
    pub broker_url: Option<String>,
    /// PostgreSQL to use (a schema is created and dropped); required for `Postgres`.
    pub postgres_url: Option<String>,
    /// Server ingest settings.
    pub max_batch_readings: usize,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct IngestBenchReport {
    pub backend: BenchBackend,
    pub broker: String,
    pub readings: u64,
    pub messages: u64,
    /// Readings committed by the server per second.
    pub stored_per_s: f64,
    /// Readings received by the bare subscriber per second.
    pub bare_per_s: f64,
    /// Transactions the server committed during the run.
    pub commits: u64,
    /// Duplicates the server skipped (all traffic on the broker, not only the benchmark's).
    pub duplicates: u64,
    /// Peak resident set of the whole process, in KiB.
    pub peak_rss_kib: Option<u64>,
}

impl IngestBenchReport {
    /// Server rate over bare-subscriber rate.
    pub fn ratio(&self) -> f64 {
        self.stored_per_s / self.bare_per_s
    }
}

impl std::fmt::Display for IngestBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<8} readings={} messages={} commits={} stored={:.0}/s bare-subscriber={:.0}/s \
             ratio={:.2} duplicates={} peak-rss={}",
            self.backend.name(),
            self.readings,
            self.messages,
            self.commits,
            self.stored_per_s,
            self.bare_per_s,
            self.ratio(),
            self.duplicates,
            self.peak_rss_kib
                .map(|k| format!("{} MiB", k / 1024))
                .unwrap_or_else(|| "n/a".into()),
        )
    }
}

/// Why a run failed.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("server: {0}")]
    Server(#[from] crate::run::RunError),
    #[error("the server stopped before it was ready")]
    NotReady,
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("--backend postgres needs a database URL")]
    NoPostgresUrl,
    #[error("broker URL: {0}")]
    BrokerUrl(#[from] crate::ingest::BrokerUrlError),
    #[error("MQTT: {0}")]
    Mqtt(String),
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding: {0}")]
    Encode(#[from] vigil_protocol::EncodeError),
}

/// Runs one measurement.
pub async fn run_ingest_bench(o: &IngestBenchOptions) -> Result<IngestBenchReport, BenchError> {
    let run_id = format!(
        "b{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() % 1_000_000_000)
            .unwrap_or(0)
    );
    let data_dir = tempfile::tempdir()?;
    let mut config = ServerConfig::default();
    config.broker.url = o.broker_url.clone();
    config.broker.embedded.port = 0;
    config.broker.client_id = format!("vigil-{run_id}");
    config.broker.shared_group = format!("vigil-{run_id}");
    config.broker.session_expiry_s = 0;
    config.ingest.max_batch_readings = o.max_batch_readings;
    config.database.data_dir = data_dir.path().to_owned();
    let schema = format!("vigil_bench_{run_id}");
    if o.backend == BenchBackend::Postgres {
        let url = o.postgres_url.as_deref().ok_or(BenchError::NoPostgresUrl)?;
        execute_pg(url, &format!("CREATE SCHEMA {schema}")).await?;
        config.database.url = Some(with_search_path(url, &schema));
    }
    let result = measure(o, config, &run_id).await;
    if o.backend == BenchBackend::Postgres {
        if let Some(url) = &o.postgres_url {
            execute_pg(url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
        }
    }
    result
}

async fn measure(
    o: &IngestBenchOptions,
    config: ServerConfig,
    run_id: &str,
) -> Result<IngestBenchReport, BenchError> {
    let site = SiteId::new(&format!("s-{run_id}")).map_err(|_| BenchError::Mqtt("id".into()))?;
    let gateway = GatewayId::new("gw-bench").map_err(|_| BenchError::Mqtt("id".into()))?;
    let payloads = build_batches(o, run_id, &site, &gateway)?;
    let messages = payloads.len() as u64;
    let topic = format!("vigil/v1/site/{site}/gw/{gateway}/batch");

    let stats = Arc::new(IngestStats::default());
    let counter = Arc::new(SiteCounter {
        site: site.clone(),
        stored: tokio::sync::watch::Sender::new(0),
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let attachments = Attachments {
        // The benchmark's devices are not registered.
        directory: Some(Arc::new(crate::ingest::AcceptAllDevices)),
        stats: Arc::clone(&stats),
        sink: counter.clone(),
        ready: Some(ready_tx),
        ..Default::default()
    };
    let server = tokio::spawn(run_with(config, attachments, async {
        let _ = stop_rx.await;
    }));
    let ready = match ready_rx.await {
        Ok(r) => r,
        Err(_) => {
            return match server.await {
                Ok(Err(e)) => Err(e.into()),
                _ => Err(BenchError::NotReady),
            }
        }
    };
    let broker = BrokerAddress::parse(&ready.broker_url)?;
    guard(
        Duration::from_secs(30),
        "server subscription",
        stats.subscribed(2),
    )
    .await?;

    // Phase 1: the same payloads on a topic outside the server's subscription, received by
    // the bare subscriber alone, as fast as the broker delivers them.
    let raw_topic = format!("vigil-bench/{run_id}/batch");
    let bare_done = bare_subscriber(&broker, run_id, &raw_topic, messages).await?;
    let start = Instant::now();
    tokio::spawn(publish_all(
        broker.clone(),
        format!("{run_id}-raw"),
        raw_topic,
        payloads.clone(),
        None,
    ));
    let budget = Duration::from_secs(60 + o.readings / 5_000);
    let bare_elapsed = guard(budget, "bare subscriber", bare_done).await? - start;

    // Phase 2: the server. The publisher stays at most PUBLISH_WINDOW messages ahead of what
    // the server committed: a broker queues only so much for a slow subscriber (Mosquitto
    // drops QoS 1 messages beyond `max_queued_messages`, 1000 by default).
    let gate = Gate {
        stored: counter.stored.subscribe(),
        per_message: o
            .batch_entries
            .clamp(1, vigil_protocol::limits::MAX_BATCH_ENTRIES) as u64,
    };
    let start = Instant::now();
    tokio::spawn(publish_all(
        broker.clone(),
        run_id.to_owned(),
        topic,
        payloads,
        Some(gate),
    ));
    let stored_all = async {
        let mut rx = counter.stored.subscribe();
        let _ = rx.wait_for(|&n| n >= o.readings).await;
        start.elapsed()
    };
    let stored_elapsed = guard(budget, "server commits", stored_all).await?;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(IngestBenchReport {
        backend: o.backend,
        broker: ready.broker_url,
        readings: o.readings,
        messages,
        stored_per_s: o.readings as f64 / stored_elapsed.as_secs_f64(),
        bare_per_s: o.readings as f64 / bare_elapsed.as_secs_f64(),
        commits: IngestStats::get(&stats.commits),
        duplicates: IngestStats::get(&stats.duplicates),
        peak_rss_kib: peak_rss_kib(),
    })
}

/// Counts the committed frames of the benchmark's own site (a shared broker may carry other
/// traffic, which the server stores too but which must not count).
struct SiteCounter {
    site: SiteId,
    stored: tokio::sync::watch::Sender<u64>,
}

#[async_trait::async_trait]
impl crate::ingest::FrameSink for SiteCounter {
    async fn committed(&self, frames: Vec<crate::store::IncomingFrame>) {
        let n = frames
            .iter()
            .filter(|f| f.via.as_ref().is_some_and(|(s, _)| *s == self.site))
            .count() as u64;
        if n > 0 {
            self.stored.send_modify(|v| *v += n);
        }
    }
}

async fn guard<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, BenchError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| BenchError::Timeout(limit, what.to_owned()))
}

fn build_batches(
    o: &IngestBenchOptions,
    run_id: &str,
    site: &SiteId,
    gateway: &GatewayId,
) -> Result<Vec<Bytes>, BenchError> {
    let per = o
        .batch_entries
        .clamp(1, vigil_protocol::limits::MAX_BATCH_ENTRIES);
    let devices: Vec<DeviceId> = (0..o.devices.max(1))
        // Ids unique to the run: a shared broker may carry another run's frames, and the
        // same (device, boot, seq) from two runs would rightly be deduplicated.
        .map(|i| DeviceId::new(&format!("{run_id}-{i:05}")).expect("valid id"))
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(per);
    let mut out = Vec::new();
    let mut buf = vec![0u8; vigil_protocol::limits::MAX_BATCH_BYTES];
    let mut fbuf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    for n in 0..o.readings {
        let device = &devices[(n % devices.len() as u64) as usize];
        let seq = (n / devices.len() as u64) as u32 + 1;
        let mut slots = heapless::Vec::new();
        for s in 0..15u32 {
            let _ = slots.push((n as u32).wrapping_add(s) % 200);
        }
        let frame = UplinkFrame {
            device_id: device.clone(),
            boot_id: 1,
            seq,
            uptime_ms: u64::from(seq) * 900_000,
            wall_ms: Some(now_ms),
            body: UplinkBody::Meter(MeterReading {
                total_ml: u64::from(seq) * 1500,
                flow_ml_per_min: 0,
                battery_mv: 3000,
                tamper: false,
                leak: false,
                slot_s: 60,
                slots_ml: slots,
            }),
        };
        let len = frame.encode(&mut fbuf)?;
        frames.push(fbuf[..len].to_vec());
        if frames.len() == per || n + 1 == o.readings {
            let entries: Vec<BatchEntry<'_>> = frames
                .iter()
                .map(|f| BatchEntry {
                    received_ms: now_ms,
                    frame: f,
                })
                .collect();
            let header = BatchHeader {
                gateway_id: gateway.clone(),
                site_id: site.clone(),
                batch_seq: out.len() as u64,
            };
            let len = encode_batch(&header, &entries, &mut buf)?;
            out.push(Bytes::copy_from_slice(&buf[..len]));
            frames.clear();
        }
    }
    Ok(out)
}

fn mqtt_options(broker: &BrokerAddress, client_id: String) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, &broker.host, broker.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(200);
    o
}

fn nodelay(eventloop: &mut rumqttc::EventLoop) {
    eventloop.network_options.set_tcp_nodelay(true);
}

/// Subscribes a plain client; the returned future resolves with the time from the first
/// message received to the last of `expected`.
async fn bare_subscriber(
    broker: &BrokerAddress,
    run_id: &str,
    topic: &str,
    expected: u64,
) -> Result<impl std::future::Future<Output = Instant>, BenchError> {
    let (client, mut eventloop) =
        AsyncClient::new(mqtt_options(broker, format!("bare-{run_id}")), 64);
    nodelay(&mut eventloop);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .map_err(|e| BenchError::Mqtt(e.to_string()))?;
    let subscribed = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(BenchError::Mqtt(e.to_string())),
            }
        }
    };
    guard(Duration::from_secs(10), "bare subscription", subscribed).await??;
    let done = async move {
        let mut got = 0u64;
        while got < expected {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => got += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "bare subscriber connection error"),
            }
        }
        let last = Instant::now();
        let _ = client.try_disconnect();
        last
    };
    Ok(done)
}

/// Messages the publisher may be ahead of the server's commits.
const PUBLISH_WINDOW: u64 = 400;

/// Holds the publisher back to the server's pace.
struct Gate {
    stored: tokio::sync::watch::Receiver<u64>,
    per_message: u64,
}

async fn publish_all(
    broker: BrokerAddress,
    run_id: String,
    topic: String,
    payloads: Vec<Bytes>,
    mut gate: Option<Gate>,
) {
    let (client, mut eventloop) =
        AsyncClient::new(mqtt_options(&broker, format!("pub-{run_id}")), 256);
    nodelay(&mut eventloop);
    let driver = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "benchmark publisher connection error");
                    return;
                }
            }
        }
    });
    for (i, p) in payloads.into_iter().enumerate() {
        if let Some(g) = &mut gate {
            let may_lead = PUBLISH_WINDOW * g.per_message;
            let needed = (i as u64 * g.per_message).saturating_sub(may_lead);
            if g.stored.wait_for(|&n| n >= needed).await.is_err() {
                return;
            }
        }
        if client
            .publish_bytes(topic.clone(), QoS::AtLeastOnce, false, p)
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = driver.await;
}

fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

async fn execute_pg(url: &str, sql: &str) -> Result<(), BenchError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(conn);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// The process's peak resident set (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
