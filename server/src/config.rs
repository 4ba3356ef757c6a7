//! The server's configuration: one TOML file, then `VIGIL_…` environment variables, then
//! command-line flags, each overriding the one before. `docs/configuration.md` lists every
//! setting; [`ServerConfig::default`] holds the defaults it documents.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Everything `vigil server` needs to start.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub broker: BrokerConfig,
    pub database: DatabaseConfig,
    pub ingest: IngestConfig,
    pub retention: RetentionConfig,
    /// The registry cache (`[registry]`).
    pub registry: RegistryConfig,
    /// The HTTP API (`[api]`). Absent: the library serves no HTTP; `vigil server` always
    /// serves it, with [`ApiConfig::default`] when the file has no `[api]` table.
    pub api: Option<crate::http::ApiConfig>,
    /// Notification channels: webhooks and live events (`[notify]`).
    pub notify: crate::notify::NotifyConfig,
}

/// Which MQTT broker to read from, and how.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host:port` of an external broker; absent: start the embedded broker.
    pub url: Option<String>,
    /// MQTT client id of this server instance. It must be stable across restarts so the
    /// broker redelivers what was not acknowledged before a crash, and unique per instance.
    pub client_id: String,
    /// Shared-subscription group (`$share/{group}/…`): instances with the same group share
    /// the load. Empty: plain subscriptions (every instance gets every message).
    pub shared_group: String,
    /// Most unacknowledged messages the broker may send at once (MQTT 5 receive maximum).
    /// Bounds the memory ingest can hold: this many messages of at most 128 KiB.
    pub receive_maximum: u16,
    /// How long the broker keeps this instance's session (and its unacknowledged messages)
    /// after a disconnect, in seconds.
    pub session_expiry_s: u32,
    pub keep_alive_s: u16,
    /// Settings of the embedded broker, used when `url` is absent.
    pub embedded: EmbeddedBrokerConfig,
}

/// The in-process broker started when no broker URL is given.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedBrokerConfig {
    /// Address the MQTT 3.1.1 listener for gateways and boards binds.
    pub bind: String,
    /// Port of that listener; 0 picks a free port and prints it.
    pub port: u16,
}

/// Where readings are stored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` URL; absent: an SQLite file under `data_dir`.
    pub url: Option<String>,
    /// Directory of the SQLite database (`vigil.sqlite3`).
    pub data_dir: PathBuf,
    /// PostgreSQL connections in the pool.
    pub pool_size: usize,
}

/// How ingest groups messages into store transactions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// A transaction is committed once it holds this many readings…
    pub max_batch_readings: usize,
    /// …or once its first message has waited this long, in milliseconds.
    pub max_batch_delay_ms: u64,
    /// Quarantined messages kept; the oldest are deleted beyond this.
    pub quarantine_rows: u64,
    /// Bytes of a quarantined payload kept (the rest is cut; its full length is recorded).
    pub quarantine_payload_bytes: usize,
}

/// How long raw readings are kept.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Raw readings older than this many days are deleted (whole days on PostgreSQL, where
    /// a day is a partition). 0 keeps everything.
    pub raw_readings_days: u32,
    /// How often the retention job runs, in seconds.
    pub check_interval_s: u64,
}

/// How the server's in-memory copy of the registry follows the database.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Seconds between re-reads of the registry, so writes by another server instance show
    /// up (writes through this server's API show up at once).
    pub refresh_s: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { refresh_s: 5 }
    }
}

impl RegistryConfig {
    pub fn refresh_every(&self) -> Duration {
        Duration::from_secs(self.refresh_s)
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: None,
            client_id: "vigil-server".into(),
            shared_group: "vigil-server".into(),
            receive_maximum: 512,
            session_expiry_s: 3600,
            keep_alive_s: 30,
            embedded: EmbeddedBrokerConfig::default(),
        }
    }
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 1883,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("vigil-data"),
            pool_size: 8,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_readings: 40_000,
            max_batch_delay_ms: 50,
            quarantine_rows: 10_000,
            quarantine_payload_bytes: 4096,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            raw_readings_days: 400,
            check_interval_s: 3600,
        }
    }
}

impl IngestConfig {
    pub fn max_batch_delay(&self) -> Duration {
        Duration::from_millis(self.max_batch_delay_ms)
    }
}

