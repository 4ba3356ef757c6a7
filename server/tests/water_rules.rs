//! Table-driven tests of every water rule on a virtual clock.

mod water_support;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::{America, Europe, Tz};
use vigil_server::alerts::{AlertKind, Severity};
use vigil_server::detection::water::{WaterAction, WaterDetector, WaterInputError, WaterRules};
use water_support::{local, Household};

const ROME: Tz = Europe::Rome;

#[test]
fn no_use_fires_exactly_when_the_window_holds_less_than_the_threshold() {
    // (litres used at 08:00, expected raise)
    let cases = [
        // 10 L is not "less than 10 L": the window must first slide past the use.
        (10.0, local(ROME, 2024, 5, 6, 20, 1)),
        (25.0, local(ROME, 2024, 5, 6, 20, 1)),
        // Less than the threshold: the window only needs to be full of data (data from 07:00).
        (9.99, local(ROME, 2024, 5, 6, 19, 0)),
    ];
    for (litres, expected) in cases {
        let mut home = Household::new(
            WaterRules::fixed_only(12),
            ROME,
            local(ROME, 2024, 5, 6, 7, 0),
        );
        home.quiet_until(local(ROME, 2024, 5, 6, 8, 0));
        home.minute(litres);
        home.quiet_until(expected - Duration::minutes(1));
        assert!(
            home.raised(AlertKind::WaterNoUse).is_empty(),
            "{litres} L: raised early"
        );
        home.minute(0.0);
        assert_eq!(
            home.raised(AlertKind::WaterNoUse),
            vec![expected],
            "{litres} L"
        );
    }
}

#[test]
fn no_use_window_runs_across_midnight_and_the_spring_forward_hour() {
    // Europe/Rome skips 02:00–03:00 on 2024-03-31: 12 h of real time end at 09:01 local.
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 3, 30, 20, 0),
    );
    home.minute(15.0);
    home.quiet_until(local(ROME, 2024, 3, 31, 12, 0));
    assert_eq!(
        home.raised(AlertKind::WaterNoUse),
        vec![local(ROME, 2024, 3, 31, 9, 1)]
    );
}

#[test]
fn a_use_clears_the_no_use_alert_and_the_window_rearms_from_it() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 6, 21, 0));
    home.minute(1.0); // a small use: alive, though far below 10 L
    home.quiet_until(local(ROME, 2024, 5, 7, 10, 0));
    assert_eq!(
        home.raised(AlertKind::WaterNoUse),
        vec![
            local(ROME, 2024, 5, 6, 20, 1),
            local(ROME, 2024, 5, 7, 9, 0)
        ]
    );
    assert_eq!(
        home.cleared(AlertKind::WaterNoUse),
        vec![local(ROME, 2024, 5, 6, 21, 1)]
    );
}

#[test]
fn severe_no_use_is_only_a_backstop_when_another_no_use_alert_is_open() {
    let mut rules = WaterRules::fixed_only(12);
    rules.no_use_severe.enabled = true;
    let cases = [(true, 0usize), (false, 1usize)];
    for (only_as_backstop, expected_severe) in cases {
        rules.no_use_severe.only_as_backstop = only_as_backstop;
        let mut home = Household::new(rules.clone(), ROME, local(ROME, 2024, 5, 6, 8, 0));
        home.minute(20.0);
        home.quiet_until(local(ROME, 2024, 5, 7, 9, 0));
        assert_eq!(home.raised(AlertKind::WaterNoUse).len(), 1);
        assert_eq!(
            home.raised(AlertKind::WaterNoUseSevere).len(),
            expected_severe,
            "only_as_backstop = {only_as_backstop}"
        );
    }
}

#[test]
fn a_data_gap_is_not_silence_and_the_window_restarts_after_it() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 6, 12, 0));
    // Three hours without any data, then data again.
    home.no_data_until(local(ROME, 2024, 5, 6, 15, 0));
    home.quiet_until(local(ROME, 2024, 5, 7, 4, 0));
    assert_eq!(
        home.raised(AlertKind::WaterNoUse),
        vec![local(ROME, 2024, 5, 7, 3, 0)],
        "the window may not include the gap"
    );
}

#[test]
fn a_short_hole_is_bridged_and_a_deadline_inside_it_fires_on_timeout() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 6, 19, 50));
    let deadline = local(ROME, 2024, 5, 6, 20, 1);
    assert_eq!(home.detector.next_deadline(), Some(deadline));
    home.timeout(deadline);
    assert_eq!(home.raised(AlertKind::WaterNoUse), vec![deadline]);
}

