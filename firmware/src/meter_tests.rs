extern crate std;
use std::vec::Vec as StdVec;

use vigil_protocol::DeviceId;

use super::*;

fn meter(config: MeterConfig) -> Meter {
    let stamper = FrameStamper::new(DeviceId::new("meter-42").unwrap(), 5);
    let mut m = Meter::new(config, stamper, 1_000_000, 0);
    m.handle_battery(3_600);
    m
}

/// One clean pulse starting at `t` (active for 20 ms).
fn pulse(m: &mut Meter, t: Millis) {
    m.handle_pulse_input(true, t);
    m.handle_pulse_input(true, t + 10);
    m.handle_pulse_input(false, t + 20);
    m.handle_pulse_input(false, t + 30);
}

/// A pulse every `period_ms` in `[from, to)`.
fn flow(m: &mut Meter, from: Millis, to: Millis, period_ms: u64) {
    let mut t = from;
    while t < to {
        pulse(m, t);
        t += period_ms;
    }
}

fn reports(m: &mut Meter) -> StdVec<(ReportReason, UplinkFrame)> {
    core::iter::from_fn(|| m.poll_frame()).collect()
}

fn reading(f: &UplinkFrame) -> &MeterReading {
    match &f.body {
        UplinkBody::Meter(r) => r,
        other => panic!("not a meter reading: {other:?}"),
    }
}

#[test]
fn pulses_are_debounced_and_become_millilitres() {
    let mut m = meter(MeterConfig {
        pulses_per_litre: 3,
        ..MeterConfig::default()
    });
    // A bouncing reed contact: only one pulse.
    for (i, level) in [true, false, true, false, true, true, true, true]
        .iter()
        .enumerate()
    {
        m.handle_pulse_input(*level, 1_000 + i as u64 * 2);
    }
    m.handle_pulse_input(false, 1_100);
    m.handle_pulse_input(false, 1_110);
    assert_eq!(m.total_ml(), 1_000_333);
    pulse(&mut m, 2_000);
    pulse(&mut m, 3_000);
    assert_eq!(
        m.total_ml(),
        1_001_000,
        "three pulses are exactly one litre"
    );
}

#[test]
fn a_routine_report_every_fifteen_minutes_carries_fifteen_minute_slots() {
    let mut m = meter(MeterConfig::default());
    // 2 L in minute 3, 5 L in minute 10.
    flow(&mut m, 180_000, 182_000, 1_000);
    flow(&mut m, 600_000, 605_000, 1_000);
    m.handle_timeout(899_999);
    assert!(reports(&mut m).is_empty());
    m.handle_timeout(900_000);
    let rs = reports(&mut m);
    assert_eq!(rs.len(), 1);
    let (reason, frame) = &rs[0];
    assert_eq!(*reason, ReportReason::Schedule);
    assert!(!frame.is_urgent());
    let r = reading(frame);
    assert_eq!(r.slot_s, 60);
    assert_eq!(r.slots_ml.len(), 15);
    assert_eq!(r.slots_ml[3], 2_000);
    assert_eq!(r.slots_ml[10], 5_000);
    assert_eq!(r.slots_ml.iter().sum::<u32>(), 7_000);
    assert_eq!(r.total_ml, 1_007_000);
    assert_eq!(r.battery_mv, 3_600);
    assert_eq!(m.next_deadline(), 960_000);
}

#[test]
fn flow_is_the_last_slot_in_millilitres_per_minute() {
    let mut m = meter(MeterConfig::default());
    flow(&mut m, 0, 60_000, 5_000); // 12 L in the first minute
    m.handle_timeout(900_000);
    let rs = reports(&mut m);
    assert_eq!(
        reading(&rs[0].1).flow_ml_per_min,
        0,
        "no flow in the last minute"
    );
    flow(&mut m, 1_740_000, 1_800_000, 10_000); // 6 L in the last minute of the next report
    m.handle_timeout(1_800_000);
    assert_eq!(reading(&reports(&mut m)[0].1).flow_ml_per_min, 6_000);
}

#[test]
fn a_magnet_on_the_tamper_input_is_reported_at_once_and_urgently() {
    let mut m = meter(MeterConfig::default());
    flow(&mut m, 10_000, 13_000, 1_000);
    m.handle_tamper_input(true, 90_000);
    assert!(reports(&mut m).is_empty(), "not before the debounce time");
    m.handle_tamper_input(true, 90_200);
    let rs = reports(&mut m);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].0, ReportReason::Tamper);
    assert!(rs[0].1.is_urgent());
    let r = reading(&rs[0].1);
    assert!(r.tamper);
    // One full slot, then the partial slot that ends at the report.
    assert_eq!(r.slots_ml.as_slice(), [3_000, 0]);
    // The next routine report has only the slots after this one.
    m.handle_tamper_input(false, 100_000);
    m.handle_tamper_input(false, 100_300);
    m.handle_timeout(990_200);
    let rs = reports(&mut m);
    assert!(!reading(&rs[0].1).tamper);
    assert_eq!(reading(&rs[0].1).slots_ml.iter().sum::<u32>(), 0);
}

