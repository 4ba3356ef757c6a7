//! Escalation: who is told about an unacknowledged alert, and when the next tier is.
//!
//! # Layout
//!
//! - [`policy`]: a site's [`EscalationPolicy`] (ordered tiers with acknowledgement deadlines)
//!   and the [`RosterLookup`] that says who holds a role at a given moment.
//! - [`task`]: one alert's escalation as a serialisable [`EscalationTask`] with an idempotent
//!   [`EscalationTask::handle_due`], the unit a database work queue claims.
//! - [`Escalator`]: the in-memory sans-IO driver over many tasks (`handle_timeout(now)`,
//!   `next_deadline()`, `poll_action()`).

pub mod policy;
pub mod task;

use std::collections::{BTreeMap, VecDeque};

pub use policy::{
    EscalationPolicy, PolicyError, RoleName, Roster, RosterLookup, Shift, SiteEscalation, Target,
    Tier,
};
pub use task::{EscalationAction, EscalationTask, Notification, StopReason};

use crate::alerts::lifecycle::{Alert, AlertId, AlertState};
use crate::alerts::Timestamp;
use crate::ids::SiteId;

/// Counters of inputs that changed nothing, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalatorCounters {
    pub alerts_without_policy: u64,
    pub below_policy_severity: u64,
}

/// Many alerts' escalations in memory.
#[derive(Debug, Default)]
pub struct Escalator {
    policies: BTreeMap<SiteId, SiteEscalation>,
    tasks: BTreeMap<AlertId, EscalationTask>,
    actions: VecDeque<EscalationAction>,
    counters: EscalatorCounters,
}

impl Escalator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a site's escalation: one policy, or a [`SiteEscalation`] with chains per kind.
    pub fn set_policy(&mut self, site: SiteId, policy: impl Into<SiteEscalation>) {
        self.policies.insert(site, policy.into());
    }

    pub fn counters(&self) -> &EscalatorCounters {
        &self.counters
    }

    pub fn task(&self, alert: AlertId) -> Option<&EscalationTask> {
        self.tasks.get(&alert)
    }

    /// The tasks to store, to resume after a restart.
    pub fn tasks(&self) -> impl Iterator<Item = &EscalationTask> {
        self.tasks.values()
    }

    pub fn restore_task(&mut self, task: EscalationTask) {
        self.tasks.insert(task.alert, task);
    }

    pub fn poll_action(&mut self) -> Option<EscalationAction> {
        self.actions.pop_front()
    }

    /// Starts escalating a newly raised alert, notifying its first tier now.
    pub fn handle_raised(&mut self, alert: &Alert, roster: &dyn RosterLookup, now: Timestamp) {
        // Somebody may have answered it before the driver got here.
        if self.tasks.contains_key(&alert.id) || alert.state != AlertState::Open {
            return;
        }
        let Some(policy) = self
            .policies
            .get(&alert.site)
            .map(|p| p.for_kind(alert.key.kind))
        else {
            self.counters.alerts_without_policy += 1;
            return;
        };
        if !policy.escalates(alert.severity) {
            self.counters.below_policy_severity += 1;
            return;
        }
        let (task, actions) = EscalationTask::start(alert, policy, roster, now);
        self.actions.extend(actions);
        self.tasks.insert(alert.id, task);
    }

    /// Somebody acknowledged (or the alert closed): no further tiers.
    pub fn handle_stopped(&mut self, alert: AlertId, reason: StopReason) {
        if let Some(mut task) = self.tasks.remove(&alert) {
            task.stop(reason);
        }
    }

    /// When `alert`'s current tier is due, and which tier that is.
    pub fn next_due(&self, alert: AlertId) -> Option<(usize, Timestamp)> {
        self.tasks.get(&alert).and_then(EscalationTask::next_due)
    }

    /// Acts on one claimed due item; idempotent (see [`EscalationTask::handle_due`]).
    pub fn handle_due(
        &mut self,
        alert: AlertId,
        tier: usize,
        roster: &dyn RosterLookup,
        now: Timestamp,
    ) {
        let Some(task) = self.tasks.get_mut(&alert) else {
            return;
        };
        let Some(policy) = self.policies.get(&task.site).map(|p| p.for_kind(task.kind)) else {
            self.counters.alerts_without_policy += 1;
            return;
        };
        self.actions
            .extend(task.handle_due(tier, policy, roster, now));
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.tasks
            .values()
            .filter_map(|t| t.next_due())
            .map(|(_, at)| at)
            .min()
    }

    pub fn handle_timeout(&mut self, roster: &dyn RosterLookup, now: Timestamp) {
        for task in self.tasks.values_mut() {
            let Some((tier, at)) = task.next_due() else {
                continue;
            };
            if at > now {
                continue;
            }
            let Some(policy) = self.policies.get(&task.site).map(|p| p.for_kind(task.kind)) else {
                self.counters.alerts_without_policy += 1;
                continue;
            };
            self.actions
                .extend(task.handle_due(tier, policy, roster, now));
        }
    }
}
