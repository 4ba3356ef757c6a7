//! Vigil edge gateway: the boards' local broker, frame validation, the durable spool, the
//! uplink to the district, the local alarm console and the downlink relay.
//!
//! # Layout
//!
//! Sans-IO decisions (time passed in, no sockets):
//! - [`validate`]: decode and check every board message (topic ACL, provisioning, codec);
//! - [`spool`]: durable-receipt windows, the spool-full policy, and the redb-backed spool;
//! - [`batching`]: which frames go upstream next (urgent first, size/age bounds, drain rate);
//! - [`status`]: board liveness, the gateway's status report, counters;
//! - [`console::alarms`]: the alarms the local console lists;
//! - [`relay`]: which board a downlink from the server goes to;
//! - [`broker::BoardSession`]: per-login topic ACLs for the embedded broker.
//!
//! I/O drivers:
//! - [`broker`]: the embedded rumqttd behind the ACL guard (or an external local broker);
//! - [`uplink`]: the rumqttc connection to the district's broker, with backoff;
//! - [`console`]: the HTTP page and JSON API (axum);
//! - `core`: the loop that wires them together; [`Gateway::run`] takes its shutdown signal
//!   from the caller, so tests start and stop a gateway in-process.
//!
//! [`harness`] has simulated boards, an upstream collector and a cuttable link for the tests
//! and for [`bench`], which measures throughput. `docs/gateway.md` is the operator's guide.

pub mod batching;
pub mod bench;
pub mod broker;
pub mod config;
pub mod console;
mod core;
pub mod harness;
pub mod provisioning;
pub mod quarantine;
pub mod relay;
pub mod spool;
pub mod status;
pub mod uplink;
pub mod validate;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};
use vigil_protocol::Topic;

use crate::batching::BatchPlanner;
use crate::broker::BoardLink;
use crate::config::BoardBroker;
pub use crate::config::GatewayConfig;
use crate::console::alarms::{Alarm, AlarmBoard};
use crate::console::{ConsoleState, LinkView};
use crate::core::{now_ms, Core, Topics};
use crate::provisioning::Provisioning;
use crate::quarantine::Quarantine;
use crate::spool::{Spool, SpoolLimits};
use crate::status::{BoardLiveness, Counters};

