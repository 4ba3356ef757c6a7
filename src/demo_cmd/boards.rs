//! The demo district's hardware: one gateway per site, in this process (its embedded broker for
//! the boards on a free port, its spool under the data directory, its uplink to the server's
//! broker), and the district's boards on a rack, each connected to its site's gateway.
//!
//! The boards are `vigil_sim::board`'s firmware-in-the-loop boards, as `vigil sim run` runs
//! them: the real `vigil-firmware` logic on simulated hardware, each with the firmware's own
//! MQTT client over its own TCP connection. The script changes what their hardware senses
//! ([`RackCommand`]); every frame comes from the firmware.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vigil_gateway::batching::BatchSettings;
use vigil_gateway::config::{BoardBroker, GatewayConfig, MqttUrl, Upstream};
use vigil_gateway::provisioning::{hash_secret_with, low_cost_argon2};
use vigil_gateway::{Gateway, GatewayError};
use vigil_protocol::{DeviceId, SiteId};
use vigil_sim::board::rack::{spawn_rack, RackCommand, RackHandle, RackSlot};
use vigil_sim::clock::RunClock;
use vigil_sim::scenario::{DeviceKind, Scenario, WallTime};

/// How long the rack runs the boards at most: for all practical purposes, until stopped.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A gateway running in this process.
pub struct SiteGateway {
    pub site: SiteId,
    pub boards_addr: SocketAddr,
    pub console: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), GatewayError>>,
}

/// Every gateway and board of the district.
pub struct DistrictHardware {
    pub gateways: Vec<SiteGateway>,
    rack: RackHandle,
    board_count: usize,
    /// "Help is coming" downlinks already reported, per board.
    help_seen: BTreeMap<DeviceId, u64>,
    /// Rack faults already reported.
    faults_seen: usize,
}

/// Where the district's boards start: the script's clock and the wall time it starts at.
pub struct BoardsStart {
    /// Script time 0; the boards run `speed` script seconds per real second from it.
    pub at: Instant,
    pub speed: f64,
    pub wall: WallTime,
    /// Boot ids count on from this one, apart from an earlier run's on a kept data directory.
    pub last_boot_id: u32,
}

