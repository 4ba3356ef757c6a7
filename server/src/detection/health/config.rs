//! A site's device-health settings: per board kind, and for its gateways.

use std::time::Duration;

use crate::alerts::duration_secs;
use crate::detection::action::{check_range, secs, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    Meter,
    Pendant,
    FireNode,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoardProfile {
    #[serde(with = "duration_secs")]
    pub heartbeat_interval: Duration,
    pub low_battery_mv: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "HealthConfigFields", into = "HealthConfigFields")]
pub struct HealthConfig {
    pub meter: BoardProfile,
    pub pendant: BoardProfile,
    pub fire_node: BoardProfile,
    /// Added to two missed heartbeats before a board is offline.
    #[serde(with = "duration_secs")]
    pub grace: Duration,
    /// How often a gateway reports its status.
    #[serde(with = "duration_secs")]
    pub gateway_interval: Duration,
    #[serde(with = "duration_secs")]
    pub gateway_grace: Duration,
    /// A low battery clears only this far above its threshold.
    pub battery_hysteresis_mv: u16,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HealthConfigFields {
    meter: BoardProfile,
    pendant: BoardProfile,
    fire_node: BoardProfile,
    #[serde(with = "duration_secs")]
    grace: Duration,
    #[serde(with = "duration_secs")]
    gateway_interval: Duration,
    #[serde(with = "duration_secs")]
    gateway_grace: Duration,
    battery_hysteresis_mv: u16,
}

impl TryFrom<HealthConfigFields> for HealthConfig {
    type Error = ConfigError;
    fn try_from(f: HealthConfigFields) -> Result<Self, ConfigError> {
        let c = Self {
            meter: f.meter,
            pendant: f.pendant,
            fire_node: f.fire_node,
            grace: f.grace,
            gateway_interval: f.gateway_interval,
            gateway_grace: f.gateway_grace,
            battery_hysteresis_mv: f.battery_hysteresis_mv,
        };
        c.validate()?;
        Ok(c)
    }
}

impl From<HealthConfig> for HealthConfigFields {
    fn from(c: HealthConfig) -> Self {
        Self {
            meter: c.meter,
            pendant: c.pendant,
            fire_node: c.fire_node,
            grace: c.grace,
            gateway_interval: c.gateway_interval,
            gateway_grace: c.gateway_grace,
            battery_hysteresis_mv: c.battery_hysteresis_mv,
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, p) in [
            ("meter", &self.meter),
            ("pendant", &self.pendant),
            ("fire_node", &self.fire_node),
        ] {
            // The bounds a board accepts for its heartbeat interval (protocol ConfigUpdate).
            let interval = secs(p.heartbeat_interval);
            check_range(name, "s heartbeat interval", interval, (60, 86_400))?;
            let mv = i64::from(p.low_battery_mv);
            check_range(name, "mV low-battery threshold", mv, (1000, 5000))?;
        }
        check_range("grace", "s", secs(self.grace), (0, 86_400))?;
        check_range(
            "gateway_interval",
            "s",
            secs(self.gateway_interval),
            (10, 3600),
        )?;
        check_range("gateway_grace", "s", secs(self.gateway_grace), (0, 3600))?;
        let hysteresis = i64::from(self.battery_hysteresis_mv);
        check_range("battery_hysteresis_mv", "mV", hysteresis, (0, 1000))
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            meter: BoardProfile {
                heartbeat_interval: Duration::from_secs(3600),
                low_battery_mv: 3300,
            },
            // The pendant firmware's default heartbeat (`PendantConfig::heartbeat_interval_ms`).
            pendant: BoardProfile {
                heartbeat_interval: Duration::from_secs(3600),
                low_battery_mv: 3500,
            },
            fire_node: BoardProfile {
                heartbeat_interval: Duration::from_secs(300),
                low_battery_mv: 2700,
            },
            grace: Duration::from_secs(300),
            gateway_interval: Duration::from_secs(60),
            gateway_grace: Duration::from_secs(60),
            battery_hysteresis_mv: 100,
        }
    }
}

impl HealthConfig {
    pub fn profile(&self, kind: BoardKind) -> &BoardProfile {
        match kind {
            BoardKind::Meter => &self.meter,
            BoardKind::Pendant => &self.pendant,
            BoardKind::FireNode => &self.fire_node,
        }
    }
}
