use std::time::Duration;

use super::*;
use crate::detection::testkit::{at_s, ctx, drain, site};
use vigil_protocol::Unit;

fn report(sensor: SensorKind, signal: SignalClass, zone: &str, value: i32) -> FireReport {
    FireReport {
        sensor,
        value,
        unit: sensor.unit(),
        signal,
        zone: ZoneId::new(zone).unwrap(),
        self_test: false,
    }
}

/// One input: (device, sensor, signal, zone, value, seconds).
type Input = (
    &'static str,
    SensorKind,
    SignalClass,
    &'static str,
    i32,
    u64,
);

fn run(config: FireConfig, inputs: &[Input]) -> (FireDetector, Vec<DetectorAction>) {
    let mut d = FireDetector::new(config, site());
    let mut out = Vec::new();
    for (seq, (dev, sensor, signal, zone, value, t)) in inputs.iter().enumerate() {
        let r = report(*sensor, *signal, zone, *value);
        d.handle_report(&ctx(dev, seq as u32 + 1, *t), &r, at_s(*t));
        out.extend(drain(|| d.poll_action()));
    }
    (d, out)
}

fn summary(actions: &[DetectorAction]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            DetectorAction::Raise { key, severity, .. } => {
                format!("raise {} {}", key.kind, severity)
            }
            DetectorAction::Clear { key, reason, .. } => {
                format!("clear {} {}", key.kind, reason.as_str())
            }
        })
        .collect()
}

use SensorKind::{CableTemperature, Heat, ManualCallPoint, ResidualCurrent, Smoke, SprinklerValve};
use SignalClass::{Alarm, Normal, Supervisory, Trouble};

#[test]
fn fire_rules_follow_the_table() {
    let cases: Vec<(&str, Vec<Input>, Vec<&str>)> = vec![
        (
            "one smoke detector is an unconfirmed alarm",
            vec![("d1", Smoke, Alarm, "z1", 900, 0)],
            vec!["raise fire_alarm major"],
        ),
        (
            "a second detector in the same zone confirms",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d2", Smoke, Alarm, "z1", 700, 20),
            ],
            vec![
                "raise fire_alarm major",
                "raise fire_alarm major",
                "raise fire_confirmed critical",
            ],
        ),
        (
            "two detectors in different zones do not confirm",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d2", Smoke, Alarm, "z2", 700, 20),
            ],
            vec!["raise fire_alarm major", "raise fire_alarm major"],
        ),
        (
            "smoke plus heat on one multi-sensor confirms",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d1", Heat, Alarm, "z1", 620, 5),
            ],
            vec![
                "raise fire_alarm major",
                "raise fire_alarm major",
                "raise fire_confirmed critical",
            ],
        ),
        (
            "smoke in one zone and heat in another do not confirm",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d1", Heat, Alarm, "z2", 620, 5),
            ],
            vec!["raise fire_alarm major", "raise fire_alarm major"],
        ),
        (
            "a manual call point confirms on its own",
            vec![("mcp", ManualCallPoint, Alarm, "z1", 1, 0)],
            vec!["raise fire_alarm major", "raise fire_confirmed critical"],
        ),
        (
            "the zone's alarm clears only when its last detector is normal",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d2", Smoke, Alarm, "z1", 900, 1),
                ("d1", Smoke, Normal, "z1", 10, 60),
                ("d2", Smoke, Normal, "z1", 10, 70),
            ],
            vec![
                "raise fire_alarm major",
                "raise fire_alarm major",
                "raise fire_confirmed critical",
                "clear fire_alarm returned_to_normal",
                "clear fire_confirmed returned_to_normal",
            ],
        ),
        (
            "a repeated alarm from the same sensor changes nothing",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 0),
                ("d1", Smoke, Alarm, "z1", 950, 10),
            ],
            vec!["raise fire_alarm major"],
        ),
        (
            "supervisory and trouble raise their own kinds and clear",
            vec![
                ("v1", SprinklerValve, Supervisory, "z1", 1, 0),
                ("d1", Smoke, Trouble, "z1", 0, 5),
                ("v1", SprinklerValve, Normal, "z1", 0, 60),
                ("d1", Smoke, Normal, "z1", 0, 65),
            ],
            vec![
                "raise fire_supervisory major",
                "raise fire_trouble minor",
                "clear fire_supervisory returned_to_normal",
                "clear fire_trouble returned_to_normal",
            ],
        ),
        (
            "residual current exactly at 300 mA is not a hazard, above is",
            vec![
                ("rc", ResidualCurrent, Normal, "z1", 300, 0),
                ("rc", ResidualCurrent, Normal, "z1", 301, 10),
            ],
            vec!["raise electrical_hazard major"],
        ),
        (
            "cable temperature exactly at 70 °C is not a hazard, above is",
            vec![
                ("ct", CableTemperature, Normal, "z1", 700, 0),
                ("ct", CableTemperature, Normal, "z1", 701, 10),
            ],
            vec!["raise electrical_hazard major"],
        ),
        (
            "a report older than the sensor's last one is ignored",
            vec![
                ("d1", Smoke, Alarm, "z1", 900, 100),
                ("d1", Smoke, Normal, "z1", 10, 50),
            ],
            vec!["raise fire_alarm major"],
        ),
    ];
    for (name, inputs, expected) in cases {
        let (_, actions) = run(FireConfig::default(), &inputs);
        assert_eq!(summary(&actions), expected, "{name}");
    }
}

