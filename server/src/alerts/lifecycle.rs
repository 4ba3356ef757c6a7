//! One alert's lifecycle: `open → acknowledged → dispatched → on_scene → resolved`, plus
//! `cancelled` and `false_alarm`, every change an audit record.
//!
//! Design: the transition rules live on [`Alert`] itself ([`Alert::apply`]) so that the alert
//! book (detector-driven, in memory) and the HTTP API (an alert loaded from the store) share
//! exactly one state machine.

use std::collections::BTreeSet;
use std::fmt;

use crate::alerts::audit::{Actor, AuditChange, AuditRecord};
use crate::alerts::{AlertKind, Severity, Timestamp};
use crate::detection::action::{AlertKey, ClearReason, Details, FrameRef};
use crate::ids::{ResponderId, SiteId};

/// The server's identifier of one alert.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Dispatched,
    OnScene,
    Resolved,
    Cancelled,
    FalseAlarm,
}

impl AlertState {
    pub const ALL: [AlertState; 7] = [
        Self::Open,
        Self::Acknowledged,
        Self::Dispatched,
        Self::OnScene,
        Self::Resolved,
        Self::Cancelled,
        Self::FalseAlarm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Dispatched => "dispatched",
            Self::OnScene => "on_scene",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
            Self::FalseAlarm => "false_alarm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the alert is finished (no further transitions).
    pub fn is_closed(self) -> bool {
        match self {
            Self::Open | Self::Acknowledged | Self::Dispatched | Self::OnScene => false,
            Self::Resolved | Self::Cancelled | Self::FalseAlarm => true,
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an alert ended. Resolving always needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    RealEmergency,
    FalseAlarm,
    ResidentCancelled,
    Test,
    /// The condition ended by itself and no action was needed (the auto-close policy uses it).
    ConditionCleared,
}

impl Disposition {
    pub const ALL: [Disposition; 5] = [
        Self::RealEmergency,
        Self::FalseAlarm,
        Self::ResidentCancelled,
        Self::Test,
        Self::ConditionCleared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RealEmergency => "real_emergency",
            Self::FalseAlarm => "false_alarm",
            Self::ResidentCancelled => "resident_cancelled",
            Self::Test => "test",
            Self::ConditionCleared => "condition_cleared",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The closed state an alert ends in with this disposition.
    pub fn closed_state(self) -> AlertState {
        match self {
            Self::RealEmergency | Self::Test | Self::ConditionCleared => AlertState::Resolved,
            Self::FalseAlarm => AlertState::FalseAlarm,
            Self::ResidentCancelled => AlertState::Cancelled,
        }
    }
}

/// What a person does to an alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperatorAction {
    Acknowledge,
    Dispatch {
        responder: ResponderId,
    },
    OnScene,
    Resolve {
        disposition: Disposition,
    },
    /// Adds a note without changing the state.
    Note,
}

impl OperatorAction {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Dispatch { .. } => "dispatch",
            Self::OnScene => "on_scene",
            Self::Resolve { .. } => "resolve",
            Self::Note => "note",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("alert {alert} is {from}: cannot {action} it (allowed from: {allowed})")]
    InvalidTransition {
        alert: AlertId,
        from: AlertState,
        action: &'static str,
        allowed: &'static str,
    },
    #[error("alert {0} is not open")]
    UnknownAlert(AlertId),
    #[error("a note action needs a non-empty note")]
    EmptyNote,
}

/// The rule's condition stopped holding at `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clearing {
    pub at: Timestamp,
    pub reason: ClearReason,
}

/// Who acknowledged first, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Acknowledgement {
    pub by: Actor,
    pub at: Timestamp,
}

/// One alert, open or closed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub site: SiteId,
    pub key: AlertKey,
    pub severity: Severity,
    pub state: AlertState,
    pub opened_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// How many times the rule saw the condition again while the alert was open.
    pub repeat_count: u32,
    pub origin: Option<FrameRef>,
    pub details: Details,
    /// Set while the rule no longer sees the condition; reset when it sees it again.
    pub cleared: Option<Clearing>,
    /// The first person who answered it: acknowledged it, or resolved it straight from open.
    pub acknowledged: Option<Acknowledgement>,
    pub dispatched_to: Vec<ResponderId>,
    pub disposition: Option<Disposition>,
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<Actor>,
}

impl Alert {
    /// Closed without anybody ever acknowledging it (the console shows this explicitly).
    pub fn closed_unacknowledged(&self) -> bool {
        self.state.is_closed() && self.acknowledged.is_none()
    }