#[test]
fn without_data_no_deadline_runs_ahead_of_the_bridge() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 6, 10, 0));
    home.timeout(local(ROME, 2024, 5, 7, 10, 0));
    assert!(home.raised(AlertKind::WaterNoUse).is_empty());
    assert_eq!(home.detector.next_deadline(), None);
}

#[test]
fn away_suppresses_no_use_records_it_and_restarts_the_window() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    let back = local(ROME, 2024, 5, 7, 12, 0);
    home.detector.set_away_until(Some(back));
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 8, 1, 0));
    let suppressed: Vec<_> = home
        .actions
        .iter()
        .filter_map(|a| match a {
            WaterAction::Suppressed {
                kind,
                at,
                away_until,
            } => Some((*kind, *at, *away_until)),
            _ => None,
        })
        .collect();
    assert_eq!(
        suppressed,
        vec![(AlertKind::WaterNoUse, local(ROME, 2024, 5, 6, 20, 1), back)]
    );
    let raises: Vec<_> = home
        .actions
        .iter()
        .filter_map(|a| match a {
            WaterAction::Raise {
                kind,
                at,
                suppressed_while_away_until,
                ..
            } => Some((*kind, *at, *suppressed_while_away_until)),
            _ => None,
        })
        .collect();
    assert_eq!(
        raises,
        vec![(
            AlertKind::WaterNoUse,
            back + Duration::hours(12),
            Some(back)
        )]
    );
}

#[test]
fn a_restart_in_the_middle_of_a_window_still_fires_on_time() {
    let start = local(ROME, 2024, 5, 6, 8, 0);
    let mut readings = vec![(start, 20.0)];
    readings.extend((1..300).map(|k| (start + Duration::minutes(k), 0.0)));
    let restart = start + Duration::minutes(300);
    let mut detector = WaterDetector::rebuild(
        Arc::new(WaterRules::fixed_only(12)),
        ROME,
        None,
        readings,
        restart,
    );
    assert_eq!(detector.poll_action(), None);
    let mut raised = Vec::new();
    let mut t = restart;
    while t < local(ROME, 2024, 5, 6, 21, 0) {
        detector
            .handle_reading(t, 0.0, t + Duration::minutes(1))
            .expect("valid");
        while let Some(action) = detector.poll_action() {
            raised.push(action);
        }
        t += Duration::minutes(1);
    }
    assert_eq!(
        raised,
        vec![WaterAction::Raise {
            kind: AlertKind::WaterNoUse,
            severity: Severity::Major,
            at: local(ROME, 2024, 5, 6, 20, 1),
            suppressed_while_away_until: None,
        }]
    );
}

#[test]
fn duplicate_late_and_invalid_readings_are_rejected_counted_and_change_nothing() {
    let mut home = Household::new(
        WaterRules::fixed_only(12),
        ROME,
        local(ROME, 2024, 5, 6, 8, 0),
    );
    home.minute(20.0);
    home.quiet_until(local(ROME, 2024, 5, 6, 9, 0));
    let d = &mut home.detector;
    let now = local(ROME, 2024, 5, 6, 9, 0);
    assert!(matches!(
        d.handle_reading(now - Duration::minutes(1), 50.0, now),
        Err(WaterInputError::DuplicateReading { .. })
    ));
    assert!(matches!(
        d.handle_reading(now - Duration::minutes(30), 50.0, now),
        Err(WaterInputError::LateReading { .. })
    ));
    for bad in [-1.0, f64::NAN, f64::INFINITY, 5000.0] {
        assert!(matches!(
            d.handle_reading(now, bad, now),
            Err(WaterInputError::InvalidVolume { .. })
        ));
    }
    let stats = d.stats();
    assert_eq!((stats.duplicate, stats.late, stats.invalid), (1, 1, 4));
    home.quiet_until(local(ROME, 2024, 5, 6, 20, 5));
    assert_eq!(
        home.raised(AlertKind::WaterNoUse),
        vec![local(ROME, 2024, 5, 6, 20, 1)]
    );
}

