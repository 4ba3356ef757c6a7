//! Response-time KPIs, computed from the audit trail alone (a pure function over records).
//!
//! Per site and period (alerts **raised** in `[from, until)`):
//! - time to acknowledge: from the rule raising the alert to the first person's transition
//!   out of `open` (acknowledging, or resolving it straight away); median and 90th percentile
//!   (nearest rank), and the share answered within 60 s and 180 s — the telecare targets of
//!   97.5 % and 99 %, over the critical alerts (calls, falls, confirmed fires) and per kind.
//!   An alert nobody answered counts as a miss once it has waited longer
//!   than the target by the end of the period; one closed by its own rule before anybody
//!   answered is left out (nobody had to) and counted in `closed_by_rule_unanswered`;
//! - time to on scene: raised → `on_scene`; median, 90th percentile, share within 45 min;
//! - alerts per kind; false-alarm share: `false_alarm` dispositions over all dispositions
//!   except `test`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::alerts::audit::{Actor, AuditChange, AuditRecord};
use crate::alerts::lifecycle::{AlertId, AlertState, Disposition};
use crate::alerts::{AlertKind, Severity, Timestamp};
use crate::ids::SiteId;

pub const ANSWER_TARGET_FAST: Duration = Duration::from_secs(60);
pub const ANSWER_TARGET_SLOW: Duration = Duration::from_secs(180);
pub const ON_SCENE_TARGET: Duration = Duration::from_secs(45 * 60);

/// `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    pub from: Timestamp,
    pub until: Timestamp,
}

impl Period {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.until
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DurationStats {
    pub count: usize,
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
}

impl DurationStats {
    fn of(mut v: Vec<Duration>) -> Self {
        v.sort();
        let rank = |p: f64| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            Some(v[idx].as_secs_f64())
        };
        Self {
            count: v.len(),
            median_s: rank(0.5),
            p90_s: rank(0.9),
        }
    }
}

/// A share with what it was computed from, so "no data" is never shown as 0 % or 100 %.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    pub hits: usize,
    pub of: usize,
}

impl Share {
    pub fn ratio(&self) -> Option<f64> {
        (self.of > 0).then(|| self.hits as f64 / self.of as f64)
    }
}

/// How fast people answered a set of alerts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnswerStats {
    pub time_to_acknowledge: DurationStats,
    pub within_60s: Share,
    pub within_180s: Share,
    /// Nobody answered yet at the end of the period.
    pub unanswered: usize,
    /// Closed by their own rule before anybody answered (left out of the shares).
    pub closed_by_rule_unanswered: usize,
}

#[derive(Default)]
struct AnswerAcc {
    stats: AnswerStats,
    waits: Vec<Duration>,
}

impl AnswerAcc {
    fn add(
        &mut self,
        raised: Timestamp,
        answered: Option<Timestamp>,
        by_rule: bool,
        end: Timestamp,
    ) {
        let k = &mut self.stats;
        match answered {
            Some(at) => {
                let waited = at.since(raised);
                self.waits.push(waited);
                for (share, target) in [
                    (&mut k.within_60s, ANSWER_TARGET_FAST),
                    (&mut k.within_180s, ANSWER_TARGET_SLOW),
                ] {
                    share.of += 1;
                    share.hits += usize::from(waited <= target);
                }
            }
            None if by_rule => k.closed_by_rule_unanswered += 1,
            None => {
                k.unanswered += 1;
                let waited = end.since(raised);
                for (share, target) in [
                    (&mut k.within_60s, ANSWER_TARGET_FAST),
                    (&mut k.within_180s, ANSWER_TARGET_SLOW),
                ] {
                    share.of += usize::from(waited > target);
                }
            }
        }
    }

