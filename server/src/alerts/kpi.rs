//! Response-time KPIs, computed from the audit trail alone (a pure function over records).
//!
//! Per site and period (alerts **raised** in `[from, until)`):
//! - time to acknowledge: from the rule raising the alert to the first person's transition
//!   out of `open` (acknowledging, or resolving it straight away); median and 90th percentile
//!   (nearest rank), and the share answered within 60 s and 180 s — the telecare targets of
//!   97.5 % and 99 %. An alert nobody answered counts as a miss once it has waited longer
//!   than the target by the end of the period; one closed by its own rule before anybody
//!   answered is left out (nobody had to) and counted in `closed_by_rule_unanswered`;
//! - time to on scene: raised → `on_scene`; median, 90th percentile, share within 45 min;
//! - alerts per kind; false-alarm share: `false_alarm` dispositions over all dispositions
//!   except `test`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::alerts::audit::{Actor, AuditChange, AuditRecord};
use crate::alerts::lifecycle::{AlertId, AlertState, Disposition};
use crate::alerts::{AlertKind, Timestamp};
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

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteKpis {
    pub alerts: usize,
    pub by_kind: BTreeMap<AlertKind, usize>,
    pub time_to_acknowledge: DurationStats,
    pub answered_within_60s: Share,
    pub answered_within_180s: Share,
    pub unanswered: usize,
    pub closed_by_rule_unanswered: usize,
    pub time_to_on_scene: DurationStats,
    pub on_scene_within_45min: Share,
    pub false_alarms: Share,
}

#[derive(Default)]
struct AlertTrail {
    site: Option<SiteId>,
    kind: Option<AlertKind>,
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
            AuditChange::Raised { .. } => {
                trail.site = Some(r.site.clone());
                trail.kind = Some(r.kind);
                trail.raised_at = Some(r.at);
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
            AuditChange::Repeated { .. }
            | AuditChange::ConditionCleared { .. }
            | AuditChange::Escalated { .. }
            | AuditChange::TierEmpty { .. }
            | AuditChange::Notified { .. }
            | AuditChange::Note => {}
        }
    }

    #[derive(Default)]
    struct Acc {
        kpis: SiteKpis,
        ack: Vec<Duration>,
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
        match trail.answered_at {
            Some(at) => {
                let waited = at.since(raised);
                acc.ack.push(waited);
                for (share, target) in [
                    (&mut k.answered_within_60s, ANSWER_TARGET_FAST),
                    (&mut k.answered_within_180s, ANSWER_TARGET_SLOW),
                ] {
                    share.of += 1;
                    share.hits += usize::from(waited <= target);
                }
            }
            None if trail.closed_by_rule_first => k.closed_by_rule_unanswered += 1,
            None => {
                k.unanswered += 1;
                let waited = period.until.since(raised);
                for (share, target) in [
                    (&mut k.answered_within_60s, ANSWER_TARGET_FAST),
                    (&mut k.answered_within_180s, ANSWER_TARGET_SLOW),
                ] {
                    share.of += usize::from(waited > target);
                }
            }
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
            k.time_to_acknowledge = DurationStats::of(acc.ack);
            k.time_to_on_scene = DurationStats::of(acc.on_scene);
            (site, k)
        })
        .collect()
}

#[cfg(test)]
#[path = "kpi_tests.rs"]
mod tests;
