//! `vigil bench gateway`: sustained frames per second from boards through the spool to the
//! upstream broker, and the drain rate of a spooled backlog after an outage.
// A benchmark measures wall time: it is a driver, not a core.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_protocol::{DeviceId, GatewayId, SiteId, UplinkFrame};

use crate::batching::BatchSettings;
use crate::config::{BoardBroker, GatewayConfig, MqttUrl, Upstream};
use crate::harness::{meter_reading, unique_name, SimBoard, UpstreamCollector};
use crate::provisioning::{hash_secret_with, low_cost_argon2};
use crate::spool::{Arrival, Spool, SpoolLimits};
use crate::Gateway;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub upstream: MqttUrl,
    /// Frames sent by the simulated boards in the sustained run (0 skips it).
    pub frames: u64,
    /// Frames spooled during the simulated outage (0 skips the drain run).
    pub drain_frames: u64,
    pub boards: usize,
}

/// Measured figures.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub sustained_frames: u64,
    pub sustained_secs: f64,
    pub drain_frames: u64,
    pub drain_secs: f64,
    pub fill_secs: f64,
}

impl BenchReport {
    pub fn sustained_fps(&self) -> f64 {
        self.sustained_frames as f64 / self.sustained_secs.max(1e-9)
    }
    pub fn drain_fps(&self) -> f64 {
        self.drain_frames as f64 / self.drain_secs.max(1e-9)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Gateway(#[from] crate::GatewayError),
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error(transparent)]
    Board(#[from] crate::harness::BoardError),
}

const SECRET: &str = "bench-secret";

/// Told with a timeout: Mosquitto drops QoS 1 messages for a subscriber more than
/// `max_queued_messages` (default 1000) behind, so on a broker loaded by other work the
/// benchmark's own subscriber can lose batches the gateway delivered.
const LAGGING_SUBSCRIBER: &str = "the benchmark's subscriber may have lagged behind a busy \
    broker and lost batches (Mosquitto max_queued_messages); see docs/performance.md";

fn device(i: usize) -> String {
    format!("bench-{i:05}")
}

fn write_site(dir: &Path, boards: usize, upstream: &MqttUrl) -> Result<GatewayConfig, BenchError> {
    let hash = hash_secret_with(&low_cost_argon2(), SECRET)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut prov = String::new();
    for i in 0..boards {
        prov.push_str(&format!(
            "[[device]]\nid = \"{}\"\nsecret_hash = \"{hash}\"\n",
            device(i)
        ));
    }
    let path = dir.join("boards.toml");
    std::fs::write(&path, prov).map_err(|e| BenchError::Setup(e.to_string()))?;
    let site = unique_name("bench");
    Ok(GatewayConfig {
        site: SiteId::new(&site).map_err(|_| BenchError::Setup("site id".into()))?,
        gateway: GatewayId::new("gw").map_err(|_| BenchError::Setup("gateway id".into()))?,
        data_dir: dir.join("data"),
        provisioning: path,
        boards: BoardBroker::Embedded {
            listen: "127.0.0.1:0"
                .parse()
                .map_err(|_| BenchError::Setup("addr".into()))?,
        },
        upstream: Upstream {
            url: upstream.clone(),
            client_id: unique_name("bench-gw"),
            username: None,
            password: None,
            keep_alive_s: 30,
            reconnect_min_ms: 100,
            reconnect_max_ms: 1_000,
        },
        batching: BatchSettings {
            max_age_ms: 20,
            max_inflight: 32,
            drain_rate_fps: 0,
            ..BatchSettings::default()
        },
        spool_max_bytes: 4 << 30,
        quarantine_max_bytes: 1 << 20,
        console_listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| BenchError::Setup("addr".into()))?,
        status_interval_ms: 60_000,
    })
}

/// Runs the benchmark; prints progress to stderr.
pub async fn bench_gateway(opts: BenchOptions) -> Result<BenchReport, BenchError> {
    let mut report = BenchReport::default();
    if opts.frames > 0 {
        sustained(&opts, &mut report).await?;
    }
    if opts.drain_frames > 0 {
        drain(&opts, &mut report).await?;
    }
    Ok(report)
}

async fn sustained(opts: &BenchOptions, report: &mut BenchReport) -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(|e| BenchError::Setup(e.to_string()))?;
    let boards = opts.boards.max(1);
    let config = write_site(dir.path(), boards, &opts.upstream)?;
    let collector = UpstreamCollector::start(
        &opts.upstream,
        config.site.as_str(),
        config.gateway.as_str(),
    )
    .await
    .map_err(BenchError::Setup)?;
    let gateway = Gateway::bind(config).await?;
    let broker = gateway
        .boards_addr()
        .ok_or_else(|| BenchError::Setup("no embedded broker".into()))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    let per_board = opts.frames.div_ceil(boards as u64);
    let total = per_board * boards as u64;
    let mut sims = Vec::new();
    for i in 0..boards {
        let mut b = SimBoard::start(broker, &device(i), SECRET, 1);
        b.set_window(512);
        sims.push(b);
    }
    for b in &sims {
        b.wait_connected(30).await?;
    }
    eprintln!("bench gateway: sustained run, {boards} boards x {per_board} frames");
    let start = Instant::now();
    let mut senders = Vec::new();
    for mut b in sims {
        senders.push(tokio::spawn(async move {
            for n in 0..per_board {
                b.send(meter_reading(n * 1_000)).await?;
            }
            b.wait_receipted(120).await?;
            Ok::<SimBoard, crate::harness::BoardError>(b)
        }));
    }
    collector
        .wait_for(180, |c| c.frames.len() as u64 >= total)
        .await
        .map_err(|e| BenchError::Setup(format!("{e}: {LAGGING_SUBSCRIBER}")))?;
    report.sustained_secs = start.elapsed().as_secs_f64();
    report.sustained_frames = total;
    for s in senders {
        let _ = s.await;
    }
    let _ = stop.send(());
    let _ = running.await;
    Ok(())
}

