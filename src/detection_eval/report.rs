//! The evaluation's figures per rule set, the targets, and the table `vigil sim evaluate` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil_server::alerts::AlertKind;
use vigil_server::detection::water::eval::{RuleSetResult, SeriesReport};

use super::household::{HouseholdOutcome, Whereabouts};
use super::incident::IncidentClass;
use super::{PopulationSetup, RuleSet, DEFAULT_RULES};

const DAYS_PER_MONTH: f64 = 30.0;

/// The targets for the default rules (issue #7, item 6).
pub const TARGET_MEDIAN_DELAY_HOURS: f64 = 3.0;
pub const TARGET_FALSE_ALERTS_PER_MONTH: f64 = 0.5;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub setup: PopulationSetup,
    pub timezone: &'static str,
    pub incidents_per_class_per_household: usize,
    pub rule_sets: Vec<RuleSetFigures>,
    /// The real recordings replayed through the same rule sets (absent without the data).
    pub real: Option<RealReplay>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleSetFigures {
    pub name: String,
    pub household_months: f64,
    /// Alerts raised on the households' normal lives: every one is false.
    pub false_alerts: u32,
    pub false_alerts_per_household_month: f64,
    pub false_alerts_by_rule: BTreeMap<AlertKind, u32>,
    /// What the residents were doing when those alerts were raised.
    pub false_alerts_by_whereabouts: Whereabouts,
    pub incidents: Vec<IncidentFigures>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentFigures {
    pub incident: IncidentClass,
    pub expected: &'static str,
    pub injected: usize,
    /// Incidents answered by their rule within the horizon; for `away`: incidents during which a
    /// no-use alert was raised although the resident was marked away (must be 0).
    pub answered: usize,
    /// Delay quantiles over every injected incident, one not answered counting as infinitely late
    /// (`None`: the quantile falls on one). Not given for `away`.
    pub median_delay_hours: Option<f64>,
    pub p90_delay_hours: Option<f64>,
    pub max_delay_hours: Option<f64>,
    /// The first water alert raised after the incident's start, by rule.
    pub first_alert_by_rule: BTreeMap<AlertKind, u32>,
}

/// One real recording replayed through the same rule sets: `eval::evaluate_rule_sets`, the
/// method and code of `vigil water-eval`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RealReplay {
    pub recording: String,
    pub days_with_data: f64,
    pub emergencies: usize,
    pub rule_sets: Vec<RealRuleSet>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RealRuleSet {
    pub name: String,
    pub false_alerts_per_household_month: f64,
    pub median_delay_hours: Option<f64>,
    pub p90_delay_hours: Option<f64>,
    pub not_noticed: usize,
}

impl RealReplay {
    pub fn from_series_report(report: &SeriesReport) -> Self {
        Self {
            recording: report.household.clone(),
            days_with_data: report.days_with_data,
            emergencies: report.emergencies,
            rule_sets: report
                .results
                .iter()
                .map(|r| RealRuleSet {
                    name: r.name.clone(),
                    false_alerts_per_household_month: r.false_per_month,
                    median_delay_hours: r.delay_quantile(0.5),
                    p90_delay_hours: r.delay_quantile(0.9),
                    not_noticed: r.not_noticed(),
                })
                .collect(),
        }
    }
}

/// Quantiles by the rule of `eval::RuleSetResult::delay_quantile`, so simulated and real figures
/// are computed alike.
fn delay_quantiles(delays_hours: Vec<Option<f64>>) -> [Option<f64>; 3] {
    let result = RuleSetResult {
        name: String::new(),
        raised: 0,
        raised_by_kind: Vec::new(),
        false_per_month: 0.0,
        delays_hours,
    };
    [
        result.delay_quantile(0.5),
        result.delay_quantile(0.9),
        result.delay_quantile(1.0),
    ]
}

/// Sums the households' outcomes (in household order) per rule set.
pub(super) fn aggregate(
    setup: PopulationSetup,
    rule_sets: &[RuleSet],
    households: &[(u32, Vec<HouseholdOutcome>)],
) -> Evaluation {
    let figures = rule_sets
        .iter()
        .enumerate()
        .map(|(r, set)| {
            let outcomes = households.iter().filter_map(|(_, o)| o.get(r));
            let mut days = 0.0;
            let mut by_rule: BTreeMap<AlertKind, u32> = BTreeMap::new();
            let mut whereabouts = Whereabouts::default();
            let mut per_class: BTreeMap<IncidentClass, Vec<_>> = BTreeMap::new();
            for o in outcomes {
                days += o.days;
                for (kind, n) in &o.false_alerts {
                    *by_rule.entry(*kind).or_default() += n;
                }
                whereabouts.add(&o.false_alert_whereabouts);
                for i in &o.incidents {
                    per_class.entry(i.class).or_default().push(*i);
                }
            }
            let false_alerts: u32 = by_rule.values().sum();
            let incidents = IncidentClass::ALL
                .iter()
                .map(|class| {
                    let list = per_class.remove(class).unwrap_or_default();
                    let mut first_alert_by_rule = BTreeMap::new();
                    for i in &list {
                        if let Some(kind) = i.first_alert {
                            *first_alert_by_rule.entry(kind).or_default() += 1;
                        }
                    }
                    let answered = list.iter().filter(|i| i.delay_minutes.is_some()).count();
                    let [median, p90, max] = if class.must_be_detected() {
                        delay_quantiles(
                            list.iter()
                                .map(|i| i.delay_minutes.map(|m| f64::from(m) / 60.0))
                                .collect(),
                        )
                    } else {
                        [None; 3]
                    };
                    IncidentFigures {
                        incident: *class,
                        expected: class.expected_rules(),
                        injected: list.len(),
                        answered,
                        median_delay_hours: median,
                        p90_delay_hours: p90,
                        max_delay_hours: max,
                        first_alert_by_rule,
                    }
                })
                .collect();
            let months = days / DAYS_PER_MONTH;
            RuleSetFigures {
                name: set.name.clone(),
                household_months: months,
                false_alerts,
                false_alerts_per_household_month: if months > 0.0 {
                    f64::from(false_alerts) / months
                } else {
                    0.0
                },
                false_alerts_by_rule: by_rule,
                false_alerts_by_whereabouts: whereabouts,
                incidents,
            }
        })
        .collect();
    Evaluation {
        setup,
        timezone: super::household::TIMEZONE.name(),
        incidents_per_class_per_household: setup.incidents_per_class(),
        rule_sets: figures,
        real: None,
    }
}

/// Whether the default rules meet the targets on the simulated population.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TargetVerdict {
    pub median_delay_hours: Option<f64>,
    pub median_met: bool,
    pub false_alerts_per_household_month: f64,
    pub false_alerts_met: bool,
}

