//! The gateway's configuration file (TOML). `docs/gateway.md` describes every setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_protocol::{GatewayId, SiteId};

use crate::batching::BatchSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("`{field}` must be a valid identifier (1-32 of A-Z a-z 0-9 . _ -), found {found:?}")]
    InvalidId { field: &'static str, found: String },
    #[error("`{field}` must be an mqtt://host:port URL, found {found:?}")]
    InvalidUrl { field: &'static str, found: String },
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// An `mqtt://host:port` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub host: String,
    pub port: u16,
}

impl MqttUrl {
    /// Parses `mqtt://host[:port]` (port 1883 when absent) or `tcp://…`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::InvalidUrl {
            field,
            found: s.to_owned(),
        };
        let rest = s
            .strip_prefix("mqtt://")
            .or_else(|| s.strip_prefix("tcp://"))
            .ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (rest, 1883),
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// Where the boards connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardBroker {
    /// The embedded broker listening here (port 0: any free port, printed at start).
    Embedded { listen: SocketAddr },
    /// An external local broker (e.g. Mosquitto with its own credentials and ACLs).
    External { url: MqttUrl },
}

/// The upstream (district) broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub url: MqttUrl,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive_s: u64,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub site: SiteId,
    pub gateway: GatewayId,
    /// Spool and quarantine live here.
    pub data_dir: PathBuf,
    pub provisioning: PathBuf,
    pub boards: BoardBroker,
    pub upstream: Upstream,
    pub batching: BatchSettings,
    pub spool_max_bytes: u64,
    pub quarantine_max_bytes: u64,
    pub console_listen: SocketAddr,
    pub status_interval_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    site: String,
    gateway: String,
    data_dir: PathBuf,
    provisioning: PathBuf,
    #[serde(default)]
    boards: BoardsFile,
    upstream: UpstreamFile,
    #[serde(default)]
    batching: BatchingFile,
    #[serde(default)]
    spool: SpoolFile,
    #[serde(default)]
    console: ConsoleFile,
    #[serde(default)]
    status: StatusFile,
    #[serde(default)]
    quarantine: QuarantineFile,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BoardsFile {
    listen: Option<SocketAddr>,
    external: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamFile {
    url: String,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default = "d_keep_alive")]
    keep_alive_s: u64,
    #[serde(default = "d_reconnect_min")]
    reconnect_min_ms: u64,
    #[serde(default = "d_reconnect_max")]
    reconnect_max_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BatchingFile {
    max_frames: usize,
    max_age_ms: u64,
    max_inflight: usize,
    drain_rate_fps: u32,
}