#[test]
fn continuous_flow_fires_at_exactly_two_hours_and_clears_when_the_flow_stops() {
    // (minutes of flow, raised?)
    for (minutes, raised) in [(119, false), (120, true), (180, true)] {
        let start = local(ROME, 2024, 5, 6, 10, 0);
        let mut home = Household::new(WaterRules::default(), ROME, start);
        for _ in 0..minutes {
            home.minute(0.2);
        }
        home.minute(0.0);
        let expected = if raised {
            vec![start + Duration::minutes(120)]
        } else {
            vec![]
        };
        assert_eq!(
            home.raised(AlertKind::WaterContinuousFlow),
            expected,
            "{minutes} min"
        );
        let cleared = if raised {
            vec![start + Duration::minutes(minutes)]
        } else {
            vec![]
        };
        assert_eq!(
            home.cleared(AlertKind::WaterContinuousFlow),
            cleared,
            "{minutes} min"
        );
    }
}

#[test]
fn a_missing_minute_breaks_a_continuous_flow_run() {
    let start = local(ROME, 2024, 5, 6, 10, 0);
    let mut home = Household::new(WaterRules::default(), ROME, start);
    for _ in 0..60 {
        home.minute(0.2);
    }
    home.no_data_until(start + Duration::minutes(61));
    for _ in 0..100 {
        home.minute(0.2);
    }
    assert!(home.raised(AlertKind::WaterContinuousFlow).is_empty());
}

#[test]
fn excessive_use_needs_more_than_two_cubic_metres_in_a_local_day() {
    for (litres_per_minute, raised) in [(20.0, false), (20.01, true)] {
        // 100 minutes from 22:00 local: 2000 L (or just over) before local midnight.
        let start = local(America::Denver, 2024, 7, 1, 22, 0);
        let mut home = Household::new(WaterRules::default(), America::Denver, start);
        for _ in 0..100 {
            home.minute(litres_per_minute);
        }
        home.quiet_until(local(America::Denver, 2024, 7, 2, 0, 5));
        let expected = if raised {
            vec![start + Duration::minutes(100)]
        } else {
            vec![]
        };
        assert_eq!(home.raised(AlertKind::WaterExcessiveUse), expected);
        let cleared = if raised {
            vec![local(America::Denver, 2024, 7, 2, 0, 0)]
        } else {
            vec![]
        };
        assert_eq!(home.cleared(AlertKind::WaterExcessiveUse), cleared);
    }
}

#[test]
fn the_leak_signature_needs_flow_in_every_half_hour_of_a_day() {
    // (the one half-hour without flow, counted from the start; None = flow in all of them)
    for (dry_half_hour, raised) in [(None, true), (Some(47), false), (Some(0), false)] {
        let start = local(ROME, 2024, 5, 6, 0, 0);
        let mut home = Household::new(WaterRules::default(), ROME, start);
        for half_hour in 0..49 {
            for minute in 0..30 {
                let drip = minute == 7 && dry_half_hour != Some(half_hour);
                home.minute(if drip { 0.05 } else { 0.0 });
            }
        }
        let expected = if raised {
            vec![start + Duration::hours(24)]
        } else {
            vec![]
        };
        assert_eq!(
            home.raised(AlertKind::WaterLeak),
            expected,
            "dry {dry_half_hour:?}"
        );
    }
}

fn routine_days(home: &mut Household, days: u32) {
    for _ in 0..days {
        home.routine_day(7, 22);
    }
}

#[test]
fn unusual_silence_stays_quiet_until_it_has_enough_history() {
    // `min_history_days` is 14, but with 14 comparable days and none dry the smoothed share is
    // 1/16 = 0.0625, not below 0.06: the rule first speaks with 15 days (1/17 ≈ 0.059).
    for (days_of_history, raised) in [(10, false), (14, false), (15, true), (20, true)] {
        let mut home = Household::new(WaterRules::default(), ROME, local(ROME, 2024, 5, 1, 0, 0));
        routine_days(&mut home, days_of_history);
        let day = home.clock;
        home.quiet_until(day + Duration::hours(7));
        home.minute(3.0); // 07:00: up as usual
        home.quiet_until(day + Duration::hours(15));
        let got = home.raised(AlertKind::WaterUnusualSilence);
        if raised {
            // The routine never has a 2-hour dry stretch by day: noticed once 2 h have passed.
            assert_eq!(got, vec![day + Duration::minutes(7 * 60 + 15 + 120)]);
        } else {
            assert!(got.is_empty(), "{days_of_history} days: {got:?}");
        }
    }
}

