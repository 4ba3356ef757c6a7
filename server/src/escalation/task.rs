//! One alert's escalation, as a value a store can hold and a work queue can claim.
//!
//! Design: every decision is a method on [`EscalationTask`] taking `now`, and
//! [`EscalationTask::handle_due`] is idempotent: it acts only when the task is still at the
//! expected tier, not stopped, and due. Two server instances that both claim the same due
//! task (or one that retries after a crash) therefore notify a tier once; with the database
//! claiming rows `FOR UPDATE SKIP LOCKED`, the second simply finds it no longer due.

use crate::alerts::audit::{Actor, AuditChange, AuditRecord, NotifyOutcome};
use crate::alerts::lifecycle::{Alert, AlertId, AlertState};
use crate::alerts::{AlertKind, Subject, Timestamp};
use crate::escalation::policy::{EscalationPolicy, RosterLookup, Target};
use crate::ids::{ResponderId, SiteId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Acknowledged,
    Closed,
}

/// One responder to tell about one alert. The driver keeps it with each channel's attempt
/// and turns the attempt's outcome into an audit record with [`Notification::outcome_record`],
/// even when the alert was acknowledged in the meantime.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub alert: AlertId,
    pub site: SiteId,
    pub kind: AlertKind,
    pub tier: usize,
    pub responder: ResponderId,
}

impl Notification {
    /// The audit record of one attempt on `channel` (e.g. `webhook`, `sse`) and its outcome.
    pub fn outcome_record(
        &self,
        channel: &str,
        outcome: NotifyOutcome,
        now: Timestamp,
    ) -> AuditRecord {
        AuditRecord {
            alert: self.alert,
            site: self.site.clone(),
            kind: self.kind,
            at: now,
            actor: Actor::System,
            // The alert was unacknowledged when the notification was decided.
            from: Some(AlertState::Open),
            to: AlertState::Open,
            change: AuditChange::Notified {
                tier: self.tier,
                responder: self.responder.clone(),
                channel: channel.to_owned(),
                outcome,
            },
            note: None,
        }
    }
}

/// What the escalation asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum EscalationAction {
    /// Tell this responder about the alert over their channels.
    Notify(Notification),
    /// Append to the audit trail.
    Audit(AuditRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EscalationTask {
    pub alert: AlertId,
    pub site: SiteId,
    pub subject: Subject,
    pub kind: AlertKind,
    /// The tier told last (0 is the first).
    pub tier: usize,
    /// How many times the last tier has been told again after its deadline.
    pub repeats: u32,
    /// When the current tier's acknowledgement deadline passes; `None` once stopped.
    pub due_at: Option<Timestamp>,
    pub stopped: Option<StopReason>,
}

impl EscalationTask {
    /// Starts escalating `alert`: its first tier is told at once.
    pub fn start(
        alert: &Alert,
        policy: &EscalationPolicy,
        roster: &dyn RosterLookup,
        now: Timestamp,
    ) -> (Self, Vec<EscalationAction>) {
        let mut task = Self {
            alert: alert.id,
            site: alert.site.clone(),
            subject: alert.key.subject.clone(),
            kind: alert.key.kind,
            tier: 0,
            repeats: 0,
            due_at: None,
            stopped: None,
        };
        let actions = task.notify_from(0, policy, roster, now);
        (task, actions)
    }

    /// The tier whose deadline is pending and when it passes, for a work queue's index.
    pub fn next_due(&self) -> Option<(usize, Timestamp)> {
        match self.stopped {
            Some(StopReason::Acknowledged | StopReason::Closed) => None,
            None => self.due_at.map(|at| (self.tier, at)),
        }
    }

    /// The deadline of `tier` passed at `now`: tell the next tier (or the last one again).
    /// Does nothing unless the task is still at `tier`, running, and due.
    pub fn handle_due(
        &mut self,
        tier: usize,
        policy: &EscalationPolicy,
        roster: &dyn RosterLookup,
        now: Timestamp,
    ) -> Vec<EscalationAction> {
        match self.next_due() {
            Some((current, due)) if current == tier && now >= due => {}
            Some(_) | None => return Vec::new(),
        }
        let last = policy.tiers().len() - 1;
        let next = if self.tier < last {
            self.tier + 1
        } else {
            self.repeats += 1;
            last
        };
        self.notify_from(next, policy, roster, now)
    }

    /// Stops escalating: somebody acknowledged, or the alert closed.
    pub fn stop(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.due_at = None;
    }

    fn record(&self, at: Timestamp, change: AuditChange, note: Option<String>) -> AuditRecord {
        AuditRecord {
            alert: self.alert,
            site: self.site.clone(),
            kind: self.kind,
            at,
            actor: Actor::System,
            // Escalation only runs while nobody has acknowledged the alert.
            from: Some(AlertState::Open),
            to: AlertState::Open,
            change,
            note,
        }
    }

    /// Tells tier `first`, or the first tier after it that has anybody to tell.
    fn notify_from(
        &mut self,
        first: usize,
        policy: &EscalationPolicy,
        roster: &dyn RosterLookup,
        now: Timestamp,
    ) -> Vec<EscalationAction> {
        let tiers = policy.tiers();
        let mut actions = Vec::new();
        let mut t = first.min(tiers.len() - 1);
        loop {
            let tier = &tiers[t];
            let responders = self.resolve(&tier.targets, roster, now);
            self.tier = t;
            self.due_at = Some(now + tier.ack_deadline);
            if responders.is_empty() {
                let note = "nobody on duty for this tier".to_owned();
                actions.push(EscalationAction::Audit(self.record(
                    now,
                    AuditChange::TierEmpty { tier: t },
                    Some(note),
                )));
                // Waiting out a deadline for nobody helps no one: go straight on.
                if t + 1 < tiers.len() {
                    t += 1;
                    continue;
                }
                return actions;
            }
            let names: Vec<&str> = responders.iter().map(|r| r.as_str()).collect();
            let note = if self.repeats > 0 {
                format!(
                    "telling {} again (repeat {})",
                    names.join(", "),
                    self.repeats
                )
            } else {
                format!("telling {}", names.join(", "))
            };
            actions.push(EscalationAction::Audit(self.record(
                now,
                AuditChange::Escalated { tier: t },
                Some(note),
            )));
            for responder in responders {
                actions.push(EscalationAction::Notify(Notification {
                    alert: self.alert,
                    site: self.site.clone(),
                    kind: self.kind,
                    tier: t,
                    responder,
                }));
            }
            return actions;
        }
    }

    fn resolve(
        &self,
        targets: &[Target],
        roster: &dyn RosterLookup,
        now: Timestamp,
    ) -> Vec<ResponderId> {
        let mut out: Vec<ResponderId> = Vec::new();
        for target in targets {
            let found = match target {
                Target::Responder(r) => vec![r.clone()],
                Target::Role(role) => roster.on_duty(&self.site, role, now),
                Target::EmergencyContact => roster.emergency_contacts(&self.subject),
            };
            for r in found {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
