//! The simulated boards run the real firmware: frames come out of the firmware's own logic
//! and land in its own uplink spool. No network here: the spool is read back directly.

use std::sync::Arc;

use vigil_protocol::{ButtonKind, SignalClass, UplinkBody, UplinkFrame};

use super::*;
use crate::scenario::Scenario;

const SCENARIO: &str = r#"
name = "boards"
duration = "2h"

[[site]]
id = "home-1"
kind = "household"
gateway = "gw-1"

[[site]]
id = "care-1"
kind = "facility"
gateway = "gw-2"
[[site.floor]]
level = 1
[[site.floor.zone]]
id = "f1"
rooms = ["101", "102"]

[[resident]]
id = "res-1"
site = "home-1"

[[device]]
id = "meter-1"
site = "home-1"
kind = "meter"
resident = "res-1"

[[device]]
id = "pendant-1"
site = "home-1"
kind = "pendant"
resident = "res-1"

[[device]]
id = "smoke-101"
site = "care-1"
kind = "fire"
sensor = "smoke"
room = "101"

[[device]]
id = "dying"
site = "home-1"
kind = "pendant"
resident = "res-1"
battery_mv = 3000

[[incident]]
kind = "battery_dying"
at = "0s"
device = "dying"
duration = "1h"
"#;

fn scenario() -> Arc<Scenario> {
    Arc::new(Scenario::parse(SCENARIO, "boards.toml").expect("a valid scenario"))
}

fn board(id: &str, spec: BoardSpec) -> SimBoard {
    let s = scenario();
    let d = s
        .devices
        .iter()
        .find(|d| d.id.as_str() == id)
        .expect("device in the scenario")
        .clone();
    let mut b = SimBoard::new(d.id, d.site, spec, s, None);
    b.power_on(0, 0).expect("boots");
    b
}

/// Every frame in the board's uplink spool, decoded, oldest seq first.
fn spooled(b: &mut SimBoard) -> Vec<UplinkFrame> {
    let client = b.client_mut().expect("powered");
    let mut frames: Vec<UplinkFrame> = client
        .spool()
        .entries()
        .map(|e| UplinkFrame::decode(&e.bytes).expect("the firmware's frames decode"))
        .collect();
    frames.sort_by_key(|f| f.seq);
    frames
}

fn pendant_spec(falls: Vec<FallAt>, presses: Vec<(u64, Press)>) -> BoardSpec {
    BoardSpec::Pendant {
        body: BodyMotion::new(None, falls, 11),
        presses,
    }
}

#[test]
fn a_meter_counts_the_reed_pulses_of_the_water_series_into_its_report() {
    // 6.5 L in minute 1, 2.7 L in minute 3: pulses are whole litres, the rest carries over.
    let mut water = vec![0u32; 30];
    water[1] = 6_500;
    water[3] = 2_700;
    let mut b = board(
        "meter-1",
        BoardSpec::Meter {
            water: Arc::from(water),
        },
    );
    b.advance(15 * 60_000, 0, true).unwrap();
    let frames = spooled(&mut b);
    assert_eq!(
        frames.len(),
        1,
        "one routine report after 15 min: {frames:?}"
    );
    let UplinkBody::Meter(m) = &frames[0].body else {
        panic!("a meter reading: {:?}", frames[0]);
    };
    assert_eq!(m.total_ml, 9_000, "6.5 + 2.7 L = 9 whole pulses");
    assert_eq!(&m.slots_ml[..5], &[0, 6_000, 0, 3_000, 0]);
    assert_eq!(m.slots_ml.len(), 15);
    assert_eq!(m.battery_mv, 3_000);
    assert_eq!(frames[0].uptime_ms, 15 * 60_000);
}

#[test]
fn a_pendant_reads_a_fall_through_its_accelerometer_and_reports_it_after_the_cancel_window() {
    let mut b = board(
        "pendant-1",
        pendant_spec(
            vec![FallAt {
                at: 10_000,
                gets_up_at: None,
            }],
            vec![],
        ),
    );
    b.advance(30_000, 0, true).unwrap();
    assert!(
        matches!(
            b.pendant_mode(),
            Some(vigil_firmware::pendant::PendantMode::FallCountdown { .. })
        ),
        "detected, waiting for the wearer to cancel: {:?}",
        b.pendant_mode()
    );
    assert!(spooled(&mut b).is_empty(), "nothing sent during the window");
    b.advance(60_000, 0, true).unwrap();
    let frames = spooled(&mut b);
    let falls: Vec<_> = frames
        .iter()
        .filter_map(|f| match &f.body {
            UplinkBody::Fall(e) => Some((f.uptime_ms, *e)),
            _ => None,
        })
        .collect();
    assert_eq!(falls.len(), 1, "{frames:?}");
    let (at, fall) = falls[0];
    assert!(!fall.cancelled);
    assert!(fall.peak_mg > 3_000, "{fall:?}");
    assert!(
        (40_000..50_000).contains(&at),
        "the impact at ~11.6 s, detection, then 30 s of cancel window: {at}"
    );
}

