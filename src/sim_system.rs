//! The system a scenario runs against when `vigil sim run` starts it itself: a server
//! in-process (embedded broker, SQLite in a temporary folder, the API on a free port, an
//! admin login made for the run), and, for every site, an edge gateway in-process whose
//! uplink to the district broker passes through a link that can be cut.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::sync::oneshot;
use vigil_gateway::batching::BatchSettings;
use vigil_gateway::config::{BoardBroker, GatewayConfig, MqttUrl, Upstream};
use vigil_gateway::harness::LinkCutter;
use vigil_gateway::provisioning::{hash_secret_with, low_cost_argon2};
use vigil_gateway::Gateway;
use vigil_protocol::{DeviceId, GatewayId, SiteId};
use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::config::ServerConfig;
use vigil_server::http::server::REGISTRY_FILE;
use vigil_server::http::ApiConfig;
use vigil_server::ingest::IngestStats;
use vigil_server::registry::SqliteRegistry;
use vigil_server::run::{run_with, Attachments};

/// A server started for the run.
pub struct LocalServer {
    pub api_url: String,
    /// The MQTT URL gateways publish to.
    pub broker_url: String,
    pub user: String,
    pub password: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), vigil_server::run::RunError>>,
}

const ADMIN: &str = "sim-admin";

fn random_secret() -> anyhow::Result<String> {
    let mut b = [0u8; 18];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness for a password: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl LocalServer {
    /// Starts a server storing into `data_dir`, on its embedded broker or on `broker`.
    pub async fn start(data_dir: &Path, broker: Option<&str>) -> anyhow::Result<Self> {
        let mut config = ServerConfig::default();
        config.broker.url = broker.map(str::to_owned);
        if broker.is_some() {
            // A shared broker: this run's server must not take another server's share.
            let tag = format!("vigil-sim-{}-{}", std::process::id(), random_secret()?);
            config.broker.client_id = tag.clone();
            config.broker.shared_group = tag;
        }
        config.broker.embedded.bind = "127.0.0.1".into();
        config.broker.embedded.port = 0;
        config.database.data_dir = data_dir.to_owned();
        config.ingest.max_batch_delay_ms = 10;
        config.api = Some(ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ApiConfig::default()
        });
        let stats = Arc::new(IngestStats::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_with(
            config,
            Attachments {
                stats: Arc::clone(&stats),
                ready: Some(ready_tx),
                ..Default::default()
            },
            async {
                let _ = stop_rx.await;
            },
        ));
        let ready = tokio::time::timeout(Duration::from_secs(60), ready_rx)
            .await
            .map_err(|_| anyhow!("the in-process server did not start within 60 s"))?
            .map_err(|_| anyhow!("the in-process server stopped while starting"))?;
        let api = ready
            .api
            .ok_or_else(|| anyhow!("the in-process server serves no API"))?;
        tokio::time::timeout(Duration::from_secs(60), stats.subscribed(2))
            .await
            .map_err(|_| anyhow!("the server's ingest did not subscribe within 60 s"))?;
        // An admin for the run, made the way `vigil user add` makes one.
        let password = random_secret()?;
        let registry = SqliteRegistry::open(&data_dir.join(REGISTRY_FILE))
            .map_err(|e| anyhow!("opening the server's registry: {e}"))?;
        #[allow(clippy::disallowed_methods)] // the driver owns the clock
        let now = chrono::Utc::now();
        create_user(
            &registry,
            &PasswordHashing::production(),
            NewUser {
                username: ADMIN.into(),
                password: password.clone(),
                role: Role::Admin,
                scope: SiteScope::All,
            },
            now,
        )
        .await
        .map_err(|e| anyhow!("creating the run's admin login: {e}"))?;
        Ok(Self {
            api_url: format!("http://{api}"),
            broker_url: ready.broker_url,
            user: ADMIN.into(),
            password,
            stop: Some(stop),
            task,
        })
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
    }
}

/// One site's gateway, running in-process.
pub struct SiteGateway {
    pub site: SiteId,
    pub gateway: GatewayId,
    /// Where the site's boards connect.
    pub boards: SocketAddr,
    /// The gateway's internet link.
    pub uplink: LinkCutter,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SiteGateway {
    /// Starts the site's gateway with the boards it may accept (`(device, secret)`), relaying
    /// upstream to `district_broker` (`mqtt://host:port`).
    pub async fn start(
        dir: &Path,
        site: &SiteId,
        gateway: &GatewayId,
        boards: &[(DeviceId, String)],
        district_broker: &str,
    ) -> anyhow::Result<Self> {
        let upstream = MqttUrl::parse("broker", district_broker)
            .map_err(|e| anyhow!("the district broker URL: {e}"))?;
        let uplink = LinkCutter::start((upstream.host.clone(), upstream.port))
            .await
            .context("starting the gateway's cuttable uplink")?;
        let dir = dir.join(format!("gateway-{site}-{gateway}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Low-cost argon2: these secrets live for one run on loopback.
        let argon = low_cost_argon2();
        let mut provisioning = String::new();
        for (device, secret) in boards {
            let hash = hash_secret_with(&argon, secret)
                .map_err(|e| anyhow!("hashing the secret of {device}: {e}"))?;
            provisioning.push_str(&format!(
                "[[device]]\nid = \"{device}\"\nsecret_hash = \"{hash}\"\n"
            ));
        }
        let provisioning_path = dir.join("boards.toml");
        std::fs::write(&provisioning_path, provisioning)
            .with_context(|| format!("writing {}", provisioning_path.display()))?;
        let config = GatewayConfig {
            site: site.clone(),
            gateway: gateway.clone(),
            data_dir: dir.join("data"),
            provisioning: provisioning_path,
            boards: BoardBroker::Embedded {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            upstream: Upstream {
                url: MqttUrl {
                    host: uplink.addr().ip().to_string(),
                    port: uplink.addr().port(),
                },
                client_id: format!("vigil-sim-gw-{site}-{gateway}"),
                username: None,
                password: None,
                keep_alive_s: 5,
                reconnect_min_ms: 200,
                reconnect_max_ms: 5_000,
            },
            batching: BatchSettings {
                max_age_ms: 50,
                ..BatchSettings::default()
            },
            spool_max_bytes: 64 << 20,
            quarantine_max_bytes: 1 << 20,
            console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            status_interval_ms: 10_000,
        };
        let gw = Gateway::bind(config)
            .await
            .map_err(|e| anyhow!("starting the gateway of {site}: {e}"))?;
        let boards_addr = gw
            .boards_addr()
            .ok_or_else(|| anyhow!("the gateway of {site} has no boards' broker"))?;
        let (stop, stop_rx) = oneshot::channel::<()>();
        let site_name = site.to_string();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = gw.run(shutdown).await {
                eprintln!("vigil sim run: the gateway of {site_name} stopped: {e}");
            }
        });
        Ok(Self {
            site: site.clone(),
            gateway: gateway.clone(),
            boards: boards_addr,
            uplink,
            stop: Some(stop),
            task,
        })
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}
