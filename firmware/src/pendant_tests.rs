extern crate std;
use std::vec::Vec as StdVec;

use vigil_protocol::DeviceId;

use super::*;

fn pendant() -> Pendant {
    let stamper = FrameStamper::new(DeviceId::new("pendant-7").unwrap(), 2);
    let mut p = Pendant::new(PendantConfig::default(), stamper, 0);
    p.handle_link(true);
    p
}

fn frames(p: &mut Pendant) -> StdVec<UplinkFrame> {
    core::iter::from_fn(|| p.poll_frame()).collect()
}

/// Holds the button for `ms`, sampling every 10 ms from `from`, then releases it for 100 ms.
fn press(p: &mut Pendant, from: Millis, ms: u64) -> Millis {
    let mut t = from;
    while t < from + ms {
        p.handle_button(true, t);
        t += 10;
    }
    let end = t + 100;
    while t < end {
        p.handle_button(false, t);
        t += 10;
    }
    t
}

fn detection() -> FallDetection {
    FallDetection {
        impact_at_ms: 9_000,
        free_fall_ms: 350,
        peak_mg: 3_800,
        stillness_ms: 2_500,
        orientation_change_deg: 80,
    }
}

fn kinds(fs: &[UplinkFrame]) -> StdVec<(u32, UplinkBody)> {
    fs.iter().map(|f| (f.seq, f.body.clone())).collect()
}

#[test]
fn a_press_sends_an_urgent_call_at_once() {
    let mut p = pendant();
    press(&mut p, 1_000, 200);
    let fs = frames(&mut p);
    assert_eq!(kinds(&fs), [(1, button(ButtonKind::Press, None))]);
    assert!(fs[0].is_urgent());
    assert!(matches!(
        p.mode(),
        PendantMode::CallPending { first_seq: 1, .. }
    ));
}

#[test]
fn a_long_press_cancels_the_pending_call_naming_its_seq() {
    let mut p = pendant();
    let t = press(&mut p, 0, 200);
    press(&mut p, t + 5_000, 3_500);
    assert_eq!(
        kinds(&frames(&mut p)),
        [
            (1, button(ButtonKind::Press, None)),
            (2, button(ButtonKind::Cancel, Some(1)))
        ]
    );
    assert_eq!(p.mode(), PendantMode::Idle);
}

#[test]
fn a_long_press_when_idle_says_i_am_fine() {
    let mut p = pendant();
    press(&mut p, 0, 3_200);
    assert_eq!(
        kinds(&frames(&mut p)),
        [(1, button(ButtonKind::LongPress, None))]
    );
}

#[test]
fn a_fall_is_reported_with_its_features_when_the_cancel_window_ends() {
    let mut p = pendant();
    p.handle_fall(detection(), 10_000);
    assert_eq!(p.next_deadline(), 40_000);
    p.handle_timeout(39_999);
    assert!(frames(&mut p).is_empty());
    p.handle_timeout(40_000);
    let fs = frames(&mut p);
    assert_eq!(
        kinds(&fs),
        [(
            1,
            UplinkBody::Fall(FallEvent {
                free_fall_ms: 350,
                peak_mg: 3_800,
                stillness_ms: 2_500,
                orientation_change_deg: 80,
                cancelled: false
            })
        )]
    );
    assert_eq!(fs[0].uptime_ms, 40_000);
    assert!(matches!(
        p.mode(),
        PendantMode::CallPending { first_seq: 1, .. }
    ));
}

#[test]
fn a_long_press_in_the_cancel_window_reports_the_fall_as_cancelled() {
    let mut p = pendant();
    p.handle_fall(detection(), 10_000);
    press(&mut p, 20_000, 3_100);
    let fs = frames(&mut p);
    assert!(
        matches!(&fs[..], [f] if matches!(f.body, UplinkBody::Fall(FallEvent { cancelled: true, .. })))
    );
    assert_eq!(p.mode(), PendantMode::Idle);
    assert_eq!(p.counters().falls_cancelled, 1);
    p.handle_timeout(40_000);
    assert!(
        frames(&mut p).is_empty(),
        "nothing more when the window would have ended"
    );
}

#[test]
fn a_press_in_the_cancel_window_sends_the_fall_at_once() {
    let mut p = pendant();
    p.handle_fall(detection(), 10_000);
    let t = press(&mut p, 12_000, 200);
    let fs = frames(&mut p);
    assert!(
        matches!(&fs[..], [f] if matches!(f.body, UplinkBody::Fall(FallEvent { cancelled: false, .. })))
    );
    assert!(fs[0].uptime_ms < t);
    assert!(matches!(p.mode(), PendantMode::CallPending { .. }));
}

