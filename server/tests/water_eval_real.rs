//! The water rules on the real single-occupant recordings (`shared/data/water/weusedto`): the
//! figures recorded in `docs/detection.md`, measured in the same run for every rule set.

use vigil_server::detection::water::eval::{self, SeriesReport};
use vigil_server::detection::water::{recordings, synthetic};

fn weusedto_report() -> Option<SeriesReport> {
    let dir = recordings::data_dir();
    if !dir.join("water/weusedto").is_dir() {
        eprintln!(
            "SKIPPED: no recordings at {} (set VIGIL_DATA_DIR to the shared data folder)",
            dir.display()
        );
        return None;
    }
    let series = recordings::weusedto(&dir).expect("the WEUSEDTO recordings parse");
    // The default and the two fixed rules (the trade-off rows are for `vigil water-eval`).
    let rule_sets = eval::compared_rule_sets().into_iter().take(3).collect();
    let report = eval::evaluate_rule_sets(&series, 5, rule_sets);
    println!("{}", eval::render(&report));
    Some(report)
}

#[test]
fn adaptive_defaults_trade_false_alerts_and_delay_better_than_the_fixed_rules() {
    let Some(report) = weusedto_report() else {
        return;
    };
    assert!(
        report.days_with_data > 150.0,
        "{} days",
        report.days_with_data
    );
    let find = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .expect("rule set evaluated")
    };
    let vigil = find("vigil default");
    let fixed12 = find("fixed < 10 L in 12 h");
    let fixed24 = find("fixed < 10 L in 24 h");
    let median = |r: &eval::RuleSetResult| r.delay_quantile(0.5).expect("median noticed");

    // Every emergency is noticed within 48 h by every rule set.
    for r in [vigil, fixed12, fixed24] {
        assert_eq!(r.not_noticed(), 0, "{}", r.name);
    }
    // The fixed 12 h rule: the baseline DOMAIN.md measured (about 19 a month, about 9 h).
    assert!(fixed12.false_per_month > 10.0 && median(fixed12) < 11.0);
    // The defaults raise far fewer alerts than the 12 h rule and notice sooner than the 24 h rule.
    assert!(
        vigil.false_per_month < 0.7 * fixed12.false_per_month,
        "{} vs {}",
        vigil.false_per_month,
        fixed12.false_per_month
    );
    assert!(median(vigil) < median(fixed24) - 3.0);
    assert!(vigil.delay_quantile(0.9).expect("p90") <= fixed24.delay_quantile(0.9).expect("p90"));
}

#[test]
#[ignore = "not met: the 24 h backstop alone raises 3.1 a month on this occupant; see docs/detection.md, 'Targets'"]
fn issue_targets_half_an_alert_a_month_and_a_three_hour_median() {
    let Some(report) = weusedto_report() else {
        return;
    };
    let vigil = &report.results[0];
    assert!(vigil.false_per_month <= 0.5, "{}", vigil.false_per_month);
    assert!(vigil.delay_quantile(0.5).expect("median") <= 3.0);
}

#[test]
fn on_a_resident_at_home_the_defaults_notice_within_hours_with_few_alerts() {
    let resident = synthetic::resident_at_home(120, 1, chrono_tz::Europe::Rome);
    let rule_sets = eval::compared_rule_sets().into_iter().take(3).collect();
    let report = eval::evaluate_rule_sets(&resident, 5, rule_sets);
    println!("{}", eval::render(&report));
    let (vigil, fixed12, fixed24) = (&report.results[0], &report.results[1], &report.results[2]);
    let median = |r: &eval::RuleSetResult| r.delay_quantile(0.5).expect("median noticed");
    assert!(median(vigil) <= 5.0, "median {}", median(vigil));
    assert!(median(vigil) < 0.6 * median(fixed12));
    assert!(vigil.false_per_month < 0.4 * fixed12.false_per_month);
    assert!(median(fixed24) > 18.0);
}