#[test]
fn a_silence_that_is_usual_at_that_time_of_day_is_not_an_alert() {
    // The routine ends at 22:00: the night is dry every day, so a night is never unusual.
    let mut home = Household::new(WaterRules::default(), ROME, local(ROME, 2024, 5, 1, 0, 0));
    routine_days(&mut home, 25);
    assert!(home.raised(AlertKind::WaterUnusualSilence).is_empty());
    assert!(home.raised(AlertKind::WaterMorningCheck).is_empty());
    assert!(home.raised(AlertKind::WaterNoUseSevere).is_empty());
}

#[test]
fn morning_check_fires_at_the_usual_first_use_plus_two_hours_in_local_time_across_dst() {
    // (zone, the day the resident does not get up, its local midnight)
    let cases = [
        (ROME, local(ROME, 2024, 3, 31, 0, 0)),
        (America::Denver, local(America::Denver, 2024, 11, 3, 0, 0)),
    ];
    for (tz, morning) in cases {
        let mut rules = WaterRules::default();
        rules.unusual_silence.enabled = false;
        let mut home = Household::new(rules, tz, morning - Duration::days(20));
        while home.clock < morning - Duration::hours(2) {
            home.routine_day(7, 22);
        }
        home.quiet_until(morning + Duration::hours(14));
        let date = morning.with_timezone(&tz).date_naive();
        let expected = local(tz, date.year(), date.month(), date.day(), 9, 15);
        assert_eq!(
            home.raised(AlertKind::WaterMorningCheck),
            vec![expected],
            "{tz}"
        );
    }
}

#[test]
fn the_first_use_after_a_morning_alert_clears_it() {
    let mut rules = WaterRules::default();
    rules.unusual_silence.enabled = false;
    let mut home = Household::new(rules, ROME, local(ROME, 2024, 5, 1, 0, 0));
    routine_days(&mut home, 20);
    home.quiet_until(local(ROME, 2024, 5, 21, 10, 0));
    home.minute(2.0);
    assert_eq!(
        home.raised(AlertKind::WaterMorningCheck),
        vec![local(ROME, 2024, 5, 21, 9, 15)]
    );
    assert_eq!(
        home.cleared(AlertKind::WaterMorningCheck),
        vec![local(ROME, 2024, 5, 21, 10, 1)]
    );
}

#[test]
fn an_absence_is_not_learned_as_rhythm() {
    // A three-day trip, then the routine again: a daytime silence is still noticed.
    let mut home = Household::new(WaterRules::default(), ROME, local(ROME, 2024, 5, 1, 0, 0));
    routine_days(&mut home, 16);
    home.quiet_until(home.clock + Duration::days(3));
    routine_days(&mut home, 1);
    let day = home.clock;
    home.quiet_until(day + Duration::hours(7));
    home.minute(3.0);
    home.quiet_until(day + Duration::hours(15));
    let after_trip: Vec<_> = home
        .raised(AlertKind::WaterUnusualSilence)
        .into_iter()
        .filter(|t| *t >= day)
        .collect();
    assert_eq!(after_trip, vec![day + Duration::minutes(7 * 60 + 15 + 120)]);
}

#[test]
fn detector_state_fits_in_one_kibibyte_per_household() {
    let size = std::mem::size_of::<WaterDetector>();
    assert!(size <= 1024, "WaterDetector is {size} bytes");
}

