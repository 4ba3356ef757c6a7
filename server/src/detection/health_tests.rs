use std::time::Duration;

use super::*;
use crate::detection::testkit::{at_s, ctx, device, drain, site};
use vigil_protocol::{BoardStatus, FirmwareVersion};

fn gw() -> GatewayId {
    GatewayId::new("gw-1").unwrap()
}

fn hb(mv: u16) -> Heartbeat {
    Heartbeat {
        battery_mv: mv,
        rssi_dbm: -70,
        firmware: FirmwareVersion::new("1.0.0").unwrap(),
    }
}

fn meter(mv: u16, tamper: bool) -> MeterReading {
    MeterReading {
        total_ml: 1000,
        flow_ml_per_min: 0,
        battery_mv: mv,
        tamper,
        leak: false,
        slot_s: 60,
        slots_ml: heapless::Vec::new(),
    }
}

fn status(boards: &[(&str, u64)], now_s: u64) -> GatewayStatus {
    let mut v = heapless::Vec::new();
    for (d, seen_s) in boards {
        let _ = v.push(BoardStatus {
            device_id: device(d),
            last_seen_ms: at_s(*seen_s).unix_ms(),
            battery_mv: None,
            rssi_dbm: None,
        });
    }
    GatewayStatus {
        gateway_id: gw(),
        site_id: site(),
        sent_ms: at_s(now_s).unix_ms(),
        uplink_connected: true,
        spool_frames: 0,
        spool_bytes: 0,
        oldest_unsent_s: 0,
        boards: v,
    }
}

fn summary(d: &mut HealthDetector) -> Vec<String> {
    drain(|| d.poll_action())
        .iter()
        .map(|a| match a {
            DetectorAction::Raise { key, .. } => format!("raise {} {:?}", key.kind, key.subject),
            DetectorAction::Clear { key, reason, .. } => {
                format!("clear {} {:?} {}", key.kind, key.subject, reason.as_str())
            }
        })
        .collect()
}

fn one_board(kind: BoardKind) -> HealthDetector {
    let mut d = HealthDetector::new(HealthConfig::default(), site());
    d.register_device(device("b1"), kind, Some(gw()), at_s(0));
    d
}