#[test]
fn a_manual_call_point_needs_a_second_signal_when_so_configured() {
    let config = FireConfig {
        manual_call_point_confirms: false,
        ..FireConfig::default()
    };
    let (_, actions) = run(config, &[("mcp", ManualCallPoint, Alarm, "z1", 1, 0)]);
    assert_eq!(summary(&actions), vec!["raise fire_alarm major"]);
}

#[test]
fn confirmation_names_the_zone_and_the_sensors() {
    let (_, actions) = run(
        FireConfig::default(),
        &[
            ("d1", Smoke, Alarm, "f2-east", 900, 0),
            ("d2", Heat, Alarm, "f2-east", 700, 20),
        ],
    );
    let DetectorAction::Raise { key, details, .. } = actions.last().unwrap() else {
        panic!("expected a raise")
    };
    assert_eq!(
        key.subject,
        Subject::Zone {
            site: site(),
            zone: ZoneId::new("f2-east").unwrap()
        }
    );
    assert_eq!(details["sensors"], "d1:smoke,d2:heat");
}

#[test]
fn a_self_test_never_raises() {
    let mut d = FireDetector::new(FireConfig::default(), site());
    let mut r = report(Smoke, Alarm, "z1", 900);
    r.self_test = true;
    d.handle_report(&ctx("d1", 1, 0), &r, at_s(0));
    assert!(d.poll_action().is_none());
    assert_eq!(d.state().counters.self_tests, 1);
}

#[test]
fn an_unrectified_hazard_becomes_overdue_exactly_at_its_deadline_even_across_a_restart() {
    let (d, _) = run(
        FireConfig::default(),
        &[("rc", ResidualCurrent, Normal, "z1", 450, 0)],
    );
    let deadline = at_s(72 * 3600);
    assert_eq!(d.next_deadline(), Some(deadline));
    // Restart in the middle of the rectification window.
    let json = serde_json::to_string(d.state()).unwrap();
    let mut d = FireDetector::restore(FireConfig::default(), serde_json::from_str(&json).unwrap());
    assert_eq!(d.next_deadline(), Some(deadline));
    d.handle_timeout(deadline - Duration::from_millis(1));
    assert!(d.poll_action().is_none());
    d.handle_timeout(deadline);
    assert_eq!(
        summary(&drain(|| d.poll_action())),
        vec!["raise hazard_overdue major"]
    );
    assert_eq!(d.next_deadline(), None);
    d.handle_timeout(deadline + Duration::from_secs(3600));
    assert!(d.poll_action().is_none(), "overdue is raised once");
}