/// Why the gateway could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Provisioning(#[from] provisioning::ProvisioningError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("cannot open the quarantine file: {0}")]
    Quarantine(std::io::Error),
    #[error("cannot listen for the console on {addr}: {source}")]
    Console {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Messages handled in one spool transaction at most.
const MAX_INBOUND_BURST: usize = 4_000;

/// A gateway whose listeners are bound and whose spool is open, ready to [`run`](Self::run).
pub struct Gateway {
    config: GatewayConfig,
    provisioning: Arc<Provisioning>,
    counters: Arc<Counters>,
    spool: Spool,
    quarantine: Quarantine,
    boards: BoardLink,
    console: TcpListener,
}

impl Gateway {
    /// Opens the spool, starts the boards' broker and binds the console.
    pub async fn bind(config: GatewayConfig) -> Result<Self, GatewayError> {
        let provisioning = Arc::new(Provisioning::load(&config.provisioning)?);
        let counters = Arc::new(Counters::default());
        let spool = Spool::open(
            &config.data_dir.join("spool"),
            SpoolLimits {
                max_bytes: config.spool_max_bytes,
            },
        )?;
        let quarantine = Quarantine::open(&config.data_dir, config.quarantine_max_bytes)
            .map_err(GatewayError::Quarantine)?;
        let boards = match &config.boards {
            BoardBroker::Embedded { listen } => {
                broker::start_embedded(*listen, provisioning.clone(), counters.clone()).await?
            }
            BoardBroker::External { url } => {
                broker::start_external(url, &format!("{}-boards", config.upstream.client_id))
            }
        };
        let console = TcpListener::bind(config.console_listen)
            .await
            .map_err(|source| GatewayError::Console {
                addr: config.console_listen,
                source,
            })?;
        info!(
            site = %config.site,
            gateway = %config.gateway,
            boards = provisioning.len(),
            spooled = spool.len(),
            "gateway ready"
        );
        Ok(Self {
            config,
            provisioning,
            counters,
            spool,
            quarantine,
            boards,
            console,
        })
    }

    /// Where boards connect (embedded broker only).
    pub fn boards_addr(&self) -> Option<SocketAddr> {
        self.boards.listen
    }

    /// Where the local alarm console is served.
    pub fn console_addr(&self) -> SocketAddr {
        self.console
            .local_addr()
            .unwrap_or(self.config.console_listen)
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Runs until `shutdown` completes (or a spool failure makes it unsafe to go on).
    ///
    /// The embedded broker has no shutdown API: its threads outlive this call in-process.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
        let Gateway {
            config,
            provisioning,
            counters,
            spool,
            quarantine,
            boards,
            console,
        } = self;
        let BoardLink {
            mut inbound,
            outbound,
            ..
        } = boards;

        let mut alarm_board = AlarmBoard::default();
        for (key, json) in spool.alarms()? {
            match serde_json::from_slice::<Alarm>(&json) {
                Ok(a) => alarm_board.insert(a),
                Err(e) => warn!(alarm = %key, error = %e, "unreadable console alarm skipped"),
            }
        }
        let alarms = Arc::new(Mutex::new(alarm_board));
        let board_liveness = Arc::new(Mutex::new(BoardLiveness::default()));
        let link_view = Arc::new(Mutex::new(LinkView::default()));

        let (ack_tx, mut ack_rx) = mpsc::channel(64);
        let console_state = ConsoleState {
            site: config.site.to_string(),
            gateway: config.gateway.to_string(),
            alarms: alarms.clone(),
            boards: board_liveness.clone(),
            counters: counters.clone(),
            link: link_view.clone(),
            acks: ack_tx,
        };
        let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
        let console_task = tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let listener = console.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let served = axum::serve(listener, console::app(console_state))
                .with_graceful_shutdown(async {
                    let _ = console_stopped.await;
                })
                .await;
            if let Err(e) = served {
                warn!(error = %e, "console server stopped");
            }
        });

        let (ev_tx, mut ev_rx) = mpsc::channel(8_192);
        let downlink_topic = Topic::GatewayDown {
            site: config.site.clone(),
            gateway: config.gateway.clone(),
        }
        .to_topic_string()
        .to_string();
        let uplink_task = tokio::spawn(uplink::run(
            config.upstream.clone(),
            downlink_topic,
            config.batching.max_inflight,
            ev_tx,
        ));

        let urgent_backlog = spool
            .index()
            .iter()
            .filter(|(_, m)| m.urgent)
            .map(|(k, _)| *k)
            .collect();
        let now = now_ms();
        let mut core = Core {
            topics: Topics::new(&config.site, &config.gateway),
            site: config.site.clone(),
            gateway: config.gateway.clone(),
            provisioning,
            counters,
            spool,
            quarantine,
            planner: BatchPlanner::new(config.batching, urgent_backlog),
            outbound,
            alarms,
            boards: board_liveness,
            link_view,
            status_interval_ms: config.status_interval_ms,
            client: None,
            fifo: VecDeque::new(),
            by_pkid: HashMap::new(),
            batch_alarms: HashMap::new(),
            acks_inflight: Vec::new(),
            batch_seq: now,
            next_status_ms: now,
            next_flush_ms: now,
            next_sync_ms: now,
            next_expire_ms: now,
            buf: vec![0; vigil_protocol::limits::MAX_BATCH_BYTES],
            held_downlinks: HashMap::new(),
        };

        tokio::pin!(shutdown);
        let result = loop {
            let now = now_ms();
            let deadline = match core.handle_timeout(now) {
                Ok(d) => d,
                Err(e) => break Err(e),
            };
            let sleep = tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now)));
            let step = tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                Some(ev) = ev_rx.recv() => {
                    let mut r = core.handle_uplink(ev, now_ms());
                    while r.is_ok() {
                        match ev_rx.try_recv() {
                            Ok(ev) => r = core.handle_uplink(ev, now_ms()),
                            Err(_) => break,
                        }
                    }
                    r
                }
                Some(cmd) = ack_rx.recv() => core.handle_ack(cmd, now_ms()),
                Some(first) = inbound.recv() => {
                    let mut msgs = vec![first];
                    while msgs.len() < MAX_INBOUND_BURST {
                        match inbound.try_recv() {
                            Ok(m) => msgs.push(m),
                            Err(_) => break,
                        }
                    }
                    core.handle_inbound(msgs, now_ms());
                    Ok(())
                }
                () = sleep => Ok(()),
            };
            if let Err(e) = step.and_then(|()| core.pump_uplink(now_ms())) {
                break Err(e);
            }
        };
        if let Err(e) = core.spool.flush_removals(true) {
            warn!(error = %e, "final spool commit failed");
        }
        uplink_task.abort();
        let _ = stop_console.send(());
        let _ = console_task.await;
        info!("gateway stopped");
        result.map_err(GatewayError::from)
    }
}

/// Binds and runs a gateway until `shutdown` completes.
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    Gateway::bind(config).await?.run(shutdown).await
}