impl Evaluation {
    pub fn rule_set(&self, name: &str) -> Option<&RuleSetFigures> {
        self.rule_sets.iter().find(|r| r.name == name)
    }

    /// The default rules against the targets (`None` if the default rules were not evaluated).
    pub fn targets(&self) -> Option<TargetVerdict> {
        let default = self.rule_set(DEFAULT_RULES)?;
        let silent = default.incident(IncidentClass::SilentEmergency)?;
        let median = silent.median_delay_hours;
        Some(TargetVerdict {
            median_delay_hours: median,
            median_met: median.is_some_and(|m| m <= TARGET_MEDIAN_DELAY_HOURS),
            false_alerts_per_household_month: default.false_alerts_per_household_month,
            false_alerts_met: default.false_alerts_per_household_month
                <= TARGET_FALSE_ALERTS_PER_MONTH,
        })
    }

    /// The report as JSON, for tools.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "targets".into(),
                serde_json::to_value(self.targets()).unwrap_or(serde_json::Value::Null),
            );
        }
        value
    }

    /// The report as Markdown tables, as recorded in `docs/detection.md`.
    pub fn render(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} simulated households × {} days (seed {}, timezone {}); incidents start after \
             day {}, {} of each kind per household\n",
            s.households,
            s.days,
            s.seed,
            self.timezone,
            s.warmup_days,
            self.incidents_per_class_per_household
        );
        out.push_str(
            "False alerts on the households' normal lives (every alert raised there is false)\n\n\
             | rules | household-months | false alerts | per household-month | by rule | resident was home / asleep / out / away (unmarked) |\n\
             |---|---|---|---|---|---|\n",
        );
        for r in &self.rule_sets {
            let w = &r.false_alerts_by_whereabouts;
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {:.2} | {} | {} / {} / {} / {} |",
                r.name,
                r.household_months,
                r.false_alerts,
                r.false_alerts_per_household_month,
                by_rule(&r.false_alerts_by_rule),
                w.home,
                w.asleep,
                w.out,
                w.away
            );
        }
        out.push_str(
            "\nIncidents (delay from the incident's start; one not answered counts as infinitely late)\n\n\
             | rules | incident | answered by | answered / injected | median delay | p90 delay | max delay | first water alert |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rule_sets {
            for i in &r.incidents {
                let answered = if i.incident.must_be_detected() {
                    format!("{} / {}", i.answered, i.injected)
                } else {
                    format!("{} alerted while away / {}", i.answered, i.injected)
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.name,
                    i.incident.name(),
                    i.expected,
                    answered,
                    hours(i.incident, i.median_delay_hours),
                    hours(i.incident, i.p90_delay_hours),
                    hours(i.incident, i.max_delay_hours),
                    by_rule(&i.first_alert_by_rule)
                );
            }
        }
        if let Some(real) = &self.real {
            let _ = writeln!(
                out,
                "\nReal recording replayed ({}: {:.1} days with data, {} emergencies, one a day \
                 08:00–20:00 local; method of `vigil water-eval`)\n\n\
                 | rules | false alerts / household-month | median delay | p90 delay | not noticed in 48 h |\n\
                 |---|---|---|---|---|",
                real.recording, real.days_with_data, real.emergencies
            );
            for r in &real.rule_sets {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {} | {} | {} |",
                    r.name,
                    r.false_alerts_per_household_month,
                    hours(IncidentClass::SilentEmergency, r.median_delay_hours),
                    hours(IncidentClass::SilentEmergency, r.p90_delay_hours),
                    r.not_noticed
                );
            }
        }
        out.push('\n');
        match self.targets() {
            Some(t) => {
                let verdict = |met: bool| if met { "met" } else { "NOT met" };
                let _ = writeln!(
                    out,
                    "Targets for the default rules on the simulated households: silent emergency \
                     median delay ≤ {TARGET_MEDIAN_DELAY_HOURS} h: {} ({}); ≤ \
                     {TARGET_FALSE_ALERTS_PER_MONTH} false alerts per household-month: {} ({:.2}).",
                    verdict(t.median_met),
                    hours(IncidentClass::SilentEmergency, t.median_delay_hours),
                    verdict(t.false_alerts_met),
                    t.false_alerts_per_household_month
                );
                let _ = writeln!(
                    out,
                    "{}",
                    if t.median_met && t.false_alerts_met {
                        "TARGETS MET"
                    } else {
                        "TARGETS NOT MET"
                    }
                );
            }
            None => out.push_str("Targets not judged: the default rules were not evaluated.\n"),
        }
        out
    }
}

impl RuleSetFigures {
    pub fn incident(&self, class: IncidentClass) -> Option<&IncidentFigures> {
        self.incidents.iter().find(|i| i.incident == class)
    }
}

fn by_rule(counts: &BTreeMap<AlertKind, u32>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hours(class: IncidentClass, value: Option<f64>) -> String {
    if !class.must_be_detected() {
        return "–".into();
    }
    match value {
        Some(h) => format!("{h:.1} h"),
        None => "not answered".into(),
    }
}