#[test]
fn a_reading_back_to_normal_is_recorded_but_only_rectification_stops_the_clock() {
    let (mut d, _) = run(
        FireConfig::default(),
        &[
            ("rc", ResidualCurrent, Normal, "z1", 450, 0),
            ("rc", ResidualCurrent, Normal, "z1", 520, 60),
        ],
    );
    assert_eq!(d.state().hazards()[0].worst_value, 520);
    let r = report(ResidualCurrent, Normal, "z1", 40);
    d.handle_report(&ctx("rc", 9, 120), &r, at_s(120));
    assert_eq!(
        summary(&drain(|| d.poll_action())),
        vec!["clear electrical_hazard returned_to_normal"]
    );
    assert_eq!(d.next_deadline(), Some(at_s(72 * 3600)));
    d.handle_rectified(&device_id("rc"), ResidualCurrent, at_s(4000));
    assert_eq!(
        summary(&drain(|| d.poll_action())),
        vec![
            "clear electrical_hazard rectified",
            "clear hazard_overdue rectified"
        ]
    );
    assert_eq!(d.next_deadline(), None);
    d.handle_rectified(&device_id("rc"), ResidualCurrent, at_s(4001));
    assert_eq!(d.state().counters.unknown_rectifications, 1);
}

#[test]
fn values_carry_their_unit_on_the_alert() {
    let (_, actions) = run(
        FireConfig::default(),
        &[("ct", CableTemperature, Normal, "z1", 755, 0)],
    );
    let DetectorAction::Raise { details, .. } = &actions[0] else {
        panic!("expected a raise")
    };
    assert_eq!(
        details["value"],
        format!("755 {}", Unit::DeciCelsius.symbol())
    );
    assert_eq!(details["rectify_by"], at_s(72 * 3600).to_string());
}

fn device_id(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

#[test]
fn a_report_dated_in_the_future_does_not_freeze_the_sensor() {
    let mut d = FireDetector::new(FireConfig::default(), site());
    // The node's clock is a day ahead for one frame.
    d.handle_report(
        &ctx("d1", 1, 86_400),
        &report(Smoke, Alarm, "z1", 900),
        at_s(10),
    );
    d.handle_report(&ctx("d1", 2, 20), &report(Smoke, Normal, "z1", 5), at_s(20));
    assert_eq!(
        summary(&drain(|| d.poll_action())),
        vec![
            "raise fire_alarm major",
            "clear fire_alarm returned_to_normal"
        ]
    );
    assert_eq!(d.state().counters.stale_reports, 0);
}

#[test]
fn the_supervision_board_sees_the_facility_at_a_glance() {
    let (mut d, _) = run(
        FireConfig::default(),
        &[
            ("d1", Smoke, Alarm, "z1", 900, 0),
            ("d2", Heat, Alarm, "z1", 700, 5),
            ("d3", Smoke, Alarm, "z2", 900, 6),
            ("v1", SprinklerValve, Supervisory, "z3", 1, 7),
            ("d4", Smoke, Trouble, "z2", 0, 8),
            ("rc", ResidualCurrent, Normal, "z4", 450, 9),
            ("ct", CableTemperature, Normal, "z4", 800, 3 * 86_400),
        ],
    );
    d.handle_timeout(at_s(3 * 86_400 + 10));
    let s = d.status();
    let z = |v: &[&str]| {
        v.iter()
            .map(|z| ZoneId::new(z).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(s.zones_in_alarm, z(&["z1", "z2"]));
    assert_eq!(s.zones_confirmed, z(&["z1"]));
    assert_eq!(s.supervisory_zones, z(&["z3"]));
    assert_eq!(s.troubled_devices, vec![device_id("d4")]);
    assert_eq!((s.open_hazards, s.overdue_hazards), (2, 1));
    assert_eq!(s.next_rectification_due, Some(at_s(6 * 86_400)));
}
