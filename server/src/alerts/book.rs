//! The open alerts of a partition of sites: one per (subject, kind), fed by detectors and
//! operators, emitting audit records and the follow-ups (escalation, "help is coming").
//!
//! # Alert ids
//!
//! The book never makes up an id: it spends the ids its driver granted it
//! ([`AlertBook::grant_ids`]), which the driver reserves from the alert store in blocks, so
//! that server instances sharing one database never give two alerts one id. A raise that
//! needs a new alert while the book has no id left waits in the book, in order with the
//! detector actions after it, until ids are granted ([`AlertBook::ids_wanted`] says how
//! many); it is neither dropped nor given an invented id.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use vigil_protocol::{DownlinkBody, DownlinkFrame, HelpComing};

use crate::alerts::audit::{Actor, AuditChange, AuditRecord};
use crate::alerts::lifecycle::{
    Alert, AlertId, AlertPolicy, AlertState, Clearing, Disposition, LifecycleError, OperatorAction,
};
use crate::alerts::{AlertKind, Timestamp};
use crate::detection::action::{AlertKey, DetectorAction};
use crate::escalation::StopReason;

/// What the book asks its driver to do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum BookEvent {
    /// Append to the durable audit trail (and publish on the live feed).
    Audit(AuditRecord),
    /// The alert's current state, to store and publish.
    Upserted(Box<Alert>),
    /// A new alert needs a person: start escalating it.
    StartEscalation(AlertId),
    /// Somebody acknowledged it or it closed: stop escalating.
    StopEscalation(AlertId, StopReason),
    /// Tell the pendant that help is coming.
    Downlink(DownlinkFrame),
}

/// Counters of inputs that changed nothing, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookCounters {
    /// A clear for a (subject, kind) with no open alert.
    pub clears_without_alert: u64,
    /// A clear older than the alert's last sighting.
    pub stale_clears: u64,
    /// A raise that needed a new alert found no id granted: it waited for ids.
    pub raises_short_of_ids: u64,
    /// A granted id already held by an open alert (a bad grant): skipped.
    pub granted_ids_in_use: u64,
}

/// The book's state as stored, to rebuild it after a restart. Ids are not part of it: a
/// restarted book is granted a fresh block (the unspent rest of the old one is a gap).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookSnapshot {
    pub open: Vec<Alert>,
}

/// What became of a detector action the book tried to apply.
#[must_use]
enum Applying {
    Done,
    /// A raise that needs a new alert, handed back: the book has no id left.
    ShortOfId(Box<DetectorAction>),
}

#[derive(Debug, Default)]
pub struct AlertBook {
    policy: AlertPolicy,
    // Design: granted blocks are spent front to back; a block is dropped once empty.
    ids: VecDeque<Range<u64>>,
    /// Detector actions held, in arrival order, behind a raise that found no id; each with
    /// the time it arrived.
    waiting: VecDeque<(DetectorAction, Timestamp)>,
    open: BTreeMap<AlertKey, Alert>,
    by_id: BTreeMap<AlertId, AlertKey>,
    events: VecDeque<BookEvent>,
    counters: BookCounters,
}

