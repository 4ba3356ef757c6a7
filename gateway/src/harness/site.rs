use std::net::SocketAddr;
use std::path::PathBuf;

use vigil_protocol::{GatewayId, SiteId};

use crate::batching::BatchSettings;
use crate::config::{BoardBroker, GatewayConfig, MqttUrl, Upstream};
use crate::provisioning::{hash_secret_with, low_cost_argon2};

/// A throwaway site: a temporary directory with a provisioning file for `boards` boards
/// (`000-<unique>` …, one shared secret, a resident and a room each) and a gateway
/// configuration whose upstream is `upstream` (often a [`super::LinkCutter`]).
pub struct SiteFixture {
    pub dir: tempfile::TempDir,
    pub config: GatewayConfig,
    pub secret: String,
    pub devices: Vec<String>,
}

impl SiteFixture {
    pub fn new(boards: usize, upstream: SocketAddr) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let secret = "correct horse battery staple".to_owned();
        let hash = hash_secret_with(&low_cost_argon2(), &secret).map_err(std::io::Error::other)?;
        // Unique per fixture: with an external broker, boards of parallel tests share topics.
        let tag = super::unique_name("b");
        let tag = &tag[2..tag.len().min(24)];
        let devices: Vec<String> = (0..boards).map(|i| format!("{i:03}-{tag}")).collect();
        let mut prov = String::new();
        for (i, d) in devices.iter().enumerate() {
            prov.push_str(&format!(
                "[[device]]\nid = \"{d}\"\nsecret_hash = \"{hash}\"\nresident = \"Resident {i}\"\nroom = \"{}\"\n",
                100 + i
            ));
        }
        let provisioning = dir.path().join("boards.toml");
        std::fs::write(&provisioning, prov)?;
        let site = super::unique_name("site");
        let bad = |what: &str| std::io::Error::other(format!("invalid {what}"));
        let config = GatewayConfig {
            site: SiteId::new(&site).map_err(|_| bad("site"))?,
            gateway: GatewayId::new("gw-1").map_err(|_| bad("gateway"))?,
            data_dir: dir.path().join("data"),
            provisioning,
            boards: BoardBroker::Embedded {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            upstream: Upstream {
                url: MqttUrl {
                    host: upstream.ip().to_string(),
                    port: upstream.port(),
                },
                client_id: super::unique_name("gw"),
                username: None,
                password: None,
                keep_alive_s: 5,
                reconnect_min_ms: 50,
                reconnect_max_ms: 400,
            },
            batching: BatchSettings {
                max_age_ms: 50,
                ..BatchSettings::default()
            },
            spool_max_bytes: 64 << 20,
            quarantine_max_bytes: 1 << 20,
            console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            status_interval_ms: 300,
        };
        Ok(Self {
            dir,
            config,
            secret,
            devices,
        })
    }

    pub fn site(&self) -> &str {
        self.config.site.as_str()
    }

    pub fn gateway(&self) -> &str {
        self.config.gateway.as_str()
    }

    /// Writes the configuration as a file for `vigil gateway --config`, with the boards'
    /// broker on `broker_port` (a restarted gateway must come back on the same port).
    pub fn write_config_file(&self, broker_port: u16) -> std::io::Result<PathBuf> {
        let c = &self.config;
        let text = format!(
            r#"site = "{site}"
gateway = "{gw}"
data_dir = "{data}"
provisioning = "{prov}"

[boards]
listen = "127.0.0.1:{broker_port}"

[upstream]
url = "mqtt://{host}:{port}"
client_id = "{client}"
keep_alive_s = {ka}
reconnect_min_ms = {rmin}
reconnect_max_ms = {rmax}

[batching]
max_age_ms = {age}

[console]
listen = "127.0.0.1:0"

[status]
interval_s = 0.3
"#,
            site = c.site,
            gw = c.gateway,
            data = c.data_dir.display(),
            prov = c.provisioning.display(),
            host = c.upstream.url.host,
            port = c.upstream.url.port,
            client = c.upstream.client_id,
            ka = c.upstream.keep_alive_s,
            rmin = c.upstream.reconnect_min_ms,
            rmax = c.upstream.reconnect_max_ms,
            age = c.batching.max_age_ms,
        );
        let path = self.dir.path().join("gateway.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }
}
