extern crate std;
use std::vec::Vec as StdVec;

use vigil_protocol::DeviceId;

use super::*;

const DAY_MS: u64 = 86_400_000;

fn zone() -> ZoneId {
    ZoneId::new("f2-east").unwrap()
}

fn node(kinds: &[SensorKind]) -> FireNode {
    let sensors: StdVec<ChannelConfig> = kinds
        .iter()
        .map(|k| ChannelConfig::standard(*k, zone()))
        .collect();
    let stamper = FrameStamper::new(DeviceId::new("fire-3").unwrap(), 1);
    FireNode::new(stamper, &sensors, DAY_MS, 0).unwrap()
}

fn reports(n: &mut FireNode) -> StdVec<FireReport> {
    core::iter::from_fn(|| n.poll_frame())
        .map(|f| match f.body {
            UplinkBody::Fire(r) => r,
            other => panic!("not a fire report: {other:?}"),
        })
        .collect()
}

fn signals(rs: &[FireReport]) -> StdVec<(i32, SignalClass)> {
    rs.iter().map(|r| (r.value, r.signal)).collect()
}

#[test]
fn smoke_alarms_at_its_threshold_and_clears_only_below_the_clear_level() {
    let mut n = node(&[SensorKind::Smoke]);
    for (t, v) in [
        (0, 50),
        (1, 299),
        (2, 300),
        (3, 200),
        (4, 160),
        (5, 149),
        (6, 299),
    ] {
        n.handle_reading(0, SensorReading::Value(v), t * 1000)
            .unwrap();
    }
    assert_eq!(
        signals(&reports(&mut n)),
        [(300, SignalClass::Alarm), (149, SignalClass::Normal)]
    );
}

#[test]
fn an_alarm_is_an_urgent_frame_and_a_supervisory_signal_is_not() {
    let mut n = node(&[SensorKind::Heat, SensorKind::SprinklerValve]);
    n.handle_reading(0, SensorReading::Value(600), 0).unwrap();
    n.handle_reading(1, SensorReading::Value(1), 0).unwrap();
    n.handle_timeout(5_000);
    let frames: StdVec<UplinkFrame> = core::iter::from_fn(|| n.poll_frame()).collect();
    assert_eq!(frames.len(), 2);
    assert!(frames[0].is_urgent());
    assert!(!frames[1].is_urgent());
    assert!(matches!(&frames[1].body, UplinkBody::Fire(r) if r.signal == SignalClass::Supervisory));
}

#[test]
fn low_hydrant_pressure_is_supervisory_after_it_persists() {
    let mut n = node(&[SensorKind::HydrantPressure]);
    n.handle_reading(0, SensorReading::Value(300), 0).unwrap();
    n.handle_reading(0, SensorReading::Value(90), 1_000)
        .unwrap();
    assert_eq!(n.next_deadline(), 11_000);
    n.handle_timeout(10_999);
    assert!(reports(&mut n).is_empty());
    n.handle_reading(0, SensorReading::Value(95), 11_000)
        .unwrap();
    assert_eq!(signals(&reports(&mut n)), [(95, SignalClass::Supervisory)]);
    // 110 kPa is above the threshold but not above the clear level: still low.
    n.handle_reading(0, SensorReading::Value(110), 12_000)
        .unwrap();
    assert!(reports(&mut n).is_empty());
    n.handle_reading(0, SensorReading::Value(130), 13_000)
        .unwrap();
    assert_eq!(signals(&reports(&mut n)), [(130, SignalClass::Normal)]);
}

#[test]
fn a_fire_door_is_supervisory_only_when_held_open_for_a_minute() {
    let mut n = node(&[SensorKind::DoorContact]);
    n.handle_reading(0, SensorReading::Value(1), 0).unwrap();
    n.handle_reading(0, SensorReading::Value(0), 8_000).unwrap();
    n.handle_timeout(120_000);
    assert!(reports(&mut n).is_empty(), "someone walked through");
    n.handle_reading(0, SensorReading::Value(1), 200_000)
        .unwrap();
    n.handle_timeout(260_000);
    assert_eq!(signals(&reports(&mut n)), [(1, SignalClass::Supervisory)]);
}

#[test]
fn a_manual_call_point_alarms_at_once() {
    let mut n = node(&[SensorKind::ManualCallPoint]);
    n.handle_reading(0, SensorReading::Value(1), 5).unwrap();
    assert_eq!(signals(&reports(&mut n)), [(1, SignalClass::Alarm)]);
}

