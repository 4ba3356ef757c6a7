//! Detection quality on a recorded series: false alerts per household-month on the normal life it
//! records, and the delay to notice a silent emergency that starts at a random time between 08:00
//! and 20:00 local (the series is cut there and continued with minutes of zero use).
//!
//! Every raised alert on the recorded life counts as false: the recordings contain no emergency.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::history::LocalSlot;
use super::recordings::MinuteSeries;
use super::{WaterAction, WaterDetector, WaterRules};
use crate::alerts::AlertKind;

/// How long an emergency is followed before it counts as not noticed.
pub const EMERGENCY_HORIZON_MINUTES: i64 = 48 * 60;
const DAYS_PER_MONTH: f64 = 30.0;

/// One configuration's figures on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetResult {
    pub name: String,
    pub raised: usize,
    pub raised_by_kind: Vec<(AlertKind, usize)>,
    pub false_per_month: f64,
    /// Delay in hours for each emergency, `None` when not noticed within the horizon.
    pub delays_hours: Vec<Option<f64>>,
}

impl RuleSetResult {
    /// The delay quantile `q` (0..=1), counting emergencies not noticed as infinitely late.
    pub fn delay_quantile(&self, q: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = self
            .delays_hours
            .iter()
            .map(|d| d.unwrap_or(f64::INFINITY))
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        Some(sorted[index]).filter(|d| d.is_finite())
    }