#[test]
fn flow_in_every_minute_for_two_hours_raises_the_leak_flag_at_once() {
    let mut m = meter(MeterConfig::default());
    // A dripping tap: one pulse (1 L) every 30 s for three hours.
    let mut leak_at = None;
    let mut t = 0;
    while t < 3 * 3_600_000 {
        pulse(&mut m, t);
        for (reason, frame) in reports(&mut m) {
            if reason == ReportReason::Leak {
                assert!(frame.is_urgent());
                assert!(reading(&frame).leak);
                leak_at.get_or_insert(frame.uptime_ms);
            }
        }
        t += 30_000;
    }
    assert_eq!(leak_at, Some(7_200_000));
    assert!(m.leak());
    // A dry minute clears it.
    m.handle_timeout(3 * 3_600_000 + 120_000);
    assert!(!m.leak());
}

#[test]
fn a_shorter_leak_time_from_the_downlink_is_used() {
    let mut m = meter(MeterConfig::default());
    m.handle_config(
        &ConfigUpdate {
            leak_flow_minutes: Some(10),
            ..ConfigUpdate::default()
        },
        0,
    );
    flow(&mut m, 0, 700_000, 20_000);
    assert!(m.leak());
}

#[test]
fn the_report_interval_follows_the_downlink() {
    let mut m = meter(MeterConfig::default());
    m.handle_config(
        &ConfigUpdate {
            report_interval_s: Some(300),
            ..ConfigUpdate::default()
        },
        0,
    );
    m.handle_timeout(300_000);
    let rs = reports(&mut m);
    assert_eq!(reading(&rs[0].1).slots_ml.len(), 5);
    m.handle_timeout(600_000);
    assert_eq!(reports(&mut m).len(), 1);
}

#[test]
fn a_new_pulses_per_litre_keeps_the_volume_already_counted() {
    let mut m = meter(MeterConfig::default());
    flow(&mut m, 0, 3_000, 1_000);
    m.handle_config(
        &ConfigUpdate {
            pulses_per_litre: Some(100),
            ..ConfigUpdate::default()
        },
        5_000,
    );
    flow(&mut m, 6_000, 16_000, 100);
    assert_eq!(m.total_ml(), 1_000_000 + 3_000 + 1_000);
}

#[test]
fn an_interval_longer_than_the_slot_buffer_reports_when_the_slots_are_full() {
    let mut m = meter(MeterConfig {
        report_interval_s: 7_200,
        ..MeterConfig::default()
    });
    flow(&mut m, 0, 7_200_000, 600_000);
    let rs = reports(&mut m);
    let kinds: StdVec<_> = rs.iter().map(|(r, _)| *r).collect();
    assert_eq!(kinds, [ReportReason::SlotsFull]);
    assert_eq!(reading(&rs[0].1).slots_ml.len(), 60);
    m.handle_timeout(7_200_000);
    let total: u32 = rs
        .iter()
        .chain(reports(&mut m).iter())
        .map(|(_, f)| reading(f).slots_ml.iter().sum::<u32>())
        .sum();
    assert_eq!(total, 12_000, "every litre is in exactly one slot");
}

#[test]
fn every_report_encodes_within_the_frame_limit() {
    let mut m = meter(MeterConfig {
        report_interval_s: 3_600,
        ..MeterConfig::default()
    });
    flow(&mut m, 0, 3_600_000, 1_000);
    let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    for (_, f) in reports(&mut m) {
        f.encode(&mut buf).unwrap();
    }
}

#[test]
fn pulses_counted_by_hardware_land_in_the_slot_they_are_read_in() {
    let mut m = meter(MeterConfig::default());
    m.handle_pulse_count(3, 30_000);
    m.handle_pulse_count(0, 59_999);
    m.handle_pulse_count(2, 61_000);
    m.handle_timeout(900_000);
    let rs = reports(&mut m);
    let r = reading(&rs[0].1);
    assert_eq!(&r.slots_ml[..3], [3_000, 2_000, 0]);
    assert_eq!(r.total_ml, 1_005_000);
}