impl DistrictHardware {
    /// Starts a gateway per site (uplink to `upstream`, the server's broker), then the
    /// district's boards on a rack, and waits until every board is connected.
    pub async fn start(
        district: &Scenario,
        data_dir: &Path,
        upstream: &str,
        start: &BoardsStart,
    ) -> anyhow::Result<Self> {
        let upstream = MqttUrl::parse("server broker", upstream)?;
        let secret = random_secret();
        let hash = hash_secret_with(&low_cost_argon2(), &secret)
            .map_err(|e| anyhow::anyhow!("cannot hash the boards' secret: {e}"))?;
        let mut gateways = Vec::new();
        let mut brokers = BTreeMap::new();
        for site in &district.sites {
            let dir = data_dir.join("gateways").join(site.id.as_str());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut provisioning = String::new();
            for d in district.devices.iter().filter(|d| d.site == site.id) {
                let (resident, room) = match &d.kind {
                    DeviceKind::Meter { resident } => (resident.clone(), None),
                    DeviceKind::Pendant { resident } => (Some(resident.clone()), None),
                    DeviceKind::Fire { room, .. } => (None, Some(room.clone())),
                };
                provisioning.push_str(&format!(
                    "[[device]]\nid = \"{}\"\nsecret_hash = \"{hash}\"\n",
                    d.id
                ));
                if let Some(r) = resident {
                    provisioning.push_str(&format!("resident = \"{r}\"\n"));
                }
                if let Some(r) = room {
                    provisioning.push_str(&format!("room = \"{r}\"\n"));
                }
            }
            let provisioning_file = dir.join("boards.toml");
            std::fs::write(&provisioning_file, provisioning)
                .with_context(|| format!("cannot write {}", provisioning_file.display()))?;
            let config = GatewayConfig {
                site: site.id.clone(),
                gateway: site.gateway.clone(),
                data_dir: dir.join("data"),
                provisioning: provisioning_file,
                boards: BoardBroker::Embedded {
                    listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                },
                upstream: Upstream {
                    url: upstream.clone(),
                    client_id: format!("demo-{}", site.gateway),
                    username: None,
                    password: None,
                    keep_alive_s: 15,
                    reconnect_min_ms: 200,
                    reconnect_max_ms: 5_000,
                },
                batching: BatchSettings {
                    max_age_ms: 200,
                    ..BatchSettings::default()
                },
                spool_max_bytes: 64 << 20,
                quarantine_max_bytes: 1 << 20,
                console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                status_interval_ms: 10_000,
            };
            let gateway = Gateway::bind(config)
                .await
                .with_context(|| format!("gateway of {}", site.id))?;
            let boards_addr = gateway
                .boards_addr()
                .context("the gateway's embedded broker has no address")?;
            let console = gateway.console_addr();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(gateway.run(async {
                let _ = stopped.await;
            }));
            brokers.insert(site.id.clone(), boards_addr);
            gateways.push(SiteGateway {
                site: site.id.clone(),
                boards_addr,
                console,
                stop,
                task,
            });
        }
        let slots: Vec<RackSlot> =
            vigil_sim::demo::boards(district, start.wall, &secret, start.last_boot_id)
                .into_iter()
                .filter_map(|board| {
                    let broker = *brokers.get(board.site())?;
                    Some(RackSlot { board, broker })
                })
                .collect();
        let board_count = slots.len();
        let clock = RunClock {
            time_offset: Duration::ZERO,
            acceleration: start.speed,
        };
        let rack = spawn_rack(slots, clock, start.at, FOREVER).context("starting the boards")?;
        let hardware = Self {
            gateways,
            rack,
            board_count,
            help_seen: BTreeMap::new(),
            faults_seen: 0,
        };
        let connected = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let status = hardware.rack.status();
                if status.boards.len() == board_count && status.boards.iter().all(|b| b.connected) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if connected.is_err() {
            let status = hardware.rack.status();
            let waiting: Vec<String> = status
                .boards
                .iter()
                .filter(|b| !b.connected)
                .map(|b| b.device.to_string())
                .chain(status.faults)
                .collect();
            hardware.stop().await;
            anyhow::bail!(
                "the boards did not all connect to their gateways within 30 s: {}",
                waiting.join(", ")
            );
        }
        Ok(hardware)
    }

    pub fn board_count(&self) -> usize {
        self.board_count
    }

    /// Hands the rack a command (a board's hardware senses something, a board loses power…).
    pub fn send(&self, command: RackCommand) {
        self.rack.send(command);
    }

    /// Boards that received a "help is coming" downlink since the last call.
    pub fn new_help_coming(&mut self) -> Vec<DeviceId> {
        let mut news = Vec::new();
        for b in self.rack.status().boards {
            let seen = self.help_seen.entry(b.device.clone()).or_insert(0);
            if b.counters.help_coming > *seen {
                news.push(b.device.clone());
            }
            *seen = (*seen).max(b.counters.help_coming);
        }
        news
    }

    /// Faults of the rack since the last call: a board that could not boot, an input its
    /// hardware cannot sense.
    pub fn new_faults(&mut self) -> Vec<String> {
        let faults = self.rack.status().faults;
        let news = faults.iter().skip(self.faults_seen).cloned().collect();
        self.faults_seen = faults.len();
        news
    }

    /// Stops the boards (their sockets close), then the gateways (each finishes what it
    /// holds).
    pub async fn stop(self) {
        let rack = self.rack;
        // The rack's thread ends within one pass.
        let _ = tokio::task::spawn_blocking(move || rack.stop()).await;
        for g in self.gateways {
            let _ = g.stop.send(());
            match g.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("vigil demo: gateway of {}: {e}", g.site),
                Err(e) => eprintln!("vigil demo: gateway of {} stopped abnormally: {e}", g.site),
            }
        }
    }
}

fn random_secret() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 24)
}
