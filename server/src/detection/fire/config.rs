//! A facility's fire-safety settings.

use std::time::Duration;

use crate::alerts::duration_secs;
use crate::detection::action::{check_range, secs, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FireConfigFields", into = "FireConfigFields")]
pub struct FireConfig {
    /// Residual current above this is a hazard, in milliamperes.
    pub residual_current_limit_ma: i32,
    /// Cable temperature above this is a hazard, in tenths of a degree Celsius.
    pub cable_temperature_limit_dc: i32,
    /// Time allowed to rectify a hazard.
    #[serde(with = "duration_secs")]
    pub rectification_deadline: Duration,
    /// An operated manual call point confirms a fire on its own.
    pub manual_call_point_confirms: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FireConfigFields {
    residual_current_limit_ma: i32,
    cable_temperature_limit_dc: i32,
    #[serde(with = "duration_secs")]
    rectification_deadline: Duration,
    manual_call_point_confirms: bool,
}

impl TryFrom<FireConfigFields> for FireConfig {
    type Error = ConfigError;
    fn try_from(f: FireConfigFields) -> Result<Self, ConfigError> {
        let c = Self {
            residual_current_limit_ma: f.residual_current_limit_ma,
            cable_temperature_limit_dc: f.cable_temperature_limit_dc,
            rectification_deadline: f.rectification_deadline,
            manual_call_point_confirms: f.manual_call_point_confirms,
        };
        c.validate()?;
        Ok(c)
    }
}

impl From<FireConfig> for FireConfigFields {
    fn from(c: FireConfig) -> Self {
        Self {
            residual_current_limit_ma: c.residual_current_limit_ma,
            cable_temperature_limit_dc: c.cable_temperature_limit_dc,
            rectification_deadline: c.rectification_deadline,
            manual_call_point_confirms: c.manual_call_point_confirms,
        }
    }
}

impl FireConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ma = i64::from(self.residual_current_limit_ma);
        check_range("residual_current_limit_ma", "mA", ma, (10, 1000))?;
        let dc = i64::from(self.cable_temperature_limit_dc);
        check_range("cable_temperature_limit_dc", "0.1 °C", dc, (400, 1500))?;
        let deadline = secs(self.rectification_deadline);
        check_range("rectification_deadline", "s", deadline, (3600, 90 * 86_400))
    }
}

impl Default for FireConfig {
    fn default() -> Self {
        Self {
            residual_current_limit_ma: 300,
            cable_temperature_limit_dc: 700,
            rectification_deadline: Duration::from_secs(72 * 3600),
            manual_call_point_confirms: true,
        }
    }
}