    pub fn not_noticed(&self) -> usize {
        self.delays_hours.iter().filter(|d| d.is_none()).count()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReport {
    pub household: String,
    pub days_with_data: f64,
    pub emergencies: usize,
    /// Share of emergency starts after which the recorded life itself had no use (≥ 0.5 L in a
    /// minute) for more than 3 h: a rule noticing those emergencies within 3 h necessarily also
    /// alerts on the recorded, normal life.
    pub share_quiet_3h_after_start: f64,
    /// Median over the emergencies of the hours from the start to the recorded life's next minute
    /// with any flow: no rule that raises no false alert on this series can be faster (see
    /// [`next_use_bound`]).
    pub zero_false_alert_bound_hours: Option<f64>,
    pub results: Vec<RuleSetResult>,
}

/// The configurations compared in `docs/detection.md`.
pub fn compared_rule_sets() -> Vec<(String, WaterRules)> {
    vec![
        ("vigil default".into(), WaterRules::default()),
        ("fixed < 10 L in 12 h".into(), WaterRules::fixed_only(12)),
        ("fixed < 10 L in 24 h".into(), WaterRules::fixed_only(24)),
        ("default, max_dry_share 0.10".into(), with_dry_share(0.10)),
        ("default, max_dry_share 0.15".into(), with_dry_share(0.15)),
        (
            "default without the 24 h backstop".into(),
            without_backstop(),
        ),
    ]
}

/// The default rules without the fixed 24 h backstop: what the adaptive rules alone do, and what
/// the backstop costs in false alerts (every silence of a day or more, mostly stays away).
fn without_backstop() -> WaterRules {
    let mut rules = WaterRules::default();
    rules.no_use_severe.enabled = false;
    rules
}

/// The default rules with a more eager unusual-silence rule: the trade-off rows of the report.
fn with_dry_share(share: f64) -> WaterRules {
    let mut rules = WaterRules::default();
    rules.unusual_silence.max_dry_share = share;
    rules
}

/// Deterministic pseudo-random numbers (SplitMix64) so every run cuts at the same minutes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One emergency per local day with data: a random minute with data between 08:00 and 20:00.
pub fn emergency_starts(series: &MinuteSeries, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix(seed);
    let mut starts = Vec::new();
    let mut day_candidates: Vec<usize> = Vec::new();
    let mut current_day = None;
    let flush = |candidates: &mut Vec<usize>, starts: &mut Vec<usize>, rng: &mut SplitMix| {
        if !candidates.is_empty() {
            let pick = (rng.next() % candidates.len() as u64) as usize;
            starts.push(candidates[pick]);
            candidates.clear();
        }
    };
    for (index, &(t, _)) in series.minutes.iter().enumerate() {
        let local = LocalSlot::of_minute(series.timezone, t.div_euclid(60));
        if current_day != Some(local.day) {
            flush(&mut day_candidates, &mut starts, &mut rng);
            current_day = Some(local.day);
        }
        if (8 * 60..20 * 60).contains(&local.minute_of_day()) {
            day_candidates.push(index);
        }
    }
    flush(&mut day_candidates, &mut starts, &mut rng);
    starts
}

fn at_time(epoch: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(epoch, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn is_no_use_family(kind: AlertKind) -> bool {
    matches!(
        kind,
        AlertKind::WaterNoUse
            | AlertKind::WaterNoUseSevere
            | AlertKind::WaterUnusualSilence
            | AlertKind::WaterMorningCheck
    )
}

/// Runs one configuration over the series and over each emergency.
pub fn evaluate(
    series: &MinuteSeries,
    name: &str,
    rules: WaterRules,
    emergencies: &[usize],
) -> RuleSetResult {
    let mut detector = WaterDetector::new(Arc::new(rules), series.timezone);
    let mut raised_by_kind: Vec<(AlertKind, usize)> = Vec::new();
    let mut open_no_use: Vec<AlertKind> = Vec::new();
    let mut delays = Vec::with_capacity(emergencies.len());
    let mut next_emergency = emergencies.iter().peekable();
    for (index, &(t, litres)) in series.minutes.iter().enumerate() {
        while next_emergency.peek() == Some(&&index) {
            next_emergency.next();
            delays.push(if !open_no_use.is_empty() {
                Some(0.0)
            } else {
                emergency_delay(detector.clone(), t)
            });
        }
        let minute = at_time(t);
        // Gaps and invalid minutes are already left out of the series; a rejection here is a bug
        // in the reader, which the tests of the readers catch.
        let _ = detector.handle_reading(minute, litres, at_time(t + 60));
        while let Some(action) = detector.poll_action() {
            match action {
                WaterAction::Raise { kind, .. } => {
                    match raised_by_kind.iter_mut().find(|(k, _)| *k == kind) {
                        Some((_, n)) => *n += 1,
                        None => raised_by_kind.push((kind, 1)),
                    }
                    if is_no_use_family(kind) && !open_no_use.contains(&kind) {
                        open_no_use.push(kind);
                    }
                }
                WaterAction::Clear { kind, .. } => {
                    open_no_use.retain(|k| *k != kind);
                }
                WaterAction::Suppressed { .. } => {}
            }
        }
    }
    let raised = raised_by_kind.iter().map(|(_, n)| n).sum();
    let days = series.minutes.len() as f64 / 1440.0;
    RuleSetResult {
        name: name.to_owned(),
        raised,
        raised_by_kind,
        false_per_month: raised as f64 / (days / DAYS_PER_MONTH),
        delays_hours: delays,
    }
}

/// Continues the detector from the emergency's first minute with zero use until a no-use rule
/// raises.
fn emergency_delay(mut detector: WaterDetector, start: i64) -> Option<f64> {
    for k in 0..EMERGENCY_HORIZON_MINUTES {
        let t = start + k * 60;
        let _ = detector.handle_reading(at_time(t), 0.0, at_time(t + 60));
        while let Some(action) = detector.poll_action() {
            if let WaterAction::Raise { kind, at, .. } = action {
                if is_no_use_family(kind) {
                    return Some((at.timestamp() - start) as f64 / 3600.0);
                }
            }
        }
    }
    None
}

/// Evaluates every compared configuration on one series.
pub fn evaluate_series(series: &MinuteSeries, seed: u64) -> SeriesReport {
    evaluate_rule_sets(series, seed, compared_rule_sets())
}

/// Evaluates the given configurations on one series, with the same emergencies for all.
pub fn evaluate_rule_sets(
    series: &MinuteSeries,
    seed: u64,
    rule_sets: Vec<(String, WaterRules)>,
) -> SeriesReport {
    let emergencies = emergency_starts(series, seed);
    let results = rule_sets
        .into_iter()
        .map(|(name, rules)| evaluate(series, &name, rules, &emergencies))
        .collect();
    SeriesReport {
        household: series.household.clone(),
        days_with_data: series.minutes.len() as f64 / 1440.0,
        emergencies: emergencies.len(),
        share_quiet_3h_after_start: share_quiet_after(series, &emergencies, 3 * 3600),
        zero_false_alert_bound_hours: median(next_use_bound(series, &emergencies)),
        results,
    }
}

/// For each emergency, the hours from its start to the first later minute of the recorded life
/// with any flow (`None` when the record has none).
///
/// Up to that minute the emergency's input and the recorded life's are the same (zero use), so
/// a causal rule that raises in the emergency before it raises in the recorded life too: a false
/// alert. Whatever a rule does, if it raises no false alert its delay is at least this bound.
pub fn next_use_bound(series: &MinuteSeries, emergencies: &[usize]) -> Vec<Option<f64>> {
    emergencies
        .iter()
        .map(|&start| {
            let t0 = series.minutes[start].0;
            series.minutes[start..]
                .iter()
                .find(|(_, litres)| *litres > 0.0)
                .map(|(t, _)| (t - t0) as f64 / 3600.0)
        })
        .collect()
}

fn median(delays: Vec<Option<f64>>) -> Option<f64> {
    RuleSetResult {
        name: String::new(),
        raised: 0,
        raised_by_kind: Vec::new(),
        false_per_month: 0.0,
        delays_hours: delays,
    }
    .delay_quantile(0.5)
}

/// Figures pooled over several households: alerts over all their months, delays of all their
/// emergencies.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationReport {
    pub population: String,
    pub households: usize,
    pub days_with_data: f64,
    pub emergencies: usize,
    pub zero_false_alert_bound_hours: Option<f64>,
    pub results: Vec<RuleSetResult>,
}

/// Evaluates the given configurations on every household and pools the figures per configuration.
pub fn evaluate_population(
    population: &str,
    households: &[MinuteSeries],
    seed: u64,
    rule_sets: &[(String, WaterRules)],
) -> PopulationReport {
    let mut results: Vec<RuleSetResult> = rule_sets
        .iter()
        .map(|(name, _)| RuleSetResult {
            name: name.clone(),
            raised: 0,
            raised_by_kind: Vec::new(),
            false_per_month: 0.0,
            delays_hours: Vec::new(),
        })
        .collect();
    let mut days = 0.0;
    let mut emergencies = 0;
    let mut bound = Vec::new();
    for series in households {
        let starts = emergency_starts(series, seed);
        days += series.minutes.len() as f64 / 1440.0;
        emergencies += starts.len();
        bound.extend(next_use_bound(series, &starts));
        for (pooled, (name, rules)) in results.iter_mut().zip(rule_sets) {
            let one = evaluate(series, name, rules.clone(), &starts);
            pooled.raised += one.raised;
            for (kind, n) in one.raised_by_kind {
                match pooled.raised_by_kind.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, total)) => *total += n,
                    None => pooled.raised_by_kind.push((kind, n)),
                }
            }
            pooled.delays_hours.extend(one.delays_hours);
        }
    }
    for pooled in &mut results {
        pooled.false_per_month = if days > 0.0 {
            pooled.raised as f64 / (days / DAYS_PER_MONTH)
        } else {
            0.0
        };
    }
    PopulationReport {
        population: population.to_owned(),
        households: households.len(),
        days_with_data: days,
        emergencies,
        zero_false_alert_bound_hours: median(bound),
        results,
    }
}

