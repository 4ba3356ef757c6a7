//! `vigil server`'s data plane as one future: open the store and the registry, start the
//! embedded broker when no broker URL is given, run ingest, retention and the registry
//! refresh until the caller's shutdown signal.
//!
//! The caller owns the shutdown signal (mini-redis style), so tests and benchmarks start and
//! stop a whole server in-process.

// `run` is the server driver: it reads the clock once per tick and passes it on.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::oneshot;

use crate::broker::{self, BrokerError, EmbeddedBroker};
use crate::config::ServerConfig;
use crate::ingest::decode::DecodeLimits;
use crate::ingest::mqtt::{run_ingest, IngestParts, MqttSettings};
use crate::ingest::writer::{CrashAfterCommit, WriterSettings};
use crate::ingest::{BrokerAddress, DeviceDirectory, FrameSink, IngestError, IngestStats, NoSink};
use crate::registry::cache::RegistryCache;
use crate::registry::Registry;
use crate::notify::live::LiveHub;
use crate::store::{self, SharedStore, StoreError};

/// What the other parts of the server plug into ingest.
pub struct Attachments {
    /// Which devices are accepted. `None` (the default, what `vigil server` uses): the
    /// registry — frames of unregistered devices are quarantined. Tests and benchmarks that
    /// publish unregistered ids pass `Some(Arc::new(AcceptAllDevices))`.
    pub directory: Option<Arc<dyn DeviceDirectory>>,
    /// Where committed frames go (the detectors); default: nowhere.
    pub sink: Arc<dyn FrameSink>,
    /// Live ingest totals.
    pub stats: Arc<IngestStats>,
    /// Told once the store is open and the broker reachable.
    pub ready: Option<oneshot::Sender<Ready>>,
    /// Fault injection for tests: stop after a commit, before its acknowledgement.
    pub crash_after_commit: Option<CrashAfterCommit>,
}

impl Default for Attachments {
    fn default() -> Self {
        Self {
            directory: None,
            sink: Arc::new(NoSink),
            stats: Arc::new(IngestStats::default()),
            ready: None,
            crash_after_commit: None,
        }
    }
}

/// A running server's handles.
#[derive(Clone)]
pub struct Ready {
    /// The embedded broker, when one was started.
    pub broker: Option<EmbeddedBroker>,
    /// The URL gateways and boards publish to.
    pub broker_url: String,
    pub store: SharedStore,
    /// The registry in memory (devices, sites, residents, rosters, escalation).
    pub registry: Arc<RegistryCache>,
    /// The registry facade over the same database; its writes refresh `registry` at once.
    pub registry_service: Registry,
    /// Where the HTTP API listens, when it is served.
    pub api: Option<std::net::SocketAddr>,
    /// The live events served at `GET /api/v1/events`.
    pub live: LiveHub,
}

/// Why the server stopped.
#[derive(Debug, Error)]
pub enum RunError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("registry: {0}")]
    Registry(#[from] crate::registry::StoreError),
    #[error("embedded broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("broker URL: {0}")]
    BrokerUrl(#[from] crate::ingest::BrokerUrlError),
    #[error("ingest: {0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Api(String),
}

/// Runs the server with nothing attached until `shutdown` resolves.
pub async fn run(config: ServerConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    run_with(config, Attachments::default(), shutdown).await
}

/// Runs the server with `attachments` until `shutdown` resolves.
pub async fn run_with(
    config: ServerConfig,
    attachments: Attachments,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let mut config = config;
    // Files of [notify] left unset go to the data directory, as finally configured.
    let data_dir = config.database.data_dir.clone();
    config.notify.resolve_paths(&data_dir);
    let live = LiveHub::new(config.notify.sse_buffer);
    let store = store::open(&config.database).await?;
    tracing::info!(backend = store.backend().name(), "store open");
    let registry = RegistryCache::load(crate::registry::open(&config.database).await?).await?;
    let registry_service = registry.registry();
    tracing::info!(
        devices = registry.view().devices().count(),
        sites = registry.view().sites().count(),
        "registry loaded"
    );
    let (address, embedded) = match &config.broker.url {
        Some(url) => (BrokerAddress::parse(url)?, None),
        None => {
            let b = broker::start(&config.broker.embedded).await?;
            let address = BrokerAddress {
                host: b.ingest.ip().to_string(),
                port: b.ingest.port(),
            };
            (address, Some(b))
        }
    };
    let broker_url = match (&config.broker.url, embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(b)) => format!("mqtt://{}", b.mqtt),
        (None, None) => unreachable!("an embedded broker is started when no URL is given"),
    };
    // One shutdown signal for every task: ingest and the HTTP API stop together.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let api = match &config.api {
        Some(api_config) => Some(
            crate::http::server::start(
                registry_service.clone(),
                Arc::clone(&store),
                api_config.clone(),
                live.clone(),
                stopped(stop_rx.clone()),
            )
            .await?,
        ),
        None => None,
    };
    if let Some(ready) = attachments.ready {
        let _ = ready.send(Ready {
            broker: embedded,
            broker_url,
            store: Arc::clone(&store),
            registry: Arc::clone(&registry),
            registry_service,
            api: api.as_ref().map(|a| a.address),
            live: live.clone(),
        });
    }
    let refresh = registry.spawn_refresh(config.registry.refresh_every(), stopped(stop_rx.clone()));
    let ingest_stop = stopped(stop_rx);
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let retention = tokio::spawn(retention_loop(
        Arc::clone(&store),
        config.retention.raw_readings_days,
        Duration::from_secs(config.retention.check_interval_s),
    ));
    let settings = MqttSettings {
        address,
        client_id: config.broker.client_id.clone(),
        shared_group: config.broker.shared_group.clone(),
        receive_maximum: config.broker.receive_maximum,
        session_expiry_s: config.broker.session_expiry_s,
        keep_alive_s: config.broker.keep_alive_s,
    };
    let parts = IngestParts {
        store,
        directory: attachments
            .directory
            .unwrap_or_else(|| Arc::clone(&registry) as Arc<dyn DeviceDirectory>),
        sink: attachments.sink,
        stats: attachments.stats,
        writer: WriterSettings {
            max_batch_readings: config.ingest.max_batch_readings,
            max_delay: config.ingest.max_batch_delay(),
            quarantine_bound: config.ingest.quarantine_rows,
        },
        limits: DecodeLimits {
            quarantine_payload_bytes: config.ingest.quarantine_payload_bytes,
        },
        crash_after_commit: attachments.crash_after_commit,
    };
    let ingest = run_ingest(settings, parts, ingest_stop);
    tokio::pin!(ingest, signal);
    let result = tokio::select! {
        result = &mut ingest => result,
        // Stop requested: ingest commits and acknowledges what it holds, then returns.
        () = &mut signal => ingest.await,
    };
    retention.abort();
    refresh.abort();
    if let Some(api) = api {
        api.task.abort();
    }
    Ok(result?)
}

async fn retention_loop(store: SharedStore, days: u32, every: Duration) {
    if days == 0 {
        return;
    }
    let keep_ms = i64::from(days) * 86_400_000;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match store.prune(now_ms - keep_ms).await {
            Ok(report) => {
                tracing::info!(readings_deleted = report.readings_deleted,
                    partitions_dropped = ?report.partitions_dropped,
                    windows_deleted = report.windows_deleted, "retention applied");
            }
            Err(e) => {
                metrics::counter!("vigil_store_retention_errors_total").increment(1);
                tracing::error!(error = %e, "retention failed; will retry");
            }
        }
    }
}
