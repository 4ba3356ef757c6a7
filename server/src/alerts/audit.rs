//! The append-only audit trail: every change to an alert, who made it, when, from which state.

use crate::alerts::lifecycle::{AlertId, AlertState, Disposition};
use crate::alerts::{AlertKind, Severity, Timestamp};
use crate::detection::action::ClearReason;
use crate::ids::{ResponderId, SiteId};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A logged-in user of the console (operator, manager, …), by login name.
    User(String),
    /// A responder acting from their own device (e.g. acknowledging a notification).
    Responder(ResponderId),
    /// A detector rule.
    Rule,
    /// The escalation engine or a notification channel.
    System,
}

/// How a notification attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum NotifyOutcome {
    /// Handed to the channel; the outcome is not known yet.
    Sent,
    /// The channel confirmed delivery.
    Delivered,
    /// The channel failed; the text says how.
    Failed(String),
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum AuditChange {
    /// A rule raised the alert.
    Raised { severity: Severity },
    /// The rule saw its condition again: one more repeat on the open alert.
    Repeated { count: u32, severity: Severity },
    /// The rule no longer sees its condition; the alert stays open unless it may auto-close.
    ConditionCleared { reason: ClearReason },
    /// A lifecycle transition made by an operator, a responder or the auto-close policy.
    Transition { disposition: Option<Disposition> },
    /// Escalation moved the alert to a tier (0 is the first).
    Escalated { tier: usize },
    /// A tier had nobody to notify (empty roster or unknown role).
    TierEmpty { tier: usize },
    /// A notification to a responder was attempted, with its outcome.
    Notified {
        tier: usize,
        responder: ResponderId,
        channel: String,
        outcome: NotifyOutcome,
    },
    /// A free-text note added by a user.
    Note,
}

/// One entry of the audit trail. Never changed once written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub alert: AlertId,
    pub site: SiteId,
    pub kind: AlertKind,
    pub at: Timestamp,
    pub actor: Actor,
    /// The state before the change; `None` when the alert was raised.
    pub from: Option<AlertState>,
    pub to: AlertState,
    pub change: AuditChange,
    pub note: Option<String>,
}

/// An in-memory append-only trail (the store keeps the durable one; tests and KPIs use this).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditLog {
    records: Vec<AuditRecord>,
}

impl AuditLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn append(&mut self, record: AuditRecord) {
        self.records.push(record);
    }

    pub fn extend(&mut self, records: impl IntoIterator<Item = AuditRecord>) {
        self.records.extend(records);
    }

    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// The trail of one alert, oldest first.
    pub fn for_alert(&self, alert: AlertId) -> impl Iterator<Item = &AuditRecord> {
        self.records.iter().filter(move |r| r.alert == alert)
    }
}
