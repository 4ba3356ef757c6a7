//! The demo script on a virtual clock; at the end, one cycle acted out on the district's
//! boards, whose firmware makes the frames.

use std::collections::{BTreeMap, BTreeSet};

use vigil_protocol::{ButtonKind, SignalClass, UplinkBody, UplinkFrame};

use super::*;

const START: WallTime = WallTime {
    unix_s: 1_772_416_800,
    utc_offset_min: 480,
};

fn script() -> DemoScript {
    let district = crate::demo::district().expect("the demo district parses");
    DemoScript::new(district, START).expect("the script plans")
}

/// Every step of the first `cycles` cycles, polled on a virtual clock from deadline to
/// deadline.
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

/// `(seconds, input)` of what `device`'s hardware is told to sense.
fn inputs_of(steps: &[Step], device: &str) -> Vec<(u64, BoardInput)> {
    steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Board(RackCommand::Sense(d, input)) if d.as_str() == device => {
                Some((s.at.as_secs(), input.clone()))
            }
            StepKind::Board(_) | StepKind::Operator(_) | StepKind::Say(_) => None,
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
fn the_call_button_is_pressed_on_the_pendant_when_the_call_incident_starts() {
    let steps = run(1);
    assert_eq!(
        inputs_of(&steps, "pendant-01"),
        [(20, BoardInput::Press(Press::Short))]
    );
}

#[test]
fn smoke_reaches_both_detectors_of_the_zone_then_clears_from_both() {
    let steps = run(1);
    let smoke = BoardInput::Sense(SensorCondition::Smoke);
    let clear = BoardInput::Sense(SensorCondition::Clear);
    assert_eq!(
        inputs_of(&steps, "care01-smoke-203"),
        [(90, smoke.clone()), (150, clear.clone())]
    );
    assert_eq!(
        inputs_of(&steps, "care01-smoke-2e-corr"),
        [(110, smoke), (150, clear)],
        "the second detector of zone f2-east"
    );
    assert!(inputs_of(&steps, "care01-smoke-205").is_empty(), "f2-west");
}

#[test]
fn the_fallen_resident_lies_on_the_floor_until_the_fall_is_resolved() {
    let steps = run(1);
    let [(
        fall_at,
        BoardInput::Fall {
            lies_for: Some(lies),
        },
    )] = inputs_of(&steps, "pendant-02")[..]
    else {
        panic!("one fall on Mr. Li's pendant");
    };
    assert_eq!(fall_at, 170);
    let resolved = operator_steps(&steps)
        .into_iter()
        .find(|o| o.1 == "fall" && matches!(o.3, OperatorAction::Resolve { .. }))
        .expect("the fall is resolved");
    assert!(fall_at + lies.as_secs() > resolved.0);
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
fn the_script_loops_with_the_same_steps_every_cycle_and_meters_get_every_minute_s_water() {
    let steps = run(3);
    let per_cycle = |c: u32| {
        steps
            .iter()
            .filter(|s| s.cycle == c)
            .filter(|s| {
                !matches!(
                    &s.kind,
                    StepKind::Board(RackCommand::Sense(_, BoardInput::Water { .. }))
                )
            })
            .map(|s| (s.at.as_secs() % 300, s.kind.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(per_cycle(0), per_cycle(1));
    assert_eq!(per_cycle(1), per_cycle(2));
    assert!(!per_cycle(0).is_empty());
    let water: Vec<(u64, usize, usize)> = inputs_of(&steps, "meter-01")
        .into_iter()
        .filter_map(|(at, input)| match input {
            BoardInput::Water {
                from_minute,
                ml_per_minute,
            } => Some((at, from_minute, ml_per_minute.len())),
            _ => None,
        })
        .collect();
    assert_eq!(
        water,
        [(0, 0, 5), (300, 5, 5), (600, 10, 5)],
        "each cycle's minutes, given at its start"
    );
}

#[test]
fn a_pendant_cell_runs_down_then_a_fresh_one_is_fitted_with_the_power_off() {
    let steps = run(1);
    let pendant: Vec<(u64, RackCommand)> = steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Board(c) => Some((s.at.as_secs(), c.clone())),
            StepKind::Operator(_) | StepKind::Say(_) => None,
        })
        .filter(|(_, c)| match c {
            RackCommand::Sense(d, _) | RackCommand::PowerOff(d) | RackCommand::PowerOn(d) => {
                d.as_str() == "pendant-03"
            }
            _ => false,
        })
        .collect();
    let id = DeviceId::new("pendant-03").unwrap();
    assert_eq!(
        pendant,
        [
            (
                80,
                RackCommand::Sense(id.clone(), BoardInput::Battery(LOW_BATTERY_MV))
            ),
            (280, RackCommand::PowerOff(id.clone())),
            (
                280,
                RackCommand::Sense(id.clone(), BoardInput::Battery(FRESH_BATTERY_MV))
            ),
            (280, RackCommand::PowerOn(id)),
        ]
    );
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

/// The frames the boards' firmware made over `cycles` cycles of the script, acted out on the
/// district's boards on a virtual clock (no network: each board's uplink spool is read as
/// it fills).
fn act_out(cycles: u32) -> BTreeMap<String, Vec<(u64, UplinkFrame)>> {
    let mut script = script();
    let district = script.district().clone();
    let mut boards: BTreeMap<String, crate::board::SimBoard> =
        crate::demo::boards(&district, START, "secret", 41)
            .into_iter()
            .map(|b| (b.id().to_string(), b))
            .collect();
    for b in boards.values_mut() {
        b.power_on(0, 0).expect("boots");
    }
    let mut frames: BTreeMap<String, Vec<(u64, UplinkFrame)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut collect = |boards: &mut BTreeMap<String, crate::board::SimBoard>, t: u64| {
        for (id, b) in boards.iter_mut() {
            b.advance(t, 0, true).expect("runs");
            let Some(client) = b.client_mut() else {
                continue;
            };
            for e in client.spool().entries() {
                let f = UplinkFrame::decode(&e.bytes).expect("the firmware's frames decode");
                if seen.insert((id.clone(), f.boot_id, f.seq)) {
                    frames.entry(id.clone()).or_default().push((t, f));
                }
            }
        }
    };
    let end = script.cycle_len() * cycles;
    let mut now = Duration::ZERO;
    while now < end {
        // Every second, so that frames are read before a power cut loses them.
        let next = script.next_deadline().min(now + Duration::from_secs(1));
        collect(&mut boards, next.as_millis() as u64);
        now = next;
        while let Some(step) = script.poll_step(now) {
            let t = step.at.as_millis() as u64;
            match step.kind {
                StepKind::Board(RackCommand::Sense(d, input)) => boards
                    .get_mut(d.as_str())
                    .expect("a district board")
                    .sense(input, t)
                    .expect("the board's hardware senses it"),
                StepKind::Board(RackCommand::PowerOff(d)) => {
                    boards.get_mut(d.as_str()).expect("board").power_off();
                }
                StepKind::Board(RackCommand::PowerOn(d)) => boards
                    .get_mut(d.as_str())
                    .expect("board")
                    .power_on(t, 0)
                    .expect("boots"),
                StepKind::Board(other) => panic!("the demo does not {other:?}"),
                StepKind::Operator(_) | StepKind::Say(_) => {}
            }
        }
    }
    frames
}

#[test]
fn acted_out_on_the_boards_the_cycle_makes_the_frames_of_every_scripted_alert() {
    let frames = act_out(1);
    let of = |device: &str| frames.get(device).cloned().unwrap_or_default();
    let secs = |ms: u64| ms / 1000;

    let press = of("pendant-01")
        .into_iter()
        .find(|(_, f)| matches!(&f.body, UplinkBody::Button(b) if b.kind == ButtonKind::Press))
        .expect("the call button's press");
    assert!((20..22).contains(&secs(press.0)), "pressed at 20 s");

    let fall = of("pendant-02")
        .into_iter()
        .find(|(_, f)| matches!(&f.body, UplinkBody::Fall(e) if !e.cancelled))
        .expect("the fall, detected by the firmware through the accelerometer");
    assert!(
        (200..=215).contains(&secs(fall.0)),
        "reported after the cancel window: {}",
        fall.0
    );

    let alarm_at = |device: &str| {
        of(device)
            .into_iter()
            .find(|(_, f)| matches!(&f.body, UplinkBody::Fire(r) if r.signal == SignalClass::Alarm))
            .map(|(t, _)| secs(t))
    };
    assert!(matches!(alarm_at("care01-smoke-203"), Some(90..=95)));
    assert!(matches!(alarm_at("care01-smoke-2e-corr"), Some(110..=115)));
    assert_eq!(alarm_at("care01-smoke-205"), None);
    assert!(matches!(alarm_at("care01-rcm-1"), Some(240..=245)));
    let normal_again = of("care01-smoke-203").into_iter().any(|(t, f)| {
        secs(t) >= 150
            && matches!(&f.body, UplinkBody::Fire(r) if r.signal == SignalClass::Normal && !r.self_test)
    });
    assert!(
        normal_again,
        "the detector reports normal once the smoke clears"
    );

    let low = of("pendant-03")
        .into_iter()
        .filter(
            |(_, f)| matches!(&f.body, UplinkBody::Heartbeat(h) if h.battery_mv == LOW_BATTERY_MV),
        )
        .map(|(t, _)| secs(t))
        .next();
    assert!(
        matches!(low, Some(80..=141)),
        "a heartbeat within a minute of the cell running down: {low:?}"
    );
    for (device, list) in &frames {
        for (t, f) in list {
            if let UplinkBody::Heartbeat(h) = &f.body {
                let threshold = if device.starts_with("pendant") {
                    3_500
                } else {
                    3_300
                };
                let scripted = device == "pendant-03" && (80..280).contains(&secs(*t));
                assert_eq!(
                    h.battery_mv < threshold,
                    scripted,
                    "{device} at {t} ms: {} mV",
                    h.battery_mv
                );
            }
            assert!(f.boot_id > 41, "boot ids count on from the last one");
        }
    }
    let meter_reports = of("meter-01")
        .iter()
        .filter(|(_, f)| matches!(f.body, UplinkBody::Meter(_)))
        .count();
    assert!(
        meter_reports >= 4,
        "a meter report a minute: {meter_reports}"
    );
}

#[test]
fn the_fresh_cell_is_heartbeated_before_the_next_cycle_runs_it_down_again() {
    // Else the server, told of no fresh cell, would raise no new low battery.
    let frames = act_out(2);
    let beats: Vec<(u64, u16)> = frames["pendant-03"]
        .iter()
        .filter_map(|(t, f)| match &f.body {
            UplinkBody::Heartbeat(h) => Some((t / 1000, h.battery_mv)),
            _ => None,
        })
        .collect();
    let fresh_after_refit = beats
        .iter()
        .any(|&(t, mv)| (280..380).contains(&t) && mv == FRESH_BATTERY_MV);
    let low_again = beats
        .iter()
        .any(|&(t, mv)| (380..=441).contains(&t) && mv == LOW_BATTERY_MV);
    assert!(fresh_after_refit && low_again, "{beats:?}");
}