#[test]
fn a_disconnected_sensor_is_trouble_until_it_answers_again() {
    let mut n = node(&[SensorKind::Smoke]);
    n.handle_reading(0, SensorReading::Value(40), 0).unwrap();
    n.handle_reading(0, SensorReading::Disconnected, 1_000)
        .unwrap();
    n.handle_reading(0, SensorReading::Value(42), 2_000)
        .unwrap();
    assert_eq!(
        signals(&reports(&mut n)),
        [(40, SignalClass::Trouble), (42, SignalClass::Normal)]
    );
}

#[test]
fn an_impossible_reading_is_trouble_not_an_alarm() {
    let mut n = node(&[SensorKind::Heat]);
    n.handle_reading(0, SensorReading::Value(9_999), 0).unwrap();
    assert_eq!(signals(&reports(&mut n)), [(9_999, SignalClass::Trouble)]);
}

#[test]
fn a_smoke_reading_frozen_for_a_day_is_a_stuck_sensor() {
    let mut n = node(&[SensorKind::Smoke]);
    n.handle_reading(0, SensorReading::Value(37), 0).unwrap();
    n.handle_reading(0, SensorReading::Value(38), 1_000)
        .unwrap();
    assert_eq!(n.next_deadline(), DAY_MS);
    n.handle_timeout(DAY_MS);
    assert!(reports(&mut n).iter().all(|r| r.self_test));
    n.handle_reading(0, SensorReading::Value(38), DAY_MS + 999)
        .unwrap();
    assert!(reports(&mut n).is_empty());
    n.handle_timeout(DAY_MS + 1_000);
    assert_eq!(signals(&reports(&mut n)), [(38, SignalClass::Trouble)]);
    n.handle_reading(0, SensorReading::Value(36), DAY_MS + 2_000)
        .unwrap();
    assert_eq!(signals(&reports(&mut n)), [(36, SignalClass::Normal)]);
}

#[test]
fn a_gas_sensor_reading_zero_all_day_is_not_stuck() {
    let mut n = node(&[SensorKind::Gas]);
    for h in 0..48 {
        n.handle_reading(0, SensorReading::Value(0), h * 3_600_000)
            .unwrap();
    }
    assert!(reports(&mut n)
        .iter()
        .all(|r| r.signal == SignalClass::Normal));
}

#[test]
fn the_daily_self_test_reports_every_sensor_with_its_class() {
    let mut n = node(&[SensorKind::Smoke, SensorKind::ResidualCurrent]);
    n.handle_reading(0, SensorReading::Value(20), 0).unwrap();
    n.handle_reading(1, SensorReading::Value(320), 0).unwrap();
    assert_eq!(signals(&reports(&mut n)), [(320, SignalClass::Alarm)]);
    n.handle_reading(0, SensorReading::Value(21), 1_000)
        .unwrap();
    n.handle_timeout(DAY_MS);
    let rs = reports(&mut n);
    assert_eq!(rs.len(), 2);
    assert!(rs.iter().all(|r| r.self_test && r.zone == zone()));
    assert_eq!(
        signals(&rs),
        [(21, SignalClass::Normal), (320, SignalClass::Alarm)]
    );
    assert_eq!(rs[1].unit, SensorKind::ResidualCurrent.unit());
}

#[test]
fn a_reading_for_a_missing_channel_is_a_typed_error() {
    let mut n = node(&[SensorKind::Smoke]);
    assert_eq!(
        n.handle_reading(3, SensorReading::Value(1), 0),
        Err(NoSuchChannel(3))
    );
}

#[test]
fn every_sensor_kind_has_a_standard_configuration_and_a_class() {
    for kind in SensorKind::ALL {
        let c = ChannelConfig::standard(kind, zone());
        assert!(c.valid.0 <= c.on && c.on <= c.valid.1, "{kind:?}");
        assert_ne!(active_class(kind), SignalClass::Normal);
    }
}

#[test]
fn more_sensors_than_a_node_serves_is_a_typed_error() {
    let sensors: StdVec<ChannelConfig> = (0..=MAX_CHANNELS)
        .map(|_| ChannelConfig::standard(SensorKind::Smoke, zone()))
        .collect();
    let stamper = FrameStamper::new(DeviceId::new("fire-3").unwrap(), 1);
    assert_eq!(
        FireNode::new(stamper, &sensors, DAY_MS, 0).err(),
        Some(TooManySensors { given: 9 })
    );
}

#[test]
fn a_sensor_in_trouble_with_its_threshold_crossed_asks_for_no_past_wake_up() {
    let mut n = node(&[SensorKind::Smoke]);
    // Above the alarm threshold but outside the physical range: trouble, not alarm.
    n.handle_reading(0, SensorReading::Value(20_000), 1_000)
        .unwrap();
    assert_eq!(n.class(0), Some(SignalClass::Trouble));
    assert!(
        n.next_deadline() > 1_000,
        "a deadline in the past makes a board that sleeps until it spin: {}",
        n.next_deadline()
    );
}
