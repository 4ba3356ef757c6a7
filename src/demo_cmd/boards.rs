//! The demo district's hardware: one gateway per site, in this process (its embedded broker for
//! the boards on a free port, its spool under the data directory, its uplink to the server's
//! broker), and the simulated boards publishing to their site's gateway.
//!
//! The boards are the gateway harness's `SimBoard`s: they speak the real protocol with their
//! own credentials and keep every frame until the gateway's durable receipt covers it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vigil_gateway::batching::BatchSettings;
use vigil_gateway::config::{BoardBroker, GatewayConfig, MqttUrl, Upstream};
use vigil_gateway::harness::SimBoard;
use vigil_gateway::provisioning::{hash_secret_with, low_cost_argon2};
use vigil_gateway::{Gateway, GatewayError};
use vigil_protocol::{DeviceId, SiteId, UplinkBody};
use vigil_sim::scenario::{DeviceKind, Scenario};

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
    boards: BTreeMap<DeviceId, SimBoard>,
    /// "Help is coming" downlinks already reported, per board.
    help_seen: BTreeMap<DeviceId, usize>,
}

impl DistrictHardware {
    /// Starts a gateway per site (uplink to `upstream`, the server's broker) and every board.
    /// `boot_id` numbers this run's frames apart from an earlier run's on a kept data directory.
    pub async fn start(
        district: &Scenario,
        data_dir: &Path,
        upstream: &str,
        boot_id: u32,
    ) -> anyhow::Result<Self> {
        let upstream = MqttUrl::parse("server broker", upstream)?;
        let secret = random_secret();
        let hash = hash_secret_with(&low_cost_argon2(), &secret)
            .map_err(|e| anyhow::anyhow!("cannot hash the boards' secret: {e}"))?;
        let mut gateways = Vec::new();
        let mut boards = BTreeMap::new();
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
            for d in district.devices.iter().filter(|d| d.site == site.id) {
                boards.insert(
                    d.id.clone(),
                    SimBoard::start(boards_addr, d.id.as_str(), &secret, boot_id),
                );
            }
            gateways.push(SiteGateway {
                site: site.id.clone(),
                boards_addr,
                console,
                stop,
                task,
            });
        }
        for b in boards.values() {
            b.wait_connected(30)
                .await
                .with_context(|| format!("board {} connects to its gateway", b.device()))?;
        }
        Ok(Self {
            gateways,
            boards,
            help_seen: BTreeMap::new(),
        })
    }

    pub fn board_count(&self) -> usize {
        self.boards.len()
    }

    /// Publishes a frame from `device` (queued at once; the board keeps it until receipted).
    pub async fn send(&mut self, device: &DeviceId, body: UplinkBody) -> anyhow::Result<()> {
        let board = self
            .boards
            .get_mut(device)
            .with_context(|| format!("no board {device} in the district"))?;
        board.send(body).await?;
        Ok(())
    }

    /// Boards that received a "help is coming" downlink since the last call, with the alert
    /// it answers.
    pub fn new_help_coming(&mut self) -> Vec<(DeviceId, u64)> {
        let mut news = Vec::new();
        for (device, board) in &self.boards {
            let help = board.help_coming();
            let seen = self.help_seen.entry(device.clone()).or_insert(0);
            for h in help.iter().skip(*seen) {
                news.push((device.clone(), h.alert_id));
            }
            *seen = help.len();
        }
        news
    }

    /// Stops the boards, then the gateways (each finishes what it holds).
    pub async fn stop(self) {
        drop(self.boards);
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