#[test]
fn a_long_press_during_the_cancel_window_reports_the_fall_as_cancelled() {
    let mut b = board(
        "pendant-1",
        pendant_spec(
            vec![FallAt {
                at: 0,
                gets_up_at: Some(24_000),
            }],
            vec![(20_000, Press::Long)],
        ),
    );
    b.advance(90_000, 0, true).unwrap();
    let falls: Vec<bool> = spooled(&mut b)
        .iter()
        .filter_map(|f| match &f.body {
            UplinkBody::Fall(e) => Some(e.cancelled),
            _ => None,
        })
        .collect();
    assert_eq!(falls, [true]);
}

#[test]
fn a_short_press_is_an_urgent_call_made_by_the_firmware_button_logic() {
    let mut b = board(
        "pendant-1",
        pendant_spec(vec![], vec![(5_000, Press::Short)]),
    );
    b.advance(10_000, 0, true).unwrap();
    let frames = spooled(&mut b);
    let calls: Vec<_> = frames
        .iter()
        .filter(|f| matches!(&f.body, UplinkBody::Button(e) if e.kind == ButtonKind::Press))
        .collect();
    assert_eq!(calls.len(), 1, "{frames:?}");
    assert!(calls[0].is_urgent());
    // The press is recognised on release (the trace holds it 264 ms), after the debounce.
    assert!(
        (5_000..5_400).contains(&calls[0].uptime_ms),
        "{}",
        calls[0].uptime_ms
    );
}

#[test]
fn a_smoke_detector_in_a_smoky_room_reports_alarm_within_seconds() {
    let mut b = board(
        "smoke-101",
        BoardSpec::Fire {
            sensor: vigil_protocol::SensorKind::Smoke,
            zone: vigil_protocol::ZoneId::new("f1").unwrap(),
            conditions: vec![(10_000, SensorCondition::Smoke)],
        },
    );
    b.advance(9_000, 0, true).unwrap();
    assert!(spooled(&mut b).is_empty(), "quiet air: nothing to report");
    b.advance(13_000, 0, true).unwrap();
    let frames = spooled(&mut b);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let UplinkBody::Fire(r) = &frames[0].body else {
        panic!("{frames:?}");
    };
    assert_eq!(r.signal, SignalClass::Alarm);
    assert!(frames[0].uptime_ms <= 12_000);
}

#[test]
fn frames_made_before_the_offset_are_lived_through_but_not_sent() {
    let mut b = board(
        "meter-1",
        BoardSpec::Meter {
            water: Arc::from(vec![1_000u32; 120]),
        },
    );
    b.advance(60 * 60_000, 0, false).unwrap();
    assert!(spooled(&mut b).is_empty());
    assert_eq!(b.counters().history_frames_skipped, 4);
    b.advance(75 * 60_000, 0, true).unwrap();
    let frames = spooled(&mut b);
    let UplinkBody::Meter(m) = &frames[0].body else {
        panic!("{frames:?}");
    };
    assert_eq!(m.total_ml, 75_000, "the total counts the skipped hour too");
}

#[test]
fn a_power_cycle_boots_with_a_new_boot_id_and_keeps_the_meter_total() {
    let mut b = board(
        "meter-1",
        BoardSpec::Meter {
            water: Arc::from(vec![2_000u32; 60]),
        },
    );
    b.advance(15 * 60_000, 0, true).unwrap();
    let first = spooled(&mut b);
    assert_eq!(first[0].boot_id, 1);
    b.power_off();
    assert_eq!(b.counters().frames_lost_at_power_off, 1);
    b.power_on(20 * 60_000, 0).unwrap();
    b.advance(35 * 60_000, 0, true).unwrap();
    let second = spooled(&mut b);
    assert_eq!((second[0].boot_id, second[0].seq), (2, 1));
    let UplinkBody::Meter(m) = &second[0].body else {
        panic!("{second:?}");
    };
    // 15 min before, none while off (the reed was not counted), 15 min after.
    assert_eq!(m.total_ml, 60_000);
}