#[test]
fn a_board_is_offline_exactly_after_two_missed_heartbeats_plus_grace() {
    // (kind, seconds after the last frame)
    for (kind, deadline_s) in [
        (BoardKind::Meter, 2 * 3600 + 300),
        (BoardKind::Pendant, 2 * 3600 + 300),
        (BoardKind::FireNode, 2 * 300 + 300),
    ] {
        let mut d = one_board(kind);
        d.handle_frame(&device("b1"), at_s(100), at_s(100));
        let deadline = at_s(100 + deadline_s);
        assert_eq!(d.next_deadline(), Some(deadline), "{kind:?}");
        d.handle_timeout(deadline - Duration::from_millis(1));
        assert!(summary(&mut d).is_empty(), "{kind:?} one millisecond early");
        d.handle_timeout(deadline);
        assert_eq!(
            summary(&mut d),
            vec![r#"raise device_offline Device(DeviceId("b1"))"#],
            "{kind:?}"
        );
        assert_eq!(d.next_deadline(), None);
    }
}

#[test]
fn a_board_heard_again_clears_its_offline_alert() {
    let mut d = one_board(BoardKind::Pendant);
    d.handle_timeout(at_s(2 * 3600 + 300));
    let _ = summary(&mut d);
    d.handle_heartbeat(&device("b1"), &hb(3900), at_s(7600), at_s(7600));
    assert_eq!(
        summary(&mut d),
        vec![r#"clear device_offline Device(DeviceId("b1")) back_online"#]
    );
}

#[test]
fn a_late_frame_does_not_move_last_seen_back() {
    let mut d = one_board(BoardKind::FireNode);
    d.handle_frame(&device("b1"), at_s(500), at_s(500));
    d.handle_frame(&device("b1"), at_s(10), at_s(510));
    assert_eq!(d.next_deadline(), Some(at_s(500 + 900)));
}

#[test]
fn a_gateway_outage_is_one_site_alert_and_boards_get_time_after_it_returns() {
    let mut d = HealthDetector::new(HealthConfig::default(), site());
    d.register_gateway(gw(), at_s(0));
    for name in ["p1", "p2", "p3"] {
        d.register_device(device(name), BoardKind::Pendant, Some(gw()), at_s(0));
    }
    // The gateway is last heard at 0: offline at 2 × 60 + 60 s.
    d.handle_timeout(at_s(180));
    assert_eq!(
        summary(&mut d),
        vec![r#"raise gateway_offline Gateway(GatewayId("gw-1"))"#]
    );
    // Hours later, every board's own deadline has passed: still no per-board alert.
    d.handle_timeout(at_s(4 * 3600));
    assert!(summary(&mut d).is_empty());
    assert_eq!(d.state().counters.suppressed_offline, 3);
    let glance = d.status();
    assert_eq!(glance.gateways_offline, vec![gw()]);
    assert_eq!(glance.unreachable.len(), 3);
    assert!(
        glance.offline.is_empty(),
        "no board is reported offline on its own"
    );
    // The gateway returns with p1 seen recently; p2 and p3 said nothing.
    let back = 4 * 3600 + 10;
    d.handle_gateway_status(&status(&[("p1", back - 5)], back), at_s(back));
    assert_eq!(
        summary(&mut d),
        vec![r#"clear gateway_offline Gateway(GatewayId("gw-1")) back_online"#]
    );
    d.handle_frame(&device("p2"), at_s(back + 100), at_s(back + 100));
    // p3 gets one interval plus grace from the gateway's return.
    let p3_deadline = at_s(back + 3600 + 300);
    for t in (back + 60..back + 3900).step_by(60) {
        d.handle_gateway_status(&status(&[("p2", t - 1)], t), at_s(t));
    }
    d.handle_timeout(p3_deadline - Duration::from_millis(1));
    assert!(summary(&mut d).is_empty());
    d.handle_timeout(p3_deadline);
    assert_eq!(
        summary(&mut d),
        vec![r#"raise device_offline Device(DeviceId("p3"))"#]
    );
}

#[test]
fn a_will_makes_a_board_offline_at_once() {
    let mut d = one_board(BoardKind::Meter);
    let will = DeviceState {
        device_id: device("b1"),
        online: false,
        boot_id: 3,
    };
    d.handle_device_state(&will, at_s(60));
    assert_eq!(
        summary(&mut d),
        vec![r#"raise device_offline Device(DeviceId("b1"))"#]
    );
    d.handle_device_state(&will, at_s(61));
    assert!(
        summary(&mut d).is_empty(),
        "a repeated will changes nothing"
    );
}

#[test]
fn low_battery_uses_the_board_threshold_with_hysteresis() {
    // (millivolts in order, expected actions after each)
    let mut d = one_board(BoardKind::Pendant);
    let steps: [(u16, &[&str]); 5] = [
        (3500, &[]),
        (3499, &[r#"raise low_battery Device(DeviceId("b1"))"#]),
        (3599, &[]),
        (3450, &[]),
        (
            3600,
            &[r#"clear low_battery Device(DeviceId("b1")) battery_restored"#],
        ),
    ];
    for (i, (mv, expected)) in steps.into_iter().enumerate() {
        let t = at_s(10 + i as u64);
        d.handle_heartbeat(&device("b1"), &hb(mv), t, t);
        assert_eq!(summary(&mut d), expected, "{mv} mV");
    }
}

#[test]
fn tamper_is_raised_and_cleared_and_a_late_frame_cannot_undo_a_clear() {
    let mut d = one_board(BoardKind::Meter);
    d.handle_meter(&device("b1"), &meter(3600, true), at_s(10), at_s(10));
    d.handle_meter(&device("b1"), &meter(3600, true), at_s(20), at_s(20));
    d.handle_meter(&device("b1"), &meter(3600, false), at_s(30), at_s(30));
    d.handle_meter(&device("b1"), &meter(3600, true), at_s(15), at_s(40));
    assert_eq!(
        summary(&mut d),
        vec![
            r#"raise tamper Device(DeviceId("b1"))"#,
            r#"clear tamper Device(DeviceId("b1")) returned_to_normal"#,
        ]
    );
}

#[test]
fn offline_timers_survive_a_restart() {
    let mut d = one_board(BoardKind::Meter);
    d.handle_frame(&device("b1"), at_s(1000), at_s(1000));
    let json = serde_json::to_string(d.state()).unwrap();
    let mut d = HealthDetector::restore(
        HealthConfig::default(),
        serde_json::from_str(&json).unwrap(),
    );
    let deadline = at_s(1000 + 2 * 3600 + 300);
    assert_eq!(d.next_deadline(), Some(deadline));
    d.handle_timeout(deadline);
    assert_eq!(
        summary(&mut d),
        vec![r#"raise device_offline Device(DeviceId("b1"))"#]
    );
}

#[test]
fn frames_from_unregistered_boards_are_counted() {
    let mut d = one_board(BoardKind::Meter);
    d.handle_frame(&device("stranger"), at_s(5), at_s(5));
    assert_eq!(d.state().counters.unknown_devices, 1);
    assert!(summary(&mut d).is_empty());
}

#[test]
fn every_uplink_body_counts_as_life_and_heartbeats_carry_the_battery() {
    let mut d = one_board(BoardKind::Pendant);
    let press = UplinkBody::Button(vigil_protocol::ButtonEvent {
        kind: vigil_protocol::ButtonKind::Press,
        cancels_seq: None,
    });
    d.handle_uplink(&ctx("b1", 1, 1000), &press, at_s(1000));
    assert_eq!(d.next_deadline(), Some(at_s(1000 + 2 * 3600 + 300)));
    d.handle_uplink(
        &ctx("b1", 2, 1100),
        &UplinkBody::Heartbeat(hb(3000)),
        at_s(1100),
    );
    assert_eq!(
        summary(&mut d),
        vec![r#"raise low_battery Device(DeviceId("b1"))"#]
    );
    d.handle_uplink(
        &ctx("b1", 3, 1200),
        &UplinkBody::Meter(meter(3000, true)),
        at_s(1200),
    );
    assert_eq!(
        summary(&mut d),
        vec![r#"raise tamper Device(DeviceId("b1"))"#]
    );
}

#[test]
fn a_status_for_another_site_is_refused_and_counted() {
    let mut d = HealthDetector::new(HealthConfig::default(), site());
    d.register_gateway(gw(), at_s(0));
    let mut s = status(&[], 100);
    s.site_id = SiteId::new("elsewhere").unwrap();
    d.handle_gateway_status(&s, at_s(100));
    assert_eq!(d.state().counters.wrong_site, 1);
    assert_eq!(
        d.next_deadline(),
        Some(at_s(180)),
        "it did not count as life"
    );
}

#[test]
fn a_frame_dated_in_the_future_does_not_freeze_battery_or_tamper() {
    let mut d = one_board(BoardKind::Meter);
    d.handle_meter(&device("b1"), &meter(3000, true), at_s(86_400), at_s(10));
    d.handle_meter(&device("b1"), &meter(3600, false), at_s(20), at_s(20));
    assert_eq!(
        summary(&mut d),
        vec![
            r#"raise low_battery Device(DeviceId("b1"))"#,
            r#"raise tamper Device(DeviceId("b1"))"#,
            r#"clear low_battery Device(DeviceId("b1")) battery_restored"#,
            r#"clear tamper Device(DeviceId("b1")) returned_to_normal"#,
        ]
    );
}

#[test]
fn configurations_outside_what_a_site_can_mean_are_refused() {
    use crate::detection::call::CallConfig;
    use crate::detection::fire::FireConfig;
    let health = serde_json::to_value(HealthConfig::default()).unwrap();
    let fire = serde_json::to_value(FireConfig::default()).unwrap();
    let call = serde_json::to_value(CallConfig::default()).unwrap();
    // (which config, pointer to the field, bad value, expected message fragment)
    let cases = [
        (
            "health",
            "/pendant/heartbeat_interval",
            0,
            "pendant must be between 60 and 86400 s heartbeat interval, found 0",
        ),
        (
            "health",
            "/meter/low_battery_mv",
            9000,
            "meter must be between 1000 and 5000 mV",
        ),
        (
            "health",
            "/gateway_interval",
            5,
            "gateway_interval must be between 10 and 3600 s, found 5",
        ),
        (
            "fire",
            "/residual_current_limit_ma",
            0,
            "residual_current_limit_ma must be between 10 and 1000 mA",
        ),
        (
            "fire",
            "/rectification_deadline",
            60,
            "rectification_deadline must be between 3600",
        ),
        (
            "call",
            "/cancel_window",
            600,
            "cancel_window must be between 5 and 120 s, found 600",
        ),
    ];
    for (which, pointer, bad, message) in cases {
        let mut v = match which {
            "health" => health.clone(),
            "fire" => fire.clone(),
            _ => call.clone(),
        };
        *v.pointer_mut(pointer).unwrap() = serde_json::json!(bad);
        let err = match which {
            "health" => serde_json::from_value::<HealthConfig>(v)
                .map(|_| ())
                .unwrap_err(),
            "fire" => serde_json::from_value::<FireConfig>(v)
                .map(|_| ())
                .unwrap_err(),
            _ => serde_json::from_value::<CallConfig>(v)
                .map(|_| ())
                .unwrap_err(),
        };
        assert!(err.to_string().contains(message), "{pointer}: {err}");
    }
    // The defaults are valid and survive a round trip.
    assert_eq!(
        serde_json::from_value::<HealthConfig>(health).unwrap(),
        HealthConfig::default()
    );
    assert_eq!(
        serde_json::from_value::<FireConfig>(fire).unwrap(),
        FireConfig::default()
    );
    assert_eq!(
        serde_json::from_value::<CallConfig>(call).unwrap(),
        CallConfig::default()
    );
}