#[test]
fn a_rebuilt_detector_continues_exactly_like_one_that_never_stopped() {
    use vigil_server::detection::water::synthetic;
    let mut series = synthetic::resident_at_home(30, 7, ROME).minutes;
    // A silent emergency from day 25, 11:00 on: the adaptive rules (28 days of history) speak.
    let emergency = local(ROME, 2024, 1, 26, 11, 0).timestamp();
    for (t, litres) in series.iter_mut() {
        if *t >= emergency {
            *litres = 0.0;
        }
    }
    let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).expect("in range");
    let rules = Arc::new(WaterRules::default());
    for restart in [
        local(ROME, 2024, 1, 26, 9, 37),
        local(ROME, 2024, 1, 26, 12, 0),
    ] {
        let split = series
            .iter()
            .position(|(t, _)| *t >= restart.timestamp())
            .expect("restart inside the series");
        let run = |detector: &mut WaterDetector, minutes: &[(i64, f64)]| {
            let mut actions = Vec::new();
            for &(t, litres) in minutes {
                detector
                    .handle_reading(at(t), litres, at(t + 60))
                    .expect("valid");
                while let Some(action) = detector.poll_action() {
                    actions.push(action);
                }
            }
            actions
        };
        let mut never_stopped = WaterDetector::new(Arc::clone(&rules), ROME);
        let _ = run(&mut never_stopped, &series[..split]);
        let expected = run(&mut never_stopped, &series[split..]);
        let mut rebuilt = WaterDetector::rebuild(
            Arc::clone(&rules),
            ROME,
            None,
            series[..split].iter().map(|&(t, l)| (at(t), l)),
            restart,
        );
        let got = run(&mut rebuilt, &series[split..]);
        assert!(
            expected.iter().any(|a| matches!(
                a,
                WaterAction::Raise {
                    kind: AlertKind::WaterUnusualSilence,
                    ..
                }
            )),
            "the emergency is noticed: {expected:?}"
        );
        assert_eq!(got, expected, "restart at {restart}");
        assert_eq!(rebuilt.history(), never_stopped.history());
    }
}

/// Lives from the clock until `until`: 3 L at every half hour of the local minutes of the day for
/// which `active` holds, nothing otherwise.
fn live_until(home: &mut Household, until: DateTime<Utc>, active: impl Fn(u32) -> bool) {
    while home.clock < until {
        let local = home.clock.with_timezone(&home.tz);
        let minute_of_day = local.hour() * 60 + local.minute();
        let litres = if active(minute_of_day) && minute_of_day % 30 == 0 {
            3.0
        } else {
            0.0
        };
        home.minute(litres);
    }
}

fn awake_7_to_22(minute_of_day: u32) -> bool {
    (7 * 60..22 * 60).contains(&minute_of_day)
}

#[test]
fn unusual_silence_fires_exactly_when_the_dry_share_falls_below_the_threshold() {
    // 28 days of history: up 07:00–22:00 with a use every half hour; on the first `dry_days` of
    // them (too early for the rule to speak) the resident was out 11:45–18:00. Today the last use
    // is at 11:30, so the silence starts 11:45.
    // With no dry day the share is 1/30 < 0.06: noticed 2 h later (13:45). With one dry day it is
    // 2/30 ≈ 0.067 until the silence outlasts that outing (18:15); a threshold of exactly 2/30 is
    // not "below"; one just above it is.
    let cases = [
        (0, 0.06, local(ROME, 2024, 5, 29, 13, 45)),
        (1, 0.06, local(ROME, 2024, 5, 29, 18, 15)),
        (1, 2.0 / 30.0, local(ROME, 2024, 5, 29, 18, 15)),
        (1, 2.0 / 30.0 + 1e-9, local(ROME, 2024, 5, 29, 13, 45)),
        (2, 0.10, local(ROME, 2024, 5, 29, 18, 15)),
        (2, 0.10 + 1e-9, local(ROME, 2024, 5, 29, 13, 45)),
    ];
    for (dry_days, max_dry_share, expected) in cases {
        let mut rules = WaterRules::default();
        rules.unusual_silence.max_dry_share = max_dry_share;
        let mut home = Household::new(rules, ROME, local(ROME, 2024, 5, 1, 0, 0));
        for day in 1..=28u32 {
            let out = day <= dry_days;
            live_until(&mut home, local(ROME, 2024, 5, day + 1, 0, 0), |m| {
                awake_7_to_22(m) && !(out && (12 * 60..18 * 60).contains(&m))
            });
        }
        live_until(&mut home, local(ROME, 2024, 5, 29, 11, 45), awake_7_to_22);
        home.quiet_until(local(ROME, 2024, 5, 29, 21, 0));
        assert_eq!(
            home.raised(AlertKind::WaterUnusualSilence),
            vec![expected],
            "{dry_days} dry days, threshold {max_dry_share}"
        );
    }
}

/// A night owl: up from 10:00 until 04:00 the next morning.
fn night_owl(minute_of_day: u32) -> bool {
    !(4 * 60..10 * 60).contains(&minute_of_day)
}