    fn record(
        &self,
        at: Timestamp,
        actor: Actor,
        from: Option<AlertState>,
        change: AuditChange,
        note: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            alert: self.id,
            site: self.site.clone(),
            kind: self.key.kind,
            at,
            actor,
            from,
            to: self.state,
            change,
            note,
        }
    }

    /// Applies a person's action; returns the audit record, or why the action is refused.
    pub fn apply(
        &mut self,
        action: &OperatorAction,
        actor: Actor,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<AuditRecord, LifecycleError> {
        let from = self.state;
        let to = self.next_state(action)?;
        if matches!(action, OperatorAction::Note) && note.as_deref().is_none_or(str::is_empty) {
            return Err(LifecycleError::EmptyNote);
        }
        self.state = to;
        let mut disposition = None;
        match action {
            OperatorAction::Acknowledge => {}
            OperatorAction::Dispatch { responder } => self.dispatched_to.push(responder.clone()),
            OperatorAction::OnScene | OperatorAction::Note => {}
            OperatorAction::Resolve { disposition: d } => {
                disposition = Some(*d);
                self.disposition = Some(*d);
                self.closed_at = Some(now);
                self.closed_by = Some(actor.clone());
            }
        }
        // A person taking the alert out of `open` (acknowledging, or resolving it at once)
        // answered it; the auto-close policy (actor `rule`) never does.
        let by_person = match actor {
            Actor::User(_) | Actor::Responder(_) => true,
            Actor::Rule | Actor::System => false,
        };
        if from == AlertState::Open && to != AlertState::Open && by_person {
            self.acknowledged.get_or_insert(Acknowledgement {
                by: actor.clone(),
                at: now,
            });
        }
        let change = match action {
            OperatorAction::Note => AuditChange::Note,
            OperatorAction::Acknowledge
            | OperatorAction::Dispatch { .. }
            | OperatorAction::OnScene
            | OperatorAction::Resolve { .. } => AuditChange::Transition { disposition },
        };
        Ok(self.record(now, actor, Some(from), change, note))
    }

    fn next_state(&self, action: &OperatorAction) -> Result<AlertState, LifecycleError> {
        use AlertState as S;
        let refuse = |allowed: &'static str| LifecycleError::InvalidTransition {
            alert: self.id,
            from: self.state,
            action: action.name(),
            allowed,
        };
        match action {
            OperatorAction::Acknowledge => match self.state {
                S::Open => Ok(S::Acknowledged),
                S::Acknowledged
                | S::Dispatched
                | S::OnScene
                | S::Resolved
                | S::Cancelled
                | S::FalseAlarm => Err(refuse("open")),
            },
            OperatorAction::Dispatch { .. } => match self.state {
                S::Acknowledged => Ok(S::Dispatched),
                S::Open
                | S::Dispatched
                | S::OnScene
                | S::Resolved
                | S::Cancelled
                | S::FalseAlarm => Err(refuse("acknowledged")),
            },
            OperatorAction::OnScene => match self.state {
                S::Dispatched => Ok(S::OnScene),
                S::Open
                | S::Acknowledged
                | S::OnScene
                | S::Resolved
                | S::Cancelled
                | S::FalseAlarm => Err(refuse("dispatched")),
            },
            OperatorAction::Resolve { disposition } => match self.state {
                S::Open | S::Acknowledged | S::Dispatched | S::OnScene => {
                    Ok(disposition.closed_state())
                }
                S::Resolved | S::Cancelled | S::FalseAlarm => {
                    Err(refuse("open, acknowledged, dispatched, on_scene"))
                }
            },
            OperatorAction::Note => match self.state {
                S::Open
                | S::Acknowledged
                | S::Dispatched
                | S::OnScene
                | S::Resolved
                | S::Cancelled
                | S::FalseAlarm => Ok(self.state),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must never auto-close: a person has to see it through")]
pub struct AutoCloseRefused(pub AlertKind);

/// Which kinds close by themselves when their rule clears. Life-safety kinds never do,
/// also when the policy is read from a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "AlertPolicyFields", into = "AlertPolicyFields")]
pub struct AlertPolicy {
    auto_close: BTreeSet<AlertKind>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AlertPolicyFields {
    auto_close: BTreeSet<AlertKind>,
}

impl TryFrom<AlertPolicyFields> for AlertPolicy {
    type Error = AutoCloseRefused;
    fn try_from(f: AlertPolicyFields) -> Result<Self, AutoCloseRefused> {
        Self::with_auto_close(f.auto_close)
    }
}

impl From<AlertPolicy> for AlertPolicyFields {
    fn from(p: AlertPolicy) -> Self {
        Self {
            auto_close: p.auto_close,
        }
    }
}

impl AlertPolicy {
    /// The kinds that may never auto-close, whatever a site configures.
    pub fn must_be_closed_by_a_person(kind: AlertKind) -> bool {
        match kind {
            AlertKind::Call
            | AlertKind::Fall
            | AlertKind::FireAlarm
            | AlertKind::FireConfirmed
            | AlertKind::WaterNoUse
            | AlertKind::WaterNoUseSevere
            | AlertKind::WaterUnusualSilence
            | AlertKind::WaterMorningCheck
            | AlertKind::HazardOverdue => true,
            AlertKind::WaterContinuousFlow
            | AlertKind::WaterExcessiveUse
            | AlertKind::WaterLeak
            | AlertKind::FireSupervisory
            | AlertKind::FireTrouble
            | AlertKind::ElectricalHazard
            | AlertKind::DeviceOffline
            | AlertKind::LowBattery
            | AlertKind::Tamper
            | AlertKind::GatewayOffline => false,
        }
    }

    pub fn with_auto_close(
        kinds: impl IntoIterator<Item = AlertKind>,
    ) -> Result<Self, AutoCloseRefused> {
        let auto_close: BTreeSet<AlertKind> = kinds.into_iter().collect();
        if let Some(k) = auto_close
            .iter()
            .find(|k| Self::must_be_closed_by_a_person(**k))
        {
            return Err(AutoCloseRefused(*k));
        }
        Ok(Self { auto_close })
    }

    pub fn auto_closes(&self, kind: AlertKind) -> bool {
        self.auto_close.contains(&kind)
    }
}

impl Default for AlertPolicy {
    /// Device-health conditions that fix themselves need no operator to close them.
    fn default() -> Self {
        Self {
            auto_close: [
                AlertKind::DeviceOffline,
                AlertKind::LowBattery,
                AlertKind::GatewayOffline,
            ]
            .into_iter()
            .collect(),
        }
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
