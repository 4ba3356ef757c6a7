//! What one step of the cores wrote, to commit in one transaction.

use crate::alerts::audit::AuditRecord;
use crate::alerts::book::BookEvent;
use crate::alerts::lifecycle::{Alert, AlertId};
use crate::escalation::{EscalationAction, EscalationTask, Notification};

/// The durable part of one core step: applied in order — alerts, then audit records, then
/// escalation starts, then stops — in a single transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Alert states to store, in the order the book produced them (a closed alert comes
    /// before the new one that reopens its (subject, kind)).
    pub alerts: Vec<Alert>,
    pub audit: Vec<AuditRecord>,
    /// Escalations started in this step. An alert already under escalation keeps its task,
    /// and the duplicate start's audit records and notifications are dropped (starting twice
    /// is a no-op, as in the `Escalator`).
    pub started: Vec<StartedEscalation>,
    /// Escalations stopped (acknowledged or closed): their tasks leave the work queue.
    pub stopped: Vec<AlertId>,
}

/// A new escalation task with what starting it produced (its first tier's audit records and
/// notifications), kept together so that a start that loses to an existing task writes and
/// sends nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedEscalation {
    pub task: EscalationTask,
    pub audit: Vec<AuditRecord>,
    pub notify: Vec<Notification>,
}

/// What a committed change set asks the driver to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Applied {
    /// The notifications of the escalations this commit started.
    pub notify: Vec<Notification>,
}

/// A book event that is not storage: the driver acts on it after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterCommit {
    /// Start escalating this alert: build the task with `EscalationTask::start` and add it
    /// with [`ChangeSet::start`] to this change set before committing it.
    StartEscalation(AlertId),
    Downlink(vigil_protocol::DownlinkFrame),
}

impl ChangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.audit.is_empty()
            && self.started.is_empty()
            && self.stopped.is_empty()
    }

    /// Takes the storage part of a book event; returns what the driver must do itself.
    pub fn record_book_event(&mut self, event: BookEvent) -> Option<AfterCommit> {
        match event {
            BookEvent::Audit(r) => self.audit.push(r),
            BookEvent::Upserted(a) => self.alerts.push(*a),
            BookEvent::StopEscalation(id, _) => self.stopped.push(id),
            BookEvent::StartEscalation(id) => return Some(AfterCommit::StartEscalation(id)),
            BookEvent::Downlink(f) => return Some(AfterCommit::Downlink(f)),
        }
        None
    }

    /// Takes the audit records of escalation actions; returns the notifications to send
    /// once the change set is committed.
    pub fn record_escalation(
        &mut self,
        actions: impl IntoIterator<Item = EscalationAction>,
    ) -> Vec<Notification> {
        let mut notify = Vec::new();
        for a in actions {
            match a {
                EscalationAction::Audit(r) => self.audit.push(r),
                EscalationAction::Notify(n) => notify.push(n),
            }
        }
        notify
    }

    /// Adds a newly started escalation task (from `EscalationTask::start`) to the work queue,
    /// with the actions starting it produced.
    pub fn start(&mut self, task: EscalationTask, actions: Vec<EscalationAction>) {
        let mut started = StartedEscalation {
            task,
            audit: Vec::new(),
            notify: Vec::new(),
        };
        for a in actions {
            match a {
                EscalationAction::Audit(r) => started.audit.push(r),
                EscalationAction::Notify(n) => started.notify.push(n),
            }
        }
        self.started.push(started);
    }
}