async fn drain(opts: &BenchOptions, report: &mut BenchReport) -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(|e| BenchError::Setup(e.to_string()))?;
    let boards = opts.boards.max(1);
    let config = write_site(dir.path(), boards, &opts.upstream)?;
    eprintln!(
        "bench gateway: spooling {} frames as an outage would",
        opts.drain_frames
    );
    let fill = Instant::now();
    {
        let mut spool = Spool::open(
            &config.data_dir.join("spool"),
            SpoolLimits {
                max_bytes: config.spool_max_bytes,
            },
        )?;
        let ids: Vec<DeviceId> = (0..boards)
            .map(|i| DeviceId::new(&device(i)))
            .collect::<Result<_, _>>()
            .map_err(|_| BenchError::Setup("device id".into()))?;
        let mut buf = [0u8; 512];
        let mut n = 0u64;
        while n < opts.drain_frames {
            let chunk = (opts.drain_frames - n).min(20_000);
            let mut arrivals = Vec::with_capacity(chunk as usize);
            for k in n..n + chunk {
                let frame = UplinkFrame {
                    device_id: ids[(k % boards as u64) as usize].clone(),
                    boot_id: 1,
                    seq: (k / boards as u64) as u32 + 1,
                    uptime_ms: k,
                    wall_ms: None,
                    body: meter_reading(k * 10),
                };
                let len = frame
                    .encode(&mut buf)
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                arrivals.push(Arrival {
                    frame,
                    raw: buf[..len].to_vec(),
                    received_ms: crate::core::now_ms(),
                });
            }
            spool.admit(&arrivals, |_| None)?;
            n += chunk;
        }
    }
    report.fill_secs = fill.elapsed().as_secs_f64();
    let collector = UpstreamCollector::start(
        &opts.upstream,
        config.site.as_str(),
        config.gateway.as_str(),
    )
    .await
    .map_err(BenchError::Setup)?;
    let gateway = Gateway::bind(config).await?;
    eprintln!("bench gateway: link restored, draining");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let running = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    let total = opts.drain_frames;
    collector
        .wait_for(300, |c| c.frames.len() as u64 >= total)
        .await
        .map_err(|e| BenchError::Setup(format!("{e}: {LAGGING_SUBSCRIBER}")))?;
    report.drain_secs = start.elapsed().as_secs_f64();
    report.drain_frames = total;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    Ok(())
}
