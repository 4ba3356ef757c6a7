//! The expectation checker judges synthetic observation streams.

use std::time::Duration;

use vigil_sim::expect::{ExpectationChecker, ObservedAlert, Verdict};
use vigil_sim::scenario::Scenario;

const SCENARIO: &str = r#"
name = "checker"
duration = "3h"

[[site]]
id = "home-1"
kind = "household"
gateway = "gw-1"

[[resident]]
id = "res-1"
site = "home-1"

[[device]]
id = "pendant-1"
site = "home-1"
kind = "pendant"
resident = "res-1"

[[incident]]
id = "fall"
kind = "fall"
at = "1h"
resident = "res-1"

[[expect]]
alert = "fall"
subject = "resident:res-1"
severity = "critical"
after = "fall"
within = "45s"

[[expect]]
alert = "fall"
subject = "resident:res-1"
after = "fall"
within = "5m"
escalated = true

[[expect_not]]
alert = "water_no_use"
subject = "resident:res-1"
until = "2h"
"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn checker() -> ExpectationChecker {
    ExpectationChecker::new(&Scenario::parse(SCENARIO, "checker.toml").unwrap())
}

fn fall(raised_at: u64, severity: &str, escalations: &[u64]) -> ObservedAlert {
    ObservedAlert {
        kind: "fall".into(),
        subject: "resident:res-1".into(),
        severity: severity.into(),
        raised_at: secs(raised_at),
        escalations: escalations.iter().map(|&s| secs(s)).collect(),
    }
}

fn verdicts(c: &ExpectationChecker, now: u64) -> Vec<Verdict> {
    c.verdicts(secs(now))
        .into_iter()
        .map(|r| r.verdict)
        .collect()
}