#[test]
fn a_dying_battery_shows_in_the_pendant_heartbeat() {
    let mut b = board("dying", pendant_spec(vec![], vec![]));
    b.advance(3_600_000, 0, true).unwrap();
    let beats: Vec<u16> = spooled(&mut b)
        .iter()
        .filter_map(|f| match &f.body {
            UplinkBody::Heartbeat(h) => Some(h.battery_mv),
            _ => None,
        })
        .collect();
    assert_eq!(beats.len(), 1, "one heartbeat an hour");
    assert!(
        beats[0] < 2_100,
        "drained through 2.5 V half-way: {beats:?}"
    );
}

#[test]
fn a_hydrant_pressure_drop_at_the_default_pressure_is_reported_as_supervisory() {
    let s = Arc::new(
        Scenario::parse(
            r#"
name = "hydrant"
duration = "10m"

[[site]]
id = "care-1"
kind = "facility"
gateway = "gw-1"
[[site.floor]]
level = 1
[[site.floor.zone]]
id = "f1"
rooms = ["plant"]

[[device]]
id = "hydrant-1"
site = "care-1"
kind = "fire"
sensor = "hydrant_pressure"
room = "plant"

[[incident]]
kind = "hydrant_pressure_drop"
at = "1m"
device = "hydrant-1"
"#,
            "hydrant.toml",
        )
        .expect("a valid scenario"),
    );
    let timeline = crate::timeline::Timeline::build(
        &s,
        crate::scenario::WallTime {
            unix_s: 0,
            utc_offset_min: 0,
        },
        crate::timeline::Cadence::default(),
    );
    let mut b = boards_for(&s, &timeline, |_| None)
        .pop()
        .expect("the hydrant's board");
    b.power_on(0, 0).unwrap();
    b.advance(60_000 + 30_000, 0, true).unwrap();
    let signals: Vec<SignalClass> = spooled(&mut b)
        .iter()
        .filter_map(|f| match &f.body {
            UplinkBody::Fire(r) if !r.self_test => Some(r.signal),
            _ => None,
        })
        .collect();
    assert_eq!(
        signals,
        [SignalClass::Supervisory],
        "the default drop crosses the firmware's threshold once it persists 10 s"
    );
    let expected = s.incidents[0].ground_truth().alerts;
    assert_eq!(expected.len(), 1, "and so it must raise its alert");
    assert_eq!(expected[0].kind, "fire_supervisory");
    // The server raises supervisory signals on the zone (docs/alerts.md), not the device.
    assert_eq!(expected[0].subject, "zone:care-1/f1");
}

#[test]
fn inputs_sensed_live_reach_the_firmware_and_only_the_current_condition_is_kept() {
    let mut b = board(
        "smoke-101",
        BoardSpec::Fire {
            sensor: vigil_protocol::SensorKind::Smoke,
            zone: vigil_protocol::ZoneId::new("f1").unwrap(),
            conditions: vec![],
        },
    );
    // A script that loops: smoke, then clear, many times over.
    let mut signals = std::collections::BTreeMap::new();
    // Twelve cycles: the spool (no link here, so nothing is receipted) holds all their frames.
    for cycle in 0..12u64 {
        let base = cycle * 60_000;
        b.advance(base + 10_000, 0, true).unwrap();
        b.sense(BoardInput::Sense(SensorCondition::Smoke), base + 10_000)
            .unwrap();
        b.advance(base + 30_000, 0, true).unwrap();
        b.sense(BoardInput::Sense(SensorCondition::Clear), base + 30_000)
            .unwrap();
        b.advance(base + 60_000, 0, true).unwrap();
        for f in spooled(&mut b) {
            if let UplinkBody::Fire(r) = &f.body {
                if !r.self_test {
                    signals.insert(f.seq, r.signal);
                }
            }
        }
    }
    let BoardSpec::Fire { conditions, .. } = &b.spec else {
        panic!("a fire node");
    };
    assert_eq!(
        conditions.len(),
        1,
        "only the condition sensed now: {conditions:?}"
    );
    let signals: Vec<SignalClass> = signals.into_values().collect();
    assert_eq!(signals.len(), 24, "{signals:?}");
    assert!(signals
        .chunks(2)
        .all(|c| c == [SignalClass::Alarm, SignalClass::Normal]));
}

#[test]
fn an_input_the_board_cannot_sense_is_refused_with_what_and_where() {
    let mut b = board(
        "meter-1",
        BoardSpec::Meter {
            water: Arc::from(vec![0u32; 10]),
        },
    );
    let e = b
        .sense(BoardInput::Press(Press::Short), 1_000)
        .expect_err("a meter has no button");
    assert_eq!(
        e.to_string(),
        "meter-1 is a meter board: it has no hardware that senses a button press"
    );
}