impl AlertBook {
    /// A book with no alert and no id: grant it ids before it can open an alert.
    pub fn new(policy: AlertPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// A book that may spend `ids` (tests and tools that own their whole store).
    pub fn with_ids(policy: AlertPolicy, ids: Range<u64>) -> Self {
        let mut book = Self::new(policy);
        book.grant_ids(ids);
        book
    }

    /// The open alerts of the store, and no id.
    pub fn restore(policy: AlertPolicy, snapshot: BookSnapshot) -> Self {
        let mut book = Self::new(policy);
        for alert in snapshot.open {
            book.by_id.insert(alert.id, alert.key.clone());
            book.open.insert(alert.key.clone(), alert);
        }
        book
    }

    pub fn snapshot(&self) -> BookSnapshot {
        BookSnapshot {
            open: self.open.values().cloned().collect(),
        }
    }

    /// Adds ids the book may give new alerts (reserved for it alone), then applies the
    /// detector actions that were waiting for an id, as far as the ids go.
    pub fn grant_ids(&mut self, ids: Range<u64>) {
        if !ids.is_empty() {
            self.ids.push_back(ids);
        }
        while let Some((action, at)) = self.waiting.pop_front() {
            match self.apply_detection(action, at) {
                Applying::Done => {}
                Applying::ShortOfId(action) => {
                    self.waiting.push_front((*action, at));
                    break;
                }
            }
        }
    }

    /// How many granted ids are left to spend.
    pub fn ids_left(&self) -> u64 {
        self.ids
            .iter()
            .fold(0, |n: u64, r| n.saturating_add(r.end - r.start))
    }

    /// How many more ids the waiting detector actions may need (at most one per raise):
    /// zero unless a raise found the book short of ids.
    pub fn ids_wanted(&self) -> u64 {
        let raises = self
            .waiting
            .iter()
            .filter(|(action, _)| match action {
                DetectorAction::Raise { .. } => true,
                DetectorAction::Clear { .. } => false,
            })
            .count() as u64;
        raises.saturating_sub(self.ids_left())
    }

    /// Detector actions held until ids are granted.
    pub fn waiting_actions(&self) -> usize {
        self.waiting.len()
    }

    fn take_id(&mut self) -> Option<AlertId> {
        while let Some(block) = self.ids.front_mut() {
            let Some(id) = block.next() else {
                self.ids.pop_front();
                continue;
            };
            let id = AlertId(id);
            if self.by_id.contains_key(&id) {
                self.counters.granted_ids_in_use += 1;
                continue;
            }
            return Some(id);
        }
        None
    }

    pub fn counters(&self) -> &BookCounters {
        &self.counters
    }

    pub fn open_alert(&self, key: &AlertKey) -> Option<&Alert> {
        self.open.get(key)
    }

    pub fn get(&self, id: AlertId) -> Option<&Alert> {
        self.by_id.get(&id).and_then(|k| self.open.get(k))
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }

    pub fn poll_event(&mut self) -> Option<BookEvent> {
        self.events.pop_front()
    }

    /// Applies one detector output; one behind a raise short of ids waits its turn.
    pub fn handle_detection(&mut self, action: DetectorAction, now: Timestamp) {
        if !self.waiting.is_empty() {
            self.waiting.push_back((action, now));
            return;
        }
        match self.apply_detection(action, now) {
            Applying::Done => {}
            Applying::ShortOfId(action) => {
                self.counters.raises_short_of_ids += 1;
                self.waiting.push_back((*action, now));
            }
        }
    }

    /// Applies one detector output, or hands back a raise that needs an id when none is left.
    fn apply_detection(&mut self, action: DetectorAction, now: Timestamp) -> Applying {
        let new_id = match &action {
            DetectorAction::Raise { key, .. } if !self.open.contains_key(key) => {
                match self.take_id() {
                    Some(id) => Some(id),
                    None => return Applying::ShortOfId(Box::new(action)),
                }
            }
            DetectorAction::Raise { .. } | DetectorAction::Clear { .. } => None,
        };
        match action {
            DetectorAction::Raise {
                site,
                key,
                severity,
                at,
                origin,
                details,
            } => {
                // A board's clock running ahead must not date a sighting in the future.
                let at = at.min(now);
                let Some(id) = new_id else {
                    let Some(alert) = self.open.get_mut(&key) else {
                        // new_id is None only for an open key.
                        return Applying::Done;
                    };
                    alert.repeat_count = alert.repeat_count.saturating_add(1);
                    alert.last_seen_at = alert.last_seen_at.max(at);
                    // The ladder sorts most urgent first: a repeat can only make it more urgent.
                    let more_urgent = severity < alert.severity;
                    alert.severity = alert.severity.min(severity);
                    alert.cleared = None;
                    alert.details.extend(details);
                    if alert.origin.is_none() {
                        alert.origin = origin;
                    }
                    let change = AuditChange::Repeated {
                        count: alert.repeat_count,
                        severity: alert.severity,
                    };
                    let rec = alert.record_rule(now, Some(alert.state), change);
                    let snapshot = Box::new(alert.clone());
                    let id = alert.id;
                    let unacknowledged = alert.state == AlertState::Open;
                    self.events.push_back(BookEvent::Audit(rec));
                    self.events.push_back(BookEvent::Upserted(snapshot));
                    // An alert that became more urgent may now reach the escalation policy's
                    // severity (e.g. no use for 12 h, then for 24 h); starting twice is a no-op.
                    if more_urgent && unacknowledged {
                        self.events.push_back(BookEvent::StartEscalation(id));
                    }
                    return Applying::Done;
                };
                let alert = Alert {
                    id,
                    site,
                    key: key.clone(),
                    severity,
                    state: AlertState::Open,
                    opened_at: at,
                    last_seen_at: at,
                    repeat_count: 0,
                    origin,
                    details,
                    cleared: None,
                    acknowledged: None,
                    dispatched_to: Vec::new(),
                    disposition: None,
                    closed_at: None,
                    closed_by: None,
                };
                let rec = alert.record_rule(now, None, AuditChange::Raised { severity });
                self.events.push_back(BookEvent::Audit(rec));
                self.events
                    .push_back(BookEvent::Upserted(Box::new(alert.clone())));
                self.events.push_back(BookEvent::StartEscalation(id));
                self.by_id.insert(id, key.clone());
                self.open.insert(key, alert);
            }
            DetectorAction::Clear {
                key,
                at,
                reason,
                details,
                ..
            } => {
                let at = at.min(now);
                let Some(alert) = self.open.get_mut(&key) else {
                    self.counters.clears_without_alert += 1;
                    return Applying::Done;
                };
                // A clearing older than the latest sighting of the condition (a late frame)
                // must not mark a live condition as gone.
                if at < alert.last_seen_at {
                    self.counters.stale_clears += 1;
                    return Applying::Done;
                }
                alert.cleared = Some(Clearing { at, reason });
                alert.details.extend(details);
                let state = alert.state;
                let rec =
                    alert.record_rule(now, Some(state), AuditChange::ConditionCleared { reason });
                self.events.push_back(BookEvent::Audit(rec));
                if self.policy.auto_closes(key.kind) {
                    let resolve = OperatorAction::Resolve {
                        disposition: Disposition::ConditionCleared,
                    };
                    // Cannot be refused: the alert is open, and every open state may resolve.
                    if let Ok(rec) = alert.apply(&resolve, Actor::Rule, None, now) {
                        self.events.push_back(BookEvent::Audit(rec));
                    }
                }
                let snapshot = alert.clone();
                self.after_change(snapshot, state);
            }
        }
        Applying::Done
    }

    /// Applies a person's action to an open alert.
    pub fn handle_operator(
        &mut self,
        id: AlertId,
        action: &OperatorAction,
        actor: Actor,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<(), LifecycleError> {
        let key = self
            .by_id
            .get(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        let alert = self
            .open
            .get_mut(key)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        let before = alert.state;
        let rec = alert.apply(action, actor, note, now)?;
        self.events.push_back(BookEvent::Audit(rec));
        let snapshot = alert.clone();
        self.after_change(snapshot, before);
        Ok(())
    }

    fn after_change(&mut self, alert: Alert, before: AlertState) {
        let id = alert.id;
        let was_unacknowledged = before == AlertState::Open;
        if was_unacknowledged && alert.state != AlertState::Open {
            let reason = if alert.state.is_closed() {
                StopReason::Closed
            } else {
                StopReason::Acknowledged
            };
            self.events.push_back(BookEvent::StopEscalation(id, reason));
        }
        if before == AlertState::Open && alert.state == AlertState::Acknowledged {
            if let Some(frame) = help_coming(&alert) {
                self.events.push_back(BookEvent::Downlink(frame));
            }
        }
        if alert.state.is_closed() {
            self.open.remove(&alert.key);
            self.by_id.remove(&id);
        }
        self.events.push_back(BookEvent::Upserted(Box::new(alert)));
    }
}

impl Alert {
    fn record_rule(
        &self,
        now: Timestamp,
        from: Option<AlertState>,
        change: AuditChange,
    ) -> AuditRecord {
        AuditRecord {
            alert: self.id,
            site: self.site.clone(),
            kind: self.key.kind,
            at: now,
            actor: Actor::Rule,
            from,
            to: self.state,
            change,
            note: None,
        }
    }
}

/// The "help is coming" downlink for an acknowledged call or fall from a pendant.
pub fn help_coming(alert: &Alert) -> Option<DownlinkFrame> {
    let wants_feedback = match alert.key.kind {
        AlertKind::Call | AlertKind::Fall => true,
        AlertKind::WaterNoUse
        | AlertKind::WaterNoUseSevere
        | AlertKind::WaterUnusualSilence
        | AlertKind::WaterMorningCheck
        | AlertKind::WaterContinuousFlow
        | AlertKind::WaterExcessiveUse
        | AlertKind::WaterLeak
        | AlertKind::FireAlarm
        | AlertKind::FireConfirmed
        | AlertKind::FireSupervisory
        | AlertKind::FireTrouble
        | AlertKind::ElectricalHazard
        | AlertKind::HazardOverdue
        | AlertKind::DeviceOffline
        | AlertKind::LowBattery
        | AlertKind::Tamper
        | AlertKind::GatewayOffline => false,
    };
    let origin = alert.origin.as_ref().filter(|_| wants_feedback)?;
    Some(DownlinkFrame {
        device_id: origin.device.clone(),
        body: DownlinkBody::HelpComing(HelpComing {
            boot_id: origin.boot_id,
            seq: origin.seq,
            alert_id: alert.id.0,
        }),
    })
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
