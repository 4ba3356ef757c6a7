//! The scenario timeline lays out what the boards report and what the driver must do.

use std::path::PathBuf;
use std::time::Duration;

use vigil_protocol::{ButtonKind, SignalClass, UplinkBody};
use vigil_sim::behaviour::Activity;
use vigil_sim::scenario::Scenario;
use vigil_sim::timeline::{Action, Cadence, Scheduled, Timeline};

fn load(name: &str) -> (Scenario, Timeline) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).join(name);
    let s = Scenario::from_file(&path).unwrap();
    let start = s.start.expect("examples fix their start");
    let t = Timeline::build(&s, start, Cadence::default());
    (s, t)
}

fn drain(t: &mut Timeline) -> Vec<Scheduled> {
    let mut out = Vec::new();
    while let Some(s) = t.poll_action(Duration::MAX) {
        out.push(s);
    }
    out
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// (end of report, slots) of every meter reading of `device`.
fn meter_slots(actions: &[Scheduled], device: &str) -> Vec<(Duration, Vec<u32>)> {
    actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::Uplink {
                device: d,
                body: UplinkBody::Meter(m),
            } if d.as_str() == device => Some((s.at, m.slots_ml.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn actions_come_out_in_time_order_and_only_when_due() {
    let (_, mut t) = load("household-fall.toml");
    let first = t.next_deadline().unwrap();
    assert!(
        t.poll_action(first - secs(1)).is_none(),
        "nothing is due before the first deadline"
    );
    let mut last = Duration::ZERO;
    while let Some(next) = t.next_deadline() {
        let s = t.poll_action(next).unwrap();
        assert!(s.at >= last);
        last = s.at;
    }
    assert_eq!(t.remaining(), 0);
}

#[test]
fn the_same_scenario_and_start_give_the_same_actions() {
    let (_, mut a) = load("tap-left-running.toml");
    let (_, mut b) = load("tap-left-running.toml");
    assert_eq!(drain(&mut a), drain(&mut b));
}

#[test]
fn a_fall_is_reported_after_the_cancel_window_and_the_home_goes_quiet() {
    let (_, mut t) = load("household-fall.toml");
    assert_eq!(
        t.activity_at("res-0042", secs(150 * 60)),
        Some(Activity::Fallen)
    );
    assert_eq!(
        t.activity_at("res-0042", secs(4 * 3600)),
        Some(Activity::Fallen)
    );
    assert_ne!(
        t.activity_at("res-0042", secs(150 * 60 - 1)),
        Some(Activity::Fallen)
    );
    let actions = drain(&mut t);
    let falls: Vec<_> = actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::Uplink {
                device,
                body: UplinkBody::Fall(f),
            } => Some((s.at, device.as_str(), f.cancelled)),
            _ => None,
        })
        .collect();
    assert_eq!(falls, vec![(secs(150 * 60 + 30), "pendant-0042", false)]);
    let slots = meter_slots(&actions, "meter-0042");
    assert_eq!(slots.len(), 16, "a reading every 15 min for 4 h");
    let after_fall: u32 = slots
        .iter()
        .filter(|(at, _)| *at > secs(165 * 60))
        .flat_map(|(_, s)| s.iter())
        .sum();
    assert_eq!(after_fall, 0, "nobody uses water after lying still");
    let morning: u32 = slots
        .iter()
        .filter(|(at, _)| *at <= secs(150 * 60))
        .flat_map(|(_, s)| s.iter())
        .sum();
    assert!(
        morning > 0,
        "the resident uses water between 07:00 and the fall at 09:30"
    );
}

#[test]
fn a_tap_left_running_shows_in_every_minute_of_its_duration() {
    let (_, mut t) = load("tap-left-running.toml");
    let slots = meter_slots(&drain(&mut t), "meter-0107");
    let minutes: Vec<u32> = slots.into_iter().flat_map(|(_, s)| s).collect();
    assert_eq!(minutes.len(), 240);
    assert!(
        minutes[30..210].iter().all(|&m| m >= 6_000),
        "6 L every minute from 30 m to 3 h 30 m"
    );
}

#[test]
fn smoke_reaches_the_first_detector_then_a_second_of_the_same_zone() {
    let (_, mut t) = load("care-home-smoke.toml");
    let actions = drain(&mut t);
    let alarms: Vec<_> = actions
        .iter()
        .filter_map(|s| match &s.action {
            Action::Uplink {
                device,
                body: UplinkBody::Fire(r),
            } if r.signal == SignalClass::Alarm => {
                Some((s.at, device.as_str(), r.zone.as_str().to_owned()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        alarms,
        vec![
            (secs(300), "smoke-203", "f2-east".to_owned()),
            (secs(390), "smoke-2e-corr", "f2-east".to_owned()),
        ]
    );
}

#[test]
fn an_uplink_cut_brackets_a_call_made_during_it() {
    let (s, mut t) = load("gateway-outage-call.toml");
    let actions = drain(&mut t);
    let events: Vec<_> = actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::UplinkCut { gateway } => Some((a.at, format!("cut {gateway}"))),
            Action::UplinkRestored { gateway } => Some((a.at, format!("restored {gateway}"))),
            Action::Uplink {
                device,
                body: UplinkBody::Button(b),
            } if b.kind == ButtonKind::Press => Some((a.at, format!("press {device}"))),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (secs(15 * 60), "cut gw-0733".to_owned()),
            (secs(35 * 60), "press pendant-0733".to_owned()),
            (secs(75 * 60), "restored gw-0733".to_owned()),
        ]
    );
    let truth: Vec<_> = t
        .ground_truth()
        .iter()
        .flat_map(|g| g.alerts.iter().map(|a| a.kind))
        .collect();
    assert_eq!(truth, vec!["gateway_offline", "call"]);
    assert_eq!(s.incidents.len(), 2);
}

#[test]
fn a_resident_marked_away_uses_no_water_until_back() {
    let (_, mut t) = load("resident-away.toml");
    assert_eq!(
        t.activity_at("res-0520", secs(30 * 3600)),
        Some(Activity::Away)
    );
    assert_ne!(
        t.activity_at("res-0520", secs(52 * 3600)),
        Some(Activity::Away)
    );
    let actions = drain(&mut t);
    let away: Vec<_> = actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::SetAway { resident, until } => {
                Some((a.at, format!("away {resident} until {}", until.as_secs())))
            }
            Action::ClearAway { resident } => Some((a.at, format!("back {resident}"))),
            _ => None,
        })
        .collect();
    assert_eq!(
        away,
        vec![
            (secs(2 * 3600), "away res-0520 until 187200".to_owned()),
            (secs(52 * 3600), "back res-0520".to_owned())
        ]
    );
    let slots = meter_slots(&actions, "meter-0520");
    let during: u32 = slots
        .iter()
        .filter(|(at, _)| *at > secs(2 * 3600 + 900) && *at <= secs(52 * 3600))
        .flat_map(|(_, s)| s.iter())
        .sum();
    assert_eq!(during, 0);
    assert_eq!(
        slots.len(),
        60 * 4,
        "the meter keeps reporting while nobody is home"
    );
}

#[test]
fn a_dying_battery_falls_through_the_low_threshold_then_the_board_goes_silent() {
    let text = r#"
name = "battery"
duration = "10h"
start = 2026-03-02T00:00:00Z

[[site]]
id = "home-1"
kind = "household"
gateway = "gw-1"

[[resident]]
id = "res-1"
site = "home-1"

[[device]]
id = "pendant-1"
site = "home-1"
kind = "pendant"
resident = "res-1"

[[incident]]
kind = "battery_dying"
at = "2h"
device = "pendant-1"
duration = "4h"
"#;
    let s = Scenario::parse(text, "battery.toml").unwrap();
    let mut t = Timeline::build(&s, s.start.unwrap(), Cadence::default());
    let actions = drain(&mut t);
    let volts: Vec<(u64, u16)> = actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::Uplink {
                body: UplinkBody::Heartbeat(h),
                ..
            } => Some((a.at.as_secs() / 3600, h.battery_mv)),
            _ => None,
        })
        .collect();
    assert_eq!(
        volts,
        vec![(1, 3000), (2, 3000), (3, 2750), (4, 2500), (5, 2250)]
    );
    assert!(actions
        .iter()
        .any(|a| a.at == secs(6 * 3600) && matches!(a.action, Action::BoardSilent { .. })));
    let kinds: Vec<_> = t.ground_truth()[0]
        .alerts
        .iter()
        .map(|a| (a.kind, a.from.as_secs() / 3600))
        .collect();
    assert_eq!(kinds, vec![("low_battery", 4), ("device_offline", 6)]);
}