impl Default for BatchingFile {
    fn default() -> Self {
        let d = BatchSettings::default();
        Self {
            max_frames: d.max_frames,
            max_age_ms: d.max_age_ms,
            max_inflight: d.max_inflight,
            drain_rate_fps: d.drain_rate_fps,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SpoolFile {
    max_bytes: u64,
}

impl Default for SpoolFile {
    fn default() -> Self {
        Self { max_bytes: 1 << 30 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ConsoleFile {
    listen: SocketAddr,
}

impl Default for ConsoleFile {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8088)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StatusFile {
    interval_s: f64,
}

impl Default for StatusFile {
    fn default() -> Self {
        Self { interval_s: 30.0 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct QuarantineFile {
    max_bytes: u64,
}

impl Default for QuarantineFile {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
        }
    }
}

fn d_keep_alive() -> u64 {
    15
}
fn d_reconnect_min() -> u64 {
    200
}
fn d_reconnect_max() -> u64 {
    30_000
}

impl GatewayConfig {
    /// Reads and checks a configuration file; relative paths are taken from its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses configuration TOML; relative paths are joined to `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let f: File = toml::from_str(text)?;
        let site = SiteId::new(&f.site).map_err(|_| ConfigError::InvalidId {
            field: "site",
            found: f.site.clone(),
        })?;
        let gateway = GatewayId::new(&f.gateway).map_err(|_| ConfigError::InvalidId {
            field: "gateway",
            found: f.gateway.clone(),
        })?;
        let boards = match (f.boards.listen, f.boards.external) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: "boards",
                    reason: "give either `listen` (embedded broker) or `external`, not both".into(),
                })
            }
            (_, Some(url)) => BoardBroker::External {
                url: MqttUrl::parse("boards.external", &url)?,
            },
            (listen, None) => BoardBroker::Embedded {
                listen: listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1884))),
            },
        };
        let u = f.upstream;
        if u.reconnect_min_ms == 0 || u.reconnect_max_ms < u.reconnect_min_ms {
            return Err(ConfigError::Invalid {
                field: "upstream.reconnect_min_ms",
                reason: "must be > 0 and at most reconnect_max_ms".into(),
            });
        }
        let b = f.batching;
        if b.max_frames == 0 || b.max_inflight == 0 {
            return Err(ConfigError::Invalid {
                field: "batching",
                reason: "max_frames and max_inflight must be at least 1".into(),
            });
        }
        if !f.status.interval_s.is_finite() || f.status.interval_s <= 0.0 {
            return Err(ConfigError::Invalid {
                field: "status.interval_s",
                reason: "must be positive".into(),
            });
        }
        let join = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Self {
            upstream: Upstream {
                url: MqttUrl::parse("upstream.url", &u.url)?,
                client_id: u
                    .client_id
                    .unwrap_or_else(|| format!("vigil-gw-{}-{}", site, gateway)),
                username: u.username,
                password: u.password,
                keep_alive_s: u.keep_alive_s.max(5),
                reconnect_min_ms: u.reconnect_min_ms,
                reconnect_max_ms: u.reconnect_max_ms,
            },
            site,
            gateway,
            data_dir: join(f.data_dir),
            provisioning: join(f.provisioning),
            boards,
            batching: BatchSettings {
                max_frames: b.max_frames.min(vigil_protocol::limits::MAX_BATCH_ENTRIES),
                max_age_ms: b.max_age_ms,
                max_inflight: b.max_inflight,
                drain_rate_fps: b.drain_rate_fps,
            },
            spool_max_bytes: f.spool.max_bytes,
            quarantine_max_bytes: f.quarantine.max_bytes,
            console_listen: f.console.listen,
            status_interval_ms: (f.status.interval_s * 1000.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
site = "home-12"
gateway = "gw-1"
data_dir = "data"
provisioning = "boards.toml"
[upstream]
url = "mqtt://127.0.0.1:1883"
"#;

    #[test]
    fn a_minimal_file_gets_safe_defaults() {
        let c = GatewayConfig::from_toml(MINIMAL, Path::new("/etc/vigil")).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/vigil/data"));
        assert_eq!(
            c.boards,
            BoardBroker::Embedded {
                listen: "0.0.0.0:1884".parse().unwrap()
            }
        );
        assert_eq!(c.upstream.client_id, "vigil-gw-home-12-gw-1");
        assert_eq!(c.batching, BatchSettings::default());
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let bad_site = MINIMAL.replace("home-12", "home/12");
        assert!(matches!(
            GatewayConfig::from_toml(&bad_site, Path::new(".")),
            Err(ConfigError::InvalidId { field: "site", .. })
        ));
        let bad_url = MINIMAL.replace("mqtt://127.0.0.1:1883", "http://x");
        assert!(matches!(
            GatewayConfig::from_toml(&bad_url, Path::new(".")),
            Err(ConfigError::InvalidUrl {
                field: "upstream.url",
                ..
            })
        ));
        let typo = format!("{MINIMAL}\n[spool]\nmax_byte = 3\n");
        assert!(GatewayConfig::from_toml(&typo, Path::new(".")).is_err());
    }

    #[test]
    fn mqtt_urls_default_to_port_1883() {
        assert_eq!(
            MqttUrl::parse("x", "mqtt://broker.local").unwrap(),
            MqttUrl {
                host: "broker.local".into(),
                port: 1883
            }
        );
    }
}