/// The configuration could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {var}={value:?}: expected {expected}")]
    Env {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

/// Every environment variable the server reads, with the setting it overrides.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("VIGIL_BROKER_URL", "broker.url"),
    ("VIGIL_BROKER_CLIENT_ID", "broker.client_id"),
    ("VIGIL_BROKER_SHARED_GROUP", "broker.shared_group"),
    ("VIGIL_BROKER_RECEIVE_MAXIMUM", "broker.receive_maximum"),
    ("VIGIL_BROKER_SESSION_EXPIRY_S", "broker.session_expiry_s"),
    ("VIGIL_EMBEDDED_BROKER_BIND", "broker.embedded.bind"),
    ("VIGIL_EMBEDDED_BROKER_PORT", "broker.embedded.port"),
    ("VIGIL_DATABASE_URL", "database.url"),
    ("VIGIL_DATABASE_DIR", "database.data_dir"),
    ("VIGIL_DATABASE_POOL_SIZE", "database.pool_size"),
    (
        "VIGIL_INGEST_MAX_BATCH_READINGS",
        "ingest.max_batch_readings",
    ),
    (
        "VIGIL_INGEST_MAX_BATCH_DELAY_MS",
        "ingest.max_batch_delay_ms",
    ),
    (
        "VIGIL_RETENTION_RAW_READINGS_DAYS",
        "retention.raw_readings_days",
    ),
    ("VIGIL_WEBHOOK_SECRET", "notify.webhook_secret"),
];