    fn finish(self) -> AnswerStats {
        AnswerStats {
            time_to_acknowledge: DurationStats::of(self.waits),
            ..self.stats
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteKpis {
    pub alerts: usize,
    pub by_kind: BTreeMap<AlertKind, usize>,
    /// Critical alerts (calls, falls, confirmed fires): what the telecare answering targets
    /// are about. A minor alert left for the morning does not count against them.
    pub answer_critical: AnswerStats,
    pub answer_by_kind: BTreeMap<AlertKind, AnswerStats>,
    pub time_to_on_scene: DurationStats,
    pub on_scene_within_45min: Share,
    pub false_alarms: Share,
}

#[derive(Default)]
struct AlertTrail {
    site: Option<SiteId>,
    kind: Option<AlertKind>,
    /// The most urgent severity the alert had.
    severity: Option<Severity>,
    raised_at: Option<Timestamp>,
    answered_at: Option<Timestamp>,
    closed_by_rule_first: bool,
    on_scene_at: Option<Timestamp>,
    disposition: Option<Disposition>,
}

fn is_person(actor: &Actor) -> bool {
    match actor {
        Actor::User(_) | Actor::Responder(_) => true,
        Actor::Rule | Actor::System => false,
    }
}

/// KPIs of every site with alerts raised in `period`.
pub fn kpis_by_site(records: &[AuditRecord], period: Period) -> BTreeMap<SiteId, SiteKpis> {
    let mut trails: BTreeMap<AlertId, AlertTrail> = BTreeMap::new();
    for r in records {
        let trail = trails.entry(r.alert).or_default();
        match &r.change {
            AuditChange::Raised { severity } => {
                trail.site = Some(r.site.clone());
                trail.kind = Some(r.kind);
                trail.raised_at = Some(r.at);
                trail.severity = Some(trail.severity.map_or(*severity, |s| s.min(*severity)));
            }
            AuditChange::Repeated { severity, .. } => {
                trail.severity = Some(trail.severity.map_or(*severity, |s| s.min(*severity)));
            }
            AuditChange::Transition { disposition } => {
                let left_open = r.from == Some(AlertState::Open) && r.to != AlertState::Open;
                if left_open && trail.answered_at.is_none() && !trail.closed_by_rule_first {
                    if is_person(&r.actor) {
                        trail.answered_at = Some(r.at);
                    } else {
                        trail.closed_by_rule_first = true;
                    }
                }
                if r.to == AlertState::OnScene && trail.on_scene_at.is_none() {
                    trail.on_scene_at = Some(r.at);
                }
                if disposition.is_some() {
                    trail.disposition = *disposition;
                }
            }
            AuditChange::ConditionCleared { .. }
            | AuditChange::Escalated { .. }
            | AuditChange::TierEmpty { .. }
            | AuditChange::Notified { .. }
            | AuditChange::Note => {}
        }
    }

    #[derive(Default)]
    struct Acc {
        kpis: SiteKpis,
        critical: AnswerAcc,
        by_kind: BTreeMap<AlertKind, AnswerAcc>,
        on_scene: Vec<Duration>,
    }
    let mut sites: BTreeMap<SiteId, Acc> = BTreeMap::new();
    for trail in trails.into_values() {
        let (Some(site), Some(kind), Some(raised)) = (trail.site, trail.kind, trail.raised_at)
        else {
            continue;
        };
        if !period.contains(raised) {
            continue;
        }
        let acc = sites.entry(site).or_default();
        let k = &mut acc.kpis;
        k.alerts += 1;
        *k.by_kind.entry(kind).or_default() += 1;
        let (answered, by_rule) = (trail.answered_at, trail.closed_by_rule_first);
        let by_kind = acc.by_kind.entry(kind).or_default();
        by_kind.add(raised, answered, by_rule, period.until);
        if trail.severity == Some(Severity::Critical) {
            acc.critical.add(raised, answered, by_rule, period.until);
        }
        if let Some(at) = trail.on_scene_at {
            let took = at.since(raised);
            acc.on_scene.push(took);
            k.on_scene_within_45min.of += 1;
            k.on_scene_within_45min.hits += usize::from(took <= ON_SCENE_TARGET);
        }
        match trail.disposition {
            Some(Disposition::FalseAlarm) => {
                k.false_alarms.hits += 1;
                k.false_alarms.of += 1;
            }
            Some(
                Disposition::RealEmergency
                | Disposition::ResidentCancelled
                | Disposition::ConditionCleared,
            ) => k.false_alarms.of += 1,
            Some(Disposition::Test) | None => {}
        }
    }
    sites
        .into_iter()
        .map(|(site, acc)| {
            let mut k = acc.kpis;
            k.answer_critical = acc.critical.finish();
            k.answer_by_kind = acc
                .by_kind
                .into_iter()
                .map(|(kind, a)| (kind, a.finish()))
                .collect();
            k.time_to_on_scene = DurationStats::of(acc.on_scene);
            (site, k)
        })
        .collect()
}

#[cfg(test)]
#[path = "kpi_tests.rs"]
mod tests;
