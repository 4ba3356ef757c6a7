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

use crate::alert_store::{self, AlertStoreError, AnyAlertStore};
use crate::broker::{self, BrokerError, EmbeddedBroker};
use crate::config::ServerConfig;
use crate::engine::mqtt::{run_engine_mqtt, EngineMqttSettings};
use crate::engine::source::CacheSource;
use crate::engine::{EngineHandle, EngineParts, EngineSettings, LiveSink, Outputs};
use crate::ingest::decode::DecodeLimits;
use crate::ingest::mqtt::{run_ingest, IngestParts, MqttSettings};
use crate::ingest::writer::{CrashAfterCommit, WriterSettings};
use crate::ingest::{
    BrokerAddress, DetectWithEngine, DeviceDirectory, FrameSink, IngestError, IngestStats,
};
use crate::notify::live::LiveHub;
use crate::registry::cache::RegistryCache;
use crate::registry::Registry;
use crate::store::{self, SharedStore, StoreError};

/// What the other parts of the server plug into ingest.
pub struct Attachments {
    /// Which devices are accepted. `None` (the default, what `vigil server` uses): the
    /// registry — frames of unregistered devices are quarantined. Tests and benchmarks that
    /// publish unregistered ids pass `Some(Arc::new(AcceptAllDevices))`.
    pub directory: Option<Arc<dyn DeviceDirectory>>,
    /// Where committed frames go; default: the alert engine ([`DetectWithEngine`]). Any other
    /// sink runs ingest without detection (tests, the ingest benchmark).
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
            sink: Arc::new(DetectWithEngine),
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
    /// The alert store (alerts, audit trail, escalation queue).
    pub alerts: AnyAlertStore,
    /// The alert engine, unless another frame sink was attached.
    pub engine: Option<EngineHandle>,
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
    #[error("alert store: {0}")]
    AlertStore(#[from] AlertStoreError),
    #[error("alert engine: {0}")]
    Engine(String),
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
    let alerts = alert_store::open(&config.database).await?;
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
    // The engine stops after ingest, so that the frames ingest commits last are analysed.
    let (engine_stop_tx, engine_stop_rx) = tokio::sync::watch::channel(false);
    let engine = if attachments.sink.is_engine_placeholder() {
        let engine_broker = match embedded {
            Some(b) => BrokerAddress {
                host: b.ingest.ip().to_string(),
                port: b.ingest.port(),
            },
            None => address.clone(),
        };
        Some(
            start_engine(
                &config,
                &store,
                &alerts,
                Arc::clone(&registry),
                live.clone(),
                engine_broker,
                engine_stop_rx.clone(),
            )
            .await?,
        )
    } else {
        None
    };
    let api = match &config.api {
        Some(api_config) => {
            let actions = engine.as_ref().map(|(e, _)| e.actions());
            let alert_store = alerts.clone();
            Some(
                crate::http::server::start_with(
                    registry_service.clone(),
                    Arc::clone(&store),
                    api_config.clone(),
                    live.clone(),
                    stopped(stop_rx.clone()),
                    move |state| {
                        let state = state.with_alerts(alert_store);
                        match actions {
                            Some(a) => state.with_alert_actions(a),
                            None => state,
                        }
                    },
                )
                .await?,
            )
        }
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
            alerts: alerts.clone(),
            engine: engine.as_ref().map(|(e, _)| e.clone()),
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
        sink: match &engine {
            Some((e, _)) => Arc::new(e.clone()),
            None => attachments.sink,
        },
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
    let _ = engine_stop_tx.send(true);
    if let Some((_, task)) = engine {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("alert engine did not stop within 10 s");
        }
    }
    Ok(result?)
}

/// Starts the alert engine on the registry cache, the alert store, the webhook dispatcher
/// and its own broker connection; it stops when `stop` turns true.
async fn start_engine(
    config: &ServerConfig,
    store: &SharedStore,
    alerts: &AnyAlertStore,
    registry: Arc<RegistryCache>,
    live: LiveHub,
    broker: BrokerAddress,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(EngineHandle, tokio::task::JoinHandle<()>), RunError> {
    let engine_config = &config.engine;
    let source = CacheSource::new(
        registry,
        engine_config.default_policy.clone().map(Into::into),
    );
    let webhook_settings = crate::notify::dispatch::WebhookSettings::from_config(&config.notify)
        .map_err(|e| RunError::Engine(format!("webhooks ([notify]): {e}")))?;
    let mut webhook_stop = stop.clone();
    let (webhooks, _webhook_task) =
        crate::notify::dispatch::spawn_webhooks(alerts.clone(), webhook_settings, async move {
            let _ = webhook_stop.wait_for(|s| *s).await;
        });
    let (down_tx, down_rx) = tokio::sync::mpsc::channel(1024);
    let settings = EngineSettings {
        escalation_poll: Duration::from_millis(engine_config.escalation_poll_ms.max(10)),
        water_history_days: engine_config.water_history_days,
        ..EngineSettings::default()
    };
    let parts = EngineParts {
        alerts: alerts.clone(),
        telemetry: Some(Arc::clone(store)),
        directory: source,
        outputs: Outputs {
            live: Arc::new(live) as Arc<dyn LiveSink>,
            webhooks: Some(Arc::new(webhooks) as Arc<dyn crate::engine::outputs::WebhookSink>),
        },
        downlinks: Some(down_tx),
        clock: crate::engine::system_clock(),
    };
    let mut engine_stop = stop.clone();
    let (handle, task) = crate::engine::start(parts, settings, async move {
        let _ = engine_stop.wait_for(|s| *s).await;
    })
    .await?;
    let mqtt = EngineMqttSettings {
        address: broker,
        client_id: format!("{}-engine", config.broker.client_id),
        keep_alive_s: config.broker.keep_alive_s,
    };
    let mqtt_task = tokio::spawn(run_engine_mqtt(mqtt, handle.clone(), down_rx, stop));
    let task = tokio::spawn(async move {
        let _ = task.await;
        let _ = mqtt_task.await;
    });
    Ok((handle, task))
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