fn share_quiet_after(series: &MinuteSeries, starts: &[usize], seconds: i64) -> f64 {
    if starts.is_empty() {
        return 0.0;
    }
    let quiet = starts
        .iter()
        .filter(|&&start| {
            let t0 = series.minutes[start].0;
            series.minutes[start..]
                .iter()
                .take_while(|(t, _)| *t - t0 <= seconds)
                .all(|(_, litres)| *litres < 0.5)
                && series
                    .minutes
                    .last()
                    .is_some_and(|(t, _)| *t - t0 > seconds)
        })
        .count();
    quiet as f64 / starts.len() as f64
}

fn hours(value: Option<f64>) -> String {
    match value {
        Some(h) => format!("{h:.1} h"),
        None => "> 48 h".into(),
    }
}

const TABLE_HEAD: &str = "| rules | alerts raised | false alerts / household-month | median delay | p90 delay | not noticed in 48 h | raised by rule |\n\
     |---|---|---|---|---|---|---|\n";

/// The report as a Markdown table, as recorded in `docs/detection.md`.
pub fn render(report: &SeriesReport) -> String {
    let mut out = format!(
        "{}: {:.1} days with data, {} emergencies (one per day, 08:00–20:00 local); \
         after {:.0} % of the emergency starts the recorded life had no use for more than 3 h; \
         a rule without false alerts cannot notice sooner than a median {}\n\n{TABLE_HEAD}",
        report.household,
        report.days_with_data,
        report.emergencies,
        report.share_quiet_3h_after_start * 100.0,
        hours(report.zero_false_alert_bound_hours),
    );
    render_rows(&mut out, &report.results);
    out
}