#[test]
fn a_timely_escalated_critical_fall_passes_everything_once_the_windows_close() {
    let mut c = checker();
    c.handle_alert(fall(3_632, "critical", &[]));
    assert_eq!(
        verdicts(&c, 3_640),
        vec![Verdict::Pass, Verdict::Open, Verdict::Open]
    );
    // The same alert seen again, now escalated: updated, not duplicated.
    c.handle_alert(fall(3_632, "critical", &[3_700]));
    assert_eq!(
        verdicts(&c, 7_200),
        vec![Verdict::Pass, Verdict::Pass, Verdict::Pass]
    );
    let report = c.finish(secs(10_800));
    assert!(report.passed(), "{report}");
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn an_alert_after_its_deadline_fails_with_the_deadline_named() {
    let mut c = checker();
    c.handle_alert(fall(3_700, "critical", &[3_800]));
    let rows = c.verdicts(secs(3_700));
    assert_eq!(
        rows[0].verdict,
        Verdict::Fail("not raised by 1h 45s".into())
    );
    assert_eq!(rows[1].verdict, Verdict::Pass);
    assert_eq!(c.finish(secs(10_800)).exit_code(), 1);
}

#[test]
fn an_alert_raised_before_the_incident_does_not_count() {
    let mut c = checker();
    c.handle_alert(fall(1_000, "critical", &[1_100]));
    assert!(matches!(verdicts(&c, 4_000)[0], Verdict::Fail(_)));
}

#[test]
fn a_wrong_severity_fails() {
    let mut c = checker();
    c.handle_alert(fall(3_610, "major", &[3_650]));
    assert_eq!(
        verdicts(&c, 3_620)[0],
        Verdict::Fail("raised at 1h 10s with severity major, expected critical".into())
    );
}

#[test]
fn an_alert_nobody_escalated_fails_at_the_escalation_deadline() {
    let mut c = checker();
    c.handle_alert(fall(3_610, "critical", &[]));
    assert_eq!(verdicts(&c, 3_899)[1], Verdict::Open);
    assert!(matches!(&verdicts(&c, 3_900)[1], Verdict::Fail(m) if m.contains("not escalated")));
}

#[test]
fn a_forbidden_alert_in_its_window_fails_and_one_after_it_does_not() {
    let mut c = checker();
    let no_use = |at| ObservedAlert {
        kind: "water_no_use".into(),
        subject: "resident:res-1".into(),
        severity: "major".into(),
        raised_at: secs(at),
        escalations: vec![],
    };
    c.handle_alert(no_use(7_300));
    assert_eq!(
        verdicts(&c, 7_300)[2],
        Verdict::Pass,
        "2 h 1 m is after the window"
    );
    c.handle_alert(no_use(5_000));
    assert!(matches!(&verdicts(&c, 7_300)[2], Verdict::Fail(m) if m.contains("1h 23m 20s")));
}

#[test]
fn a_run_that_ends_early_leaves_nothing_open() {
    let c = checker();
    let report = c.finish(secs(3_000));
    assert!(
        report
            .rows
            .iter()
            .all(|r| matches!(r.verdict, Verdict::Fail(_))),
        "{report}"
    );
    assert!(report.to_string().ends_with("3 expectation(s), 3 failed"));
}

#[test]
fn the_next_deadline_is_the_nearest_undecided_one() {
    let c = checker();
    assert_eq!(c.next_deadline(secs(0)), Some(secs(3_645)));
    assert_eq!(c.next_deadline(secs(3_645)), Some(secs(3_900)));
    assert_eq!(c.next_deadline(secs(7_200)), None);
}

mod examples {
    use super::*;
    use std::path::PathBuf;
    use vigil_sim::timeline::{Cadence, Timeline};

    fn each_example(mut f: impl FnMut(&str, &Scenario, &Timeline)) {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let s = Scenario::from_file(&path).unwrap();
            let t = Timeline::build(&s, s.start.unwrap(), Cadence::default());
            f(&path.display().to_string(), &s, &t);
        }
    }

    /// A system that raises exactly the ground truth, with the severity each expectation
    /// asks for, and escalates after a minute.
    fn oracle(s: &Scenario, t: &Timeline) -> Vec<ObservedAlert> {
        t.ground_truth()
            .iter()
            .flat_map(|g| g.alerts.iter())
            .map(|a| {
                let severity = s
                    .expectations
                    .iter()
                    .find(|e| e.alert == a.kind && e.subject == a.subject)
                    .and_then(|e| e.severity.clone())
                    .unwrap_or_else(|| "major".into());
                ObservedAlert {
                    kind: a.kind.into(),
                    subject: a.subject.clone(),
                    severity,
                    raised_at: a.from + secs(5),
                    escalations: vec![a.from + secs(65)],
                }
            })
            .collect()
    }

    #[test]
    fn a_system_that_raises_exactly_the_ground_truth_passes_every_example() {
        each_example(|file, s, t| {
            let mut c = ExpectationChecker::new(s);
            for a in oracle(s, t) {
                c.handle_alert(a);
            }
            let report = c.finish(s.duration);
            assert!(report.passed(), "{file}:\n{report}");
        });
    }

    #[test]
    fn a_system_that_raises_nothing_fails_every_expected_alert_of_every_example() {
        each_example(|file, s, _| {
            let report = ExpectationChecker::new(s).finish(s.duration);
            let failed = report
                .rows
                .iter()
                .filter(|r| r.verdict != Verdict::Pass)
                .count();
            assert_eq!(failed, s.expectations.len(), "{file}:\n{report}");
        });
    }

    #[test]
    fn a_system_that_alerts_on_everything_all_the_time_fails_every_forbidden_alert() {
        each_example(|file, s, _| {
            let mut c = ExpectationChecker::new(s);
            for f in &s.forbidden {
                c.handle_alert(ObservedAlert {
                    kind: f.alert.clone(),
                    subject: f.subject.clone().unwrap_or_else(|| "site:anywhere".into()),
                    severity: "major".into(),
                    raised_at: f.from,
                    escalations: vec![],
                });
            }
            let report = c.finish(s.duration);
            let failed = report
                .rows
                .iter()
                .filter(|r| r.verdict != Verdict::Pass)
                .count();
            assert!(failed >= s.forbidden.len(), "{file}:\n{report}");
        });
    }
}

#[test]
fn a_run_stopped_early_judges_forbidden_windows_up_to_its_end_and_shows_it() {
    let s = vigil_sim::scenario::Scenario::parse(
        r#"
name = "early"
duration = "4h"
[[site]]
id = "h"
kind = "household"
gateway = "g"
[[resident]]
id = "r"
site = "h"
[[expect_not]]
alert = "call"
subject = "resident:r"
"#,
        "early.toml",
    )
    .unwrap();
    let mut c = vigil_sim::expect::ExpectationChecker::new(&s);
    c.end_at(std::time::Duration::from_secs(600));
    let report = c.finish(std::time::Duration::from_secs(600));
    assert!(report.passed(), "{report}");
    assert!(report.to_string().contains("in 0s..10m"), "{report}");
}
