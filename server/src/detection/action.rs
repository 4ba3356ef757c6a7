//! What every detector emits, and the context a board's frame arrives with.

use std::collections::BTreeMap;

use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
use crate::ids::{DeviceId, ResidentId, SiteId};

/// Identifies the one open alert per (subject, kind).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct AlertKey {
    pub subject: Subject,
    pub kind: AlertKind,
}

impl AlertKey {
    pub fn new(subject: Subject, kind: AlertKind) -> Self {
        Self { subject, kind }
    }
}

/// The frame an alert came from: the "help is coming" downlink names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameRef {
    pub device: DeviceId,
    pub boot_id: u32,
    pub seq: u32,
}

/// Where a board's frame comes from, as the registry and ingest know it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameContext {
    pub site: SiteId,
    /// The resident wearing or living with the board, when there is one.
    pub resident: Option<ResidentId>,
    pub frame: FrameRef,
    /// When the event happened: the board's wall time, else the gateway's receive time.
    /// May be well before `now` when a frame was spooled during an outage.
    pub occurred_at: Timestamp,
}

/// Facts a detector attaches to an alert for the operator (shown as a key/value list).
pub type Details = BTreeMap<String, String>;

/// Why a rule stopped seeing its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearReason {
    /// The resident cancelled the call or fall on the pendant.
    ResidentCancelled,
    /// The sensor reports normal again.
    ReturnedToNormal,
    /// The board or gateway reports again.
    BackOnline,
    /// The battery was replaced or recharged.
    BatteryRestored,
    /// Someone recorded that the hazard was rectified.
    Rectified,
}

impl ClearReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentCancelled => "resident_cancelled",
            Self::ReturnedToNormal => "returned_to_normal",
            Self::BackOnline => "back_online",
            Self::BatteryRestored => "battery_restored",
            Self::Rectified => "rectified",
        }
    }
}

/// One output of a detector. The alert book turns these into alerts and audit records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DetectorAction {
    /// The condition holds: open the alert, or count a repeat on the open one.
    Raise {
        site: SiteId,
        key: AlertKey,
        severity: Severity,
        at: Timestamp,
        /// The frame that raised it, for "help is coming" (calls and falls).
        origin: Option<FrameRef>,
        details: Details,
    },
    /// The condition stopped holding. Recorded on the open alert; the operator closes it
    /// unless the kind may auto-close.
    Clear {
        site: SiteId,
        key: AlertKey,
        at: Timestamp,
        reason: ClearReason,
        details: Details,
    },
}

impl DetectorAction {
    pub fn key(&self) -> &AlertKey {
        match self {
            Self::Raise { key, .. } | Self::Clear { key, .. } => key,
        }
    }
}

/// Builds a [`Details`] map from pairs.
pub fn details<const N: usize>(pairs: [(&str, String); N]) -> Details {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A detector configuration value outside what a real site can mean.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be between {min} and {max} {unit}, found {found}")]
pub struct ConfigError {
    pub field: &'static str,
    pub unit: &'static str,
    pub min: i64,
    pub max: i64,
    pub found: i64,
}

/// Checks `found` against `min..=max`.
pub fn check_range(
    field: &'static str,
    unit: &'static str,
    found: i64,
    (min, max): (i64, i64),
) -> Result<(), ConfigError> {
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            unit,
            min,
            max,
            found,
        })
    }
}

/// A duration in whole seconds, for [`check_range`].
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