/// A population's pooled figures as a Markdown table.
pub fn render_population(report: &PopulationReport) -> String {
    let mut out = format!(
        "{} ({} households, {:.0} days, {} emergencies; pooled): a rule without false alerts \
         cannot notice sooner than a median {}\n\n{TABLE_HEAD}",
        report.population,
        report.households,
        report.days_with_data,
        report.emergencies,
        hours(report.zero_false_alert_bound_hours),
    );
    render_rows(&mut out, &report.results);
    out
}

fn render_rows(out: &mut String, results: &[RuleSetResult]) {
    for r in results {
        let kinds: Vec<String> = r
            .raised_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {:.2} | {} | {} | {} | {} |\n",
            r.name,
            r.raised,
            r.false_per_month,
            hours(r.delay_quantile(0.5)),
            hours(r.delay_quantile(0.9)),
            r.not_noticed(),
            kinds.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(minutes: Vec<(i64, f64)>) -> MinuteSeries {
        MinuteSeries {
            household: "test".into(),
            timezone: chrono_tz::Europe::Rome,
            minutes,
        }
    }

    #[test]
    fn the_bound_is_the_time_to_the_recorded_next_flow() {
        // Flow at minute 0 and minute 90; emergencies at minutes 0, 1 and 91.
        let s = series(
            (0..120)
                .map(|m| (m * 60, if m == 0 || m == 90 { 0.1 } else { 0.0 }))
                .collect(),
        );
        assert_eq!(
            next_use_bound(&s, &[0, 1, 91]),
            vec![Some(0.0), Some(89.0 / 60.0), None]
        );
    }

    #[test]
    fn a_population_pools_alerts_over_all_months_and_every_emergency() {
        let one = series((0..3 * 1440).map(|m| (m * 60, 0.0)).collect());
        let rules = vec![("fixed 12 h".to_owned(), WaterRules::fixed_only(12))];
        let single = evaluate_rule_sets(&one, 5, rules.clone());
        let pooled = evaluate_population("two", &[one.clone(), one], 5, &rules);
        let (a, p) = (&single.results[0], &pooled.results[0]);
        assert!(a.raised > 0);
        assert_eq!(p.raised, 2 * a.raised);
        assert_eq!(p.delays_hours.len(), 2 * a.delays_hours.len());
        assert!((p.false_per_month - a.false_per_month).abs() < 1e-9);
        assert_eq!(pooled.emergencies, 2 * single.emergencies);
    }
}
