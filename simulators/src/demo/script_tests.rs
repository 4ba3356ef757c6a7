//! The demo script on a virtual clock.

use super::*;

fn script() -> DemoScript {
    let district = crate::demo::district().expect("the demo district parses");
    let start = WallTime {
        unix_s: 1_772_416_800,
        utc_offset_min: 480,
    };
    DemoScript::new(district, start).expect("the script plans")
}

/// Every step of the first `cycles` cycles, polled on a virtual clock second by second.
fn run(cycles: u32) -> Vec<Step> {
    let mut s = script();
    let end = s.cycle_len() * cycles;
    let mut steps = Vec::new();
    let mut now = Duration::ZERO;
    while now < end {
        while let Some(step) = s.poll_step(now) {
            assert!(step.at <= now, "a step is never handed out early");
            steps.push(step);
        }
        let next = s.next_deadline();
        assert!(
            next > now,
            "the deadline moves on once everything due is taken"
        );
        now = next;
    }
    steps
}

fn operator_steps(steps: &[Step]) -> Vec<(u64, &'static str, String, OperatorAction)> {
    steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Operator(o) => Some((
                s.at.as_secs(),
                o.alert.kind,
                o.alert.subject.clone(),
                o.action.clone(),
            )),
            StepKind::Board(_) | StepKind::Say(_) => None,
        })
        .collect()
}

#[test]
fn the_call_is_acknowledged_after_the_first_tier_deadline_then_resolved() {
    let steps = run(1);
    let ops = operator_steps(&steps);
    let call: Vec<_> = ops.iter().filter(|o| o.1 == "call").collect();
    assert_eq!(call.len(), 2);
    assert_eq!(call[0].2, "resident:res-01");
    assert_eq!(call[0].3, OperatorAction::Acknowledge);
    // The call is pressed at 20 s: the acknowledgement comes after tier 0's deadline
    // (so the escalation is visible) and before tier 1's.
    assert!(call[0].0 > 20 + TIER_DEADLINES[0].as_secs());
    assert!(call[0].0 < 20 + TIER_DEADLINES[0].as_secs() + TIER_DEADLINES[1].as_secs());
    assert!(matches!(call[1].3, OperatorAction::Resolve { .. }));
    assert!(call[1].0 > call[0].0);
}

#[test]
fn the_button_press_is_published_when_the_call_incident_starts() {
    let steps = run(1);
    let press = steps
        .iter()
        .find(|s| {
            matches!(&s.kind, StepKind::Board(Action::Uplink { device, body: UplinkBody::Button(_) })
                if device.as_str() == "pendant-01")
        })
        .expect("the pendant reports the press");
    assert_eq!(press.at, Duration::from_secs(20));
}

#[test]
fn a_detector_in_alarm_sends_no_routine_normal_report_until_the_smoke_clears() {
    let steps = run(1);
    let smoke_203: Vec<(u64, SignalClass)> = steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Board(Action::Uplink {
                device,
                body: UplinkBody::Fire(r),
            }) if device.as_str() == "care01-smoke-203" => Some((s.at.as_secs(), r.signal)),
            _ => None,
        })
        .collect();
    let alarm = smoke_203
        .iter()
        .position(|r| r.1 == SignalClass::Alarm)
        .expect("the detector reports the alarm");
    let next_normal = smoke_203[alarm + 1..]
        .iter()
        .find(|r| r.1 == SignalClass::Normal)
        .expect("it reports normal once the smoke clears");
    // Alarm at 90 s; the routine report at 120 s is withheld; normal again at 150 s.
    assert_eq!(smoke_203[alarm].0, 90);
    assert_eq!(next_normal.0, 150);
}

#[test]
fn every_alert_the_script_raises_is_resolved_within_the_cycle() {
    let steps = run(1);
    let ops = operator_steps(&steps);
    for (at, kind, subject, action) in &ops {
        if *action == OperatorAction::Acknowledge {
            assert!(
                ops.iter().any(|o| o.1 == *kind
                    && &o.2 == subject
                    && o.0 > *at
                    && matches!(o.3, OperatorAction::Resolve { .. })),
                "{kind} {subject} acknowledged at {at} s is resolved later"
            );
        }
    }
    let resolved: BTreeSet<&str> = ops
        .iter()
        .filter(|o| matches!(o.3, OperatorAction::Resolve { .. }))
        .map(|o| o.1)
        .collect();
    let expected: BTreeSet<&str> = [
        "call",
        "fall",
        "fire_alarm",
        "fire_confirmed",
        "electrical_hazard",
        "low_battery",
    ]
    .into();
    assert_eq!(resolved, expected);
}

#[test]
fn the_script_loops_with_the_same_steps_every_cycle_and_meters_keep_counting() {
    let steps = run(3);
    let per_cycle = |c: u32| {
        operator_steps(
            &steps
                .iter()
                .filter(|s| s.cycle == c)
                .cloned()
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .map(|(at, k, subj, a)| (at % 300, k, subj, a))
        .collect::<Vec<_>>()
    };
    assert_eq!(per_cycle(0), per_cycle(1));
    assert_eq!(per_cycle(1), per_cycle(2));
    assert!(!per_cycle(0).is_empty());
    let totals: Vec<u64> = steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Board(Action::Uplink {
                device,
                body: UplinkBody::Meter(m),
            }) if device.as_str() == "meter-01" => Some(m.total_ml),
            _ => None,
        })
        .collect();
    assert!(totals.len() >= 14, "a meter report a minute: {totals:?}");
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "the meter's register never goes back: {totals:?}"
    );
}

#[test]
fn no_board_reports_a_low_battery_except_the_scripted_one() {
    let steps = run(1);
    for s in &steps {
        if let StepKind::Board(Action::Uplink {
            device,
            body: UplinkBody::Heartbeat(h),
        }) = &s.kind
        {
            let low = match device.as_str() {
                d if d.starts_with("pendant") => h.battery_mv < 3_500,
                d if d.starts_with("meter") => h.battery_mv < 3_300,
                _ => h.battery_mv < 2_700,
            };
            assert_eq!(
                low,
                device.as_str() == "pendant-03" && h.battery_mv == LOW_BATTERY_MV,
                "{device} at {:?}: {} mV",
                s.at,
                h.battery_mv
            );
        }
    }
}

#[test]
fn escalation_is_narrated_only_when_the_demo_policy_applies() {
    let says = |on: bool| {
        let mut s = script();
        s.narrate_escalation(on);
        let mut lines = Vec::new();
        let mut now = Duration::ZERO;
        while now < s.cycle_len() {
            while let Some(step) = s.poll_step(now) {
                if let StepKind::Say(text) = step.kind {
                    lines.push(text);
                }
            }
            now = s.next_deadline();
        }
        lines.iter().filter(|l| l.contains("tier 1")).count()
    };
    assert_eq!(says(true), 1);
    assert_eq!(says(false), 0);
}