impl ServerConfig {
    /// Reads `path` (when given), then applies the environment as `env` returns it.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies every `VIGIL_…` variable of [`ENV_VARS`] that `env` knows.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for &(var, _) in ENV_VARS {
            let Some(value) = env(var) else { continue };
            let bad = |expected| ConfigError::Env {
                var,
                value: value.clone(),
                expected,
            };
            let optional = |v: &str| (!v.is_empty()).then(|| v.to_owned());
            match var {
                "VIGIL_BROKER_URL" => self.broker.url = optional(&value),
                "VIGIL_BROKER_CLIENT_ID" => self.broker.client_id = value.clone(),
                "VIGIL_BROKER_SHARED_GROUP" => self.broker.shared_group = value.clone(),
                "VIGIL_BROKER_RECEIVE_MAXIMUM" => {
                    self.broker.receive_maximum =
                        value.parse().map_err(|_| bad("an integer 1..=65535"))?
                }
                "VIGIL_BROKER_SESSION_EXPIRY_S" => {
                    self.broker.session_expiry_s =
                        value.parse().map_err(|_| bad("a number of seconds"))?
                }
                "VIGIL_EMBEDDED_BROKER_BIND" => self.broker.embedded.bind = value.clone(),
                "VIGIL_EMBEDDED_BROKER_PORT" => {
                    self.broker.embedded.port =
                        value.parse().map_err(|_| bad("a port number 0..=65535"))?
                }
                "VIGIL_DATABASE_URL" => self.database.url = optional(&value),
                "VIGIL_DATABASE_DIR" => self.database.data_dir = PathBuf::from(&value),
                "VIGIL_DATABASE_POOL_SIZE" => {
                    self.database.pool_size =
                        value.parse().map_err(|_| bad("a number of connections"))?
                }
                "VIGIL_INGEST_MAX_BATCH_READINGS" => {
                    self.ingest.max_batch_readings =
                        value.parse().map_err(|_| bad("a number of readings"))?
                }
                "VIGIL_INGEST_MAX_BATCH_DELAY_MS" => {
                    self.ingest.max_batch_delay_ms =
                        value.parse().map_err(|_| bad("a number of milliseconds"))?
                }
                "VIGIL_RETENTION_RAW_READINGS_DAYS" => {
                    self.retention.raw_readings_days =
                        value.parse().map_err(|_| bad("a number of days"))?
                }
                "VIGIL_WEBHOOK_SECRET" => {
                    self.notify.webhook_secret =
                        optional(&value).map(crate::notify::settings::SecretText)
                }
                other => unreachable!("{other} is listed in ENV_VARS but not handled"),
            }
        }
        Ok(())
    }

    /// Checks values no type can express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, problem: &str| {
            Err(ConfigError::Invalid {
                field,
                problem: problem.to_owned(),
            })
        };
        if let Some(url) = &self.broker.url {
            if let Err(e) = crate::ingest::BrokerAddress::parse(url) {
                return invalid("broker.url", &e.to_string());
            }
        }
        if self.broker.client_id.is_empty() || self.broker.client_id.len() > 64 {
            return invalid("broker.client_id", "must be 1 to 64 characters");
        }
        if self.broker.shared_group.contains(['/', '+', '#']) {
            return invalid("broker.shared_group", "must not contain `/`, `+` or `#`");
        }
        if self.broker.receive_maximum == 0 {
            return invalid("broker.receive_maximum", "must be at least 1");
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return invalid(
                    "database.url",
                    "must start with postgres:// (leave it out for SQLite)",
                );
            }
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.ingest.max_batch_readings == 0 {
            return invalid("ingest.max_batch_readings", "must be at least 1");
        }
        if self.registry.refresh_s == 0 {
            return invalid("registry.refresh_s", "must be at least 1");
        }
        if self.retention.check_interval_s == 0 {
            return invalid("retention.check_interval_s", "must be at least 1");
        }
        if let Err(e) = self.notify.validate() {
            return Err(ConfigError::Invalid {
                field: "notify",
                problem: e.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.broker.url, None);
        assert_eq!(c.database.url, None);
        assert_eq!(c.broker.embedded.port, 1883);
        assert_eq!(c.registry.refresh_s, 5);
    }

    #[test]
    fn registry_refresh_is_read_from_the_file_and_must_be_positive() {
        let c = ServerConfig::from_toml("[registry]\nrefresh_s = 30\n").unwrap();
        assert_eq!(c.registry.refresh_every(), Duration::from_secs(30));
        let c = ServerConfig::from_toml("[registry]\nrefresh_s = 0\n").unwrap();
        let err = c.validate().unwrap_err();
        assert!(err.to_string().starts_with("registry.refresh_s"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = ServerConfig::from_toml(
            "[broker]\nurl = \"mqtt://a:1\"\n[ingest]\nmax_batch_readings = 7\n",
        )
        .unwrap();
        assert_eq!(c.broker.url.as_deref(), Some("mqtt://a:1"));
        let mut c2 = c.clone();
        c2.apply_env(|k| match k {
            "VIGIL_BROKER_URL" => Some("mqtt://b:2".into()),
            "VIGIL_INGEST_MAX_BATCH_READINGS" => Some("9".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c2.broker.url.as_deref(), Some("mqtt://b:2"));
        assert_eq!(c2.ingest.max_batch_readings, 9);
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let err = ServerConfig::load(None, |k| {
            (k == "VIGIL_EMBEDDED_BROKER_PORT").then(|| "eighty".into())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("VIGIL_EMBEDDED_BROKER_PORT"),
            "{err}"
        );
    }

    #[test]
    fn the_webhook_secret_comes_from_the_environment_and_files_default_to_the_data_dir() {
        let mut c = ServerConfig::load(None, |k| match k {
            "VIGIL_WEBHOOK_SECRET" => Some("a-secret-of-enough-length".into()),
            "VIGIL_DATABASE_DIR" => Some("/srv/vigil".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.notify.webhook_secret.as_ref().map(|s| s.0.as_str()),
            Some("a-secret-of-enough-length")
        );
        // `run_with` places the files once flags have had their say on the data directory.
        assert_eq!(c.notify.webhook_secret_file, None);
        let dir = c.database.data_dir.clone();
        c.notify.resolve_paths(&dir);
        assert_eq!(
            c.notify.webhook_secret_file.as_deref(),
            Some(Path::new("/srv/vigil/webhook-secret"))
        );
        assert!(!format!("{c:?}").contains("a-secret"), "never printed");
        let err = ServerConfig::load(None, |k| {
            (k == "VIGIL_WEBHOOK_SECRET").then(|| "short".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{err}");
        let c = ServerConfig::from_toml("[notify]\nsse_buffer = 64\nwebhook_timeout_ms = 500\n")
            .unwrap();
        assert_eq!(c.notify.sse_buffer, 64);
        assert_eq!(c.notify.webhook_timeout_ms, 500);
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected_with_their_name() {
        let err = ServerConfig::from_toml("[broker]\nurll = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("urll"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let mut c = ServerConfig::default();
        c.database.url = Some("mysql://x".into());
        let err = c.validate().unwrap_err();
        assert!(err.to_string().starts_with("database.url"), "{err}");
        let mut c = ServerConfig::default();
        c.broker.url = Some("http://x".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("broker.url"));
    }
}