#[test]
fn help_coming_confirms_only_a_pending_call_of_this_boot() {
    let mut p = pendant();
    press(&mut p, 0, 200);
    frames(&mut p);
    p.handle_help_coming(
        HelpComing {
            boot_id: 1,
            seq: 1,
            alert_id: 5,
        },
        1_000,
    );
    p.handle_help_coming(
        HelpComing {
            boot_id: 2,
            seq: 9,
            alert_id: 5,
        },
        1_000,
    );
    assert!(matches!(p.mode(), PendantMode::CallPending { .. }));
    p.handle_help_coming(
        HelpComing {
            boot_id: 2,
            seq: 1,
            alert_id: 5,
        },
        2_000,
    );
    assert_eq!(p.mode(), PendantMode::HelpComing { since: 2_000 });
    // A duplicate confirmation changes nothing but is counted.
    p.handle_help_coming(
        HelpComing {
            boot_id: 2,
            seq: 1,
            alert_id: 5,
        },
        2_500,
    );
    assert_eq!(p.mode(), PendantMode::HelpComing { since: 2_000 });
    assert_eq!(p.counters().unmatched_help, 3);
    assert_eq!(
        p.indication(2_000),
        Indication {
            led: true,
            buzzer: true
        }
    );
    assert_eq!(
        p.indication(5_000),
        Indication {
            led: true,
            buzzer: false
        }
    );
    p.handle_timeout(62_000);
    assert_eq!(p.mode(), PendantMode::Idle);
}

#[test]
fn a_confirmation_of_a_repeated_call_matches_any_of_its_frames() {
    let mut p = pendant();
    let t = press(&mut p, 0, 200);
    press(&mut p, t + 10_000, 200);
    assert!(matches!(
        p.mode(),
        PendantMode::CallPending {
            first_seq: 1,
            last_seq: 2,
            ..
        }
    ));
    // The confirmation for the first frame arrives after the second was sent.
    p.handle_help_coming(
        HelpComing {
            boot_id: 2,
            seq: 1,
            alert_id: 5,
        },
        20_000,
    );
    assert!(matches!(p.mode(), PendantMode::HelpComing { .. }));
}

#[test]
fn the_led_double_blinks_every_five_seconds_while_the_link_is_down() {
    let mut p = pendant();
    p.handle_link(false);
    let on: StdVec<u64> = (0..10_000)
        .step_by(50)
        .filter(|t| p.indication(*t).led)
        .collect();
    assert_eq!(on, [0, 50, 250, 300, 5_000, 5_050, 5_250, 5_300]);
    p.handle_link(true);
    assert!((0..10_000).all(|t| p.indication(t) == Indication::default()));
}

#[test]
fn the_countdown_beeps_once_a_second() {
    let mut p = pendant();
    p.handle_fall(detection(), 10_000);
    let beeps = (10_000..15_000)
        .step_by(100)
        .filter(|t| p.indication(*t).buzzer)
        .count();
    assert_eq!(beeps, 10);
}

#[test]
fn a_configured_cancel_window_is_used_for_the_next_fall() {
    let mut p = pendant();
    p.handle_config(
        &ConfigUpdate {
            fall_cancel_window_s: Some(10),
            ..ConfigUpdate::default()
        },
        0,
    );
    p.handle_fall(detection(), 1_000);
    p.handle_timeout(11_000);
    assert_eq!(frames(&mut p).len(), 1);
}

#[test]
fn heartbeats_carry_battery_and_radio_health_on_schedule() {
    let mut p = pendant();
    p.handle_health(2_950, -71);
    p.handle_timeout(3_599_999);
    assert!(frames(&mut p).is_empty());
    p.handle_timeout(3_600_000);
    let fs = frames(&mut p);
    assert!(
        matches!(&fs[0].body, UplinkBody::Heartbeat(h) if h.battery_mv == 2_950 && h.rssi_dbm == -71)
    );
}

#[test]
fn the_reference_fall_on_the_accelerometer_starts_the_countdown() {
    let mut p = pendant();
    let period = 1000 / crate::traces::FALL_RATE_HZ;
    let mut t = 0;
    for _ in 0..150 {
        p.handle_accel(crate::traces::STANDING, t);
        t += period;
    }
    let impact = t + 79 * period;
    for s in crate::traces::FALL {
        p.handle_accel(s, t);
        t += period;
    }
    // The wearer goes on lying as the trace ended.
    let lying = crate::traces::FALL[crate::traces::FALL.len() - 1];
    for _ in 0..500 {
        if matches!(p.mode(), PendantMode::FallCountdown { .. }) {
            break;
        }
        p.handle_accel(lying, t);
        t += period;
    }
    match p.mode() {
        PendantMode::FallCountdown { detection, started } => {
            assert!(
                detection.impact_at_ms.abs_diff(impact) <= 100,
                "{detection:?}"
            );
            assert!(detection.peak_mg > 2_500);
            assert!(detection.orientation_change_deg >= 45);
            assert!(started < t);
        }
        other => panic!("no countdown: {other:?}"),
    }
}
