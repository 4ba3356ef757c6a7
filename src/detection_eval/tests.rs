use std::sync::Arc;

use vigil_server::detection::water::eval;
use vigil_server::detection::water::recordings::MinuteSeries;
use vigil_server::detection::water::WaterRules;

use super::household::{self, START_EPOCH, TIMEZONE};
use super::incident::IncidentClass;
use super::*;

/// The suite's small population: 10 households × 14 days.
fn small() -> PopulationSetup {
    PopulationSetup {
        households: 10,
        days: 14,
        seed: 7,
        warmup_days: 2,
    }
}

fn outcomes_of(rules: WaterRules) -> Vec<household::HouseholdOutcome> {
    let setup = small();
    let rules = Arc::new(rules);
    (0..setup.households)
        .map(|i| {
            let home = household::simulate(
                setup.seed,
                i,
                setup.days,
                setup.warmup_days,
                setup.incidents_per_class(),
            );
            household::run(&home, &rules)
        })
        .collect()
}

fn delays(outcomes: &[household::HouseholdOutcome], class: IncidentClass) -> Vec<Option<u32>> {
    outcomes
        .iter()
        .flat_map(|o| o.incidents.iter())
        .filter(|i| i.class == class)
        .map(|i| i.delay_minutes)
        .collect()
}

#[test]
fn a_seed_reproduces_the_evaluation_whatever_the_thread_count() {
    let sets = compared_rule_sets();
    let one = evaluate(&small(), &sets, 1).expect("valid setup");
    let two = evaluate(&small(), &sets, 2).expect("valid setup");
    assert_eq!(one, two);
    let other = evaluate(&PopulationSetup { seed: 8, ..small() }, &sets, 2).expect("valid setup");
    assert_ne!(one, other, "another seed draws other households");
}

#[test]
fn every_incident_kind_is_injected_in_every_household() {
    let setup = small();
    for i in 0..setup.households {
        let home = household::simulate(setup.seed, i, setup.days, setup.warmup_days, 1);
        for class in IncidentClass::ALL {
            assert!(
                home.incidents.iter().any(|x| x.what.class() == class),
                "household {i}: no {}",
                class.name()
            );
        }
        for x in &home.incidents {
            assert!(
                x.at >= setup.warmup_days as usize * 1440,
                "{x:?} before the warm-up ends"
            );
            assert!(x.at + x.what.horizon_minutes() <= home.litres.len());
        }
    }
}

#[test]
fn the_fixed_12_hour_rule_answers_every_silent_emergency_within_its_window() {
    let outcomes = outcomes_of(WaterRules::fixed_only(12));
    let delays = delays(&outcomes, IncidentClass::SilentEmergency);
    assert!(delays.len() >= 10);
    for d in delays {
        let d = d.expect("answered");
        assert!(d <= 12 * 60, "answered after {d} minutes");
    }
}

#[test]
fn the_fixed_24_hour_rule_answers_every_silent_emergency_within_its_window() {
    let outcomes = outcomes_of(WaterRules::fixed_only(24));
    for d in delays(&outcomes, IncidentClass::SilentEmergency) {
        let d = d.expect("answered");
        assert!(d <= 24 * 60, "answered after {d} minutes");
    }
}

#[test]
fn no_use_rules_stay_silent_while_the_resident_is_marked_away() {
    for set in compared_rule_sets() {
        let outcomes = outcomes_of((*set.rules).clone());
        let away = delays(&outcomes, IncidentClass::Away);
        assert!(away.len() >= 10);
        assert!(
            away.iter().all(Option::is_none),
            "{}: a no-use alert while marked away: {away:?}",
            set.name
        );
    }
}

#[test]
fn a_tap_left_running_a_leak_and_excessive_use_are_answered_by_their_rules() {
    let outcomes = outcomes_of(WaterRules::default());
    for (class, within) in [
        // Flow in every minute for 2 h.
        (IncidentClass::TapLeftRunning, 120),
        // Some flow in every half hour for 24 h; the first half hour may have begun before.
        (IncidentClass::PipeLeak, 24 * 60 + 30),
        // Over 2 m³ in a local day, the day's count restarting at midnight.
        (IncidentClass::ExcessiveUse, 24 * 60),
    ] {
        let delays = delays(&outcomes, class);
        assert!(delays.len() >= 10);
        for d in delays {
            let d = d.unwrap_or_else(|| panic!("{} not answered", class.name()));
            assert!(d <= within, "{} answered after {d} minutes", class.name());
        }
    }
}

#[test]
fn silent_emergencies_are_measured_as_the_real_recording_evaluation_measures_them() {
    let setup = small();
    for rules in [WaterRules::default(), WaterRules::fixed_only(12)] {
        let rules = Arc::new(rules);
        for i in 0..3 {
            let home = household::simulate(setup.seed, i, setup.days, setup.warmup_days, 2);
            let ours = household::run(&home, &rules);
            let series = MinuteSeries {
                household: format!("simulated {i}"),
                timezone: TIMEZONE,
                minutes: home
                    .litres
                    .iter()
                    .enumerate()
                    .map(|(m, l)| (START_EPOCH + m as i64 * 60, *l))
                    .collect(),
            };
            let starts: Vec<usize> = home
                .incidents
                .iter()
                .filter(|x| x.what.class() == IncidentClass::SilentEmergency)
                .map(|x| x.at)
                .collect();
            let theirs = eval::evaluate(&series, "rules", (*rules).clone(), &starts);
            assert_eq!(
                ours.false_alerts.values().sum::<u32>() as usize,
                theirs.raised,
                "household {i}: false alerts"
            );
            let our_delays: Vec<Option<f64>> = ours
                .incidents
                .iter()
                .filter(|x| x.class == IncidentClass::SilentEmergency)
                .map(|x| x.delay_minutes.map(|m| f64::from(m) / 60.0))
                .collect();
            assert_eq!(our_delays, theirs.delays_hours, "household {i}: delays");
        }
    }
}

#[test]
fn the_report_names_the_targets_and_every_rule_set() {
    let evaluation = evaluate(&small(), &compared_rule_sets(), 2).expect("valid setup");
    let text = evaluation.render();
    for set in compared_rule_sets() {
        assert!(text.contains(&set.name), "{text}");
    }
    assert!(text.contains("TARGETS MET") || text.contains("TARGETS NOT MET"));
    let json = evaluation.to_json();
    assert_eq!(json["setup"]["households"], 10);
    assert_eq!(json["rule_sets"].as_array().map(Vec::len), Some(3));
    assert!(json["targets"]["median_met"].is_boolean());
    let silent = &json["rule_sets"][1]["incidents"][0];
    assert_eq!(silent["incident"], "silent_emergency");
    assert_eq!(silent["answered"], silent["injected"]);
}

#[test]
fn a_population_too_short_for_its_incidents_is_refused_with_the_reason() {
    let err = evaluate(
        &PopulationSetup {
            days: 20,
            warmup_days: 28,
            ..small()
        },
        &compared_rule_sets(),
        1,
    )
    .expect_err("too short");
    assert!(err.to_string().contains("--days"), "{err}");
    let err = evaluate(
        &PopulationSetup {
            households: 0,
            ..small()
        },
        &compared_rule_sets(),
        1,
    )
    .expect_err("empty");
    assert_eq!(err, SetupError::NoHouseholds);
}