#[test]
fn unusual_silence_is_judged_across_midnight_and_the_dst_changes_in_real_time() {
    // The night owl's last use is at 23:00 (or 00:00), so the silence starts 23:15 (00:15); it
    // is noticed after 2 h of real time: across midnight, and on the DST nights at the local time
    // two real hours later (Europe/Rome: spring forward 2024-03-31 02:00 → 03:00, fall back
    // 2024-10-27 03:00 → 02:00).
    // (history from, last use, expected raise)
    let cases = [
        (
            local(ROME, 2024, 5, 1, 0, 0),
            local(ROME, 2024, 5, 20, 23, 0),
            local(ROME, 2024, 5, 21, 1, 15),
        ),
        (
            local(ROME, 2024, 3, 10, 0, 0),
            local(ROME, 2024, 3, 31, 0, 0),
            local(ROME, 2024, 3, 31, 3, 15),
        ),
        (
            local(ROME, 2024, 10, 6, 0, 0),
            local(ROME, 2024, 10, 27, 0, 0),
            // 00:15 CEST + 2 h = 02:15 CEST, the first of the two 02:15s.
            local(ROME, 2024, 10, 27, 2, 15),
        ),
    ];
    for (from, last_use, expected) in cases {
        let mut home = Household::new(WaterRules::default(), ROME, from);
        live_until(&mut home, last_use + Duration::minutes(1), night_owl);
        home.quiet_until(last_use + Duration::hours(6));
        assert_eq!(
            home.raised(AlertKind::WaterUnusualSilence),
            vec![expected],
            "last use {last_use}"
        );
        assert_eq!(expected - last_use, Duration::minutes(135), "real time");
    }
}

#[test]
fn away_holds_back_unusual_silence_and_its_clock_restarts_when_the_resident_is_back() {
    let mut home = Household::new(WaterRules::default(), ROME, local(ROME, 2024, 5, 1, 0, 0));
    routine_days(&mut home, 20);
    live_until(&mut home, local(ROME, 2024, 5, 21, 7, 1), awake_7_to_22);
    let back = local(ROME, 2024, 5, 21, 12, 0);
    home.detector.set_away_until(Some(back));
    home.quiet_until(local(ROME, 2024, 5, 21, 16, 0));
    let suppressed: Vec<_> = home
        .actions
        .iter()
        .filter_map(|a| match a {
            WaterAction::Suppressed {
                kind,
                at,
                away_until,
            } => Some((*kind, *at, *away_until)),
            _ => None,
        })
        .collect();
    // Without the away period it would have raised at 09:15; it is noted once, not every slot.
    assert_eq!(
        suppressed,
        vec![(
            AlertKind::WaterUnusualSilence,
            local(ROME, 2024, 5, 21, 9, 15),
            back
        )]
    );
    let raises: Vec<_> = home
        .actions
        .iter()
        .filter_map(|a| match a {
            WaterAction::Raise {
                kind,
                at,
                suppressed_while_away_until,
                ..
            } => Some((*kind, *at, *suppressed_while_away_until)),
            _ => None,
        })
        .collect();
    assert_eq!(
        raises,
        vec![(
            AlertKind::WaterUnusualSilence,
            back + Duration::hours(2),
            Some(back)
        )]
    );
}

#[test]
fn late_and_duplicate_readings_in_a_silence_do_not_move_the_unusual_silence_alert() {
    let mut home = Household::new(WaterRules::default(), ROME, local(ROME, 2024, 5, 1, 0, 0));
    routine_days(&mut home, 20);
    live_until(&mut home, local(ROME, 2024, 5, 21, 7, 1), awake_7_to_22);
    home.quiet_until(local(ROME, 2024, 5, 21, 8, 0));
    let last = home.clock - Duration::minutes(1);
    // A repeated minute (with use) and a late one: rejected, the silence goes on.
    for (minute, expected) in [
        (
            last,
            WaterInputError::DuplicateReading { minute: last, last },
        ),
        (
            last - Duration::minutes(30),
            WaterInputError::LateReading {
                minute: last - Duration::minutes(30),
                last,
            },
        ),
    ] {
        assert_eq!(
            home.detector
                .handle_reading(minute, 5.0, home.clock)
                .expect_err("rejected"),
            expected
        );
    }
    home.quiet_until(local(ROME, 2024, 5, 21, 12, 0));
    assert_eq!(
        home.raised(AlertKind::WaterUnusualSilence),
        vec![local(ROME, 2024, 5, 21, 9, 15)]
    );
    let stats = home.detector.stats();
    assert_eq!((stats.duplicate, stats.late), (1, 1));
}
