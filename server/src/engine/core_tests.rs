use std::time::Duration;

use vigil_protocol::{ButtonEvent, ButtonKind, DownlinkBody, Heartbeat, UplinkBody};

use super::*;
use crate::alerts::audit::AuditChange;
use crate::alerts::{AlertKind, Subject};
use crate::detection::health::HealthConfig;
use crate::engine::testkit::{at, directory, frame, pendant, T0};

fn press() -> UplinkBody {
    UplinkBody::Button(ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    })
}

fn heartbeat() -> UplinkBody {
    UplinkBody::Heartbeat(Heartbeat {
        battery_mv: 3700,
        rssi_dbm: -60,
        firmware: vigil_protocol::ids::FirmwareVersion::new("1.0.0").unwrap(),
    })
}

fn core() -> EngineCore {
    let mut core = EngineCore::new(DetectionConfig::default(), AlertPolicy::default());
    assert!(core.grant_ids(1..1_000, &directory(), at(0)).is_empty());
    core
}

#[test]
fn a_press_raises_a_call_alert_and_starts_escalation_at_tier_zero() {
    let dir = directory();
    let mut core = core();
    let step = core.handle_frame(&frame(pendant(), 31, T0, press()), &dir, at(0));
    let call = step
        .changes
        .alerts
        .iter()
        .find(|a| a.key.kind == AlertKind::Call)
        .expect("a call alert");
    assert_eq!(
        call.key.subject,
        Subject::Resident("mrs-li".parse().unwrap())
    );
    assert_eq!(step.changes.started.len(), 1);
    let started = &step.changes.started[0];
    assert_eq!(started.task.alert, call.id);
    assert_eq!(started.notify.len(), 1);
    assert_eq!(started.notify[0].responder.as_str(), "carer-a");
    assert_eq!(started.task.next_due(), Some((0, at(2))));
    assert!(step.downlinks.is_empty());
}

#[test]
fn acknowledging_a_call_stops_escalation_and_tells_the_pendant_help_is_coming() {
    let dir = directory();
    let mut core = core();
    let step = core.handle_frame(&frame(pendant(), 31, T0, press()), &dir, at(0));
    let id = step.changes.alerts[0].id;
    let step = core
        .handle_operator(
            id,
            &OperatorAction::Acknowledge,
            Actor::User("op-1".into()),
            None,
            &dir,
            at(5),
        )
        .unwrap();
    assert_eq!(step.changes.stopped, vec![id]);
    assert!(step
        .changes
        .audit
        .iter()
        .any(|r| matches!(r.change, AuditChange::Transition { .. })));
    assert_eq!(step.downlinks.len(), 1);
    assert_eq!(step.downlinks[0].topic, "vigil/v1/dev/p-1/down");
    assert!(matches!(
        step.downlinks[0].frame.body,
        DownlinkBody::HelpComing(h) if h.seq == 31 && h.boot_id == 1 && h.alert_id == id.0
    ));
    // A second acknowledgement is refused with the lifecycle's error.
    let again = core.handle_operator(
        id,
        &OperatorAction::Acknowledge,
        Actor::User("op-2".into()),
        None,
        &dir,
        at(6),
    );
    assert!(matches!(
        again,
        Err(LifecycleError::InvalidTransition { .. })
    ));
}

#[test]
fn help_coming_goes_back_through_the_gateway_that_forwarded_the_call() {
    let dir = directory();
    let mut core = core();
    let mut f = frame(pendant(), 4, T0, press());
    f.via = Some(("home-1".parse().unwrap(), "gw-1".parse().unwrap()));
    let step = core.handle_frame(&f, &dir, at(0));
    let id = step.changes.alerts[0].id;
    let step = core
        .handle_operator(
            id,
            &OperatorAction::Acknowledge,
            Actor::User("op".into()),
            None,
            &dir,
            at(1),
        )
        .unwrap();
    assert_eq!(step.downlinks[0].topic, "vigil/v1/site/home-1/gw/gw-1/down");
}

#[test]
fn a_registered_pendant_never_heard_goes_offline_exactly_on_time() {
    let dir = directory();
    let mut core = core();
    let step = core.handle_registry(&dir, at(0));
    assert!(step.is_empty());
    let pendant_limit =
        HealthConfig::default().pendant.heartbeat_interval * 2 + HealthConfig::default().grace;
    let due = core.next_deadline().unwrap();
    assert_eq!(due, at(0) + pendant_limit);
    let early = core.handle_timeout(&dir, due - Duration::from_millis(1));
    assert!(early.changes.alerts.is_empty());
    let step = core.handle_timeout(&dir, due);
    // The meter, never heard either, may share the pendant's deadline (both hourly boards).
    let offline: Vec<_> = step
        .changes
        .alerts
        .iter()
        .filter(|a| {
            a.key.kind == AlertKind::DeviceOffline && a.key.subject == Subject::Device(pendant())
        })
        .collect();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].opened_at, due);
}

#[test]
fn a_heartbeat_moves_the_offline_deadline_and_a_stranger_is_counted() {
    let dir = directory();
    let mut core = core();
    let _ = core.handle_registry(&dir, at(0));
    let first = core.next_deadline().unwrap();
    let _ = core.handle_frame(
        &frame(pendant(), 1, T0 + 600_000, heartbeat()),
        &dir,
        at(600),
    );
    let step = core.handle_frame(
        &frame("stranger".parse().unwrap(), 1, T0, heartbeat()),
        &dir,
        at(601),
    );
    assert!(step.is_empty());
    assert_eq!(core.counters().unknown_devices, 1);
    // At the deadline it had before, the pendant heard 600 s later is not offline.
    let step = core.handle_timeout(&dir, first);
    assert!(
        !step.changes.alerts.iter().any(|a| {
            a.key.kind == AlertKind::DeviceOffline && a.key.subject == Subject::Device(pendant())
        }),
        "{:?}",
        step.changes.alerts
    );
}

#[test]
fn call_detector_state_survives_a_restart_and_merges_a_fall_into_the_call() {
    let dir = directory();
    let mut core1 = core();
    let step = core1.handle_frame(&frame(pendant(), 1, T0, press()), &dir, at(0));
    let snapshot = crate::alerts::book::BookSnapshot {
        open: step.changes.alerts.clone(),
    };
    let states = core1.detectors().take_changed_states();
    assert!(states
        .iter()
        .any(|(k, _)| matches!(k, crate::engine::DetectorKey::Call(_))));
    let mut core2 =
        EngineCore::restore(DetectionConfig::default(), AlertPolicy::default(), snapshot);
    assert!(core2.grant_ids(1_000..2_000, &dir, at(1)).is_empty());
    for (key, state) in states {
        let json = serde_json::to_string(&state).unwrap();
        core2.detectors().restore_stored(&key.storage_key(), &json);
    }
    let fall = UplinkBody::Fall(vigil_protocol::FallEvent {
        free_fall_ms: 400,
        peak_mg: 3500,
        stillness_ms: 10_000,
        orientation_change_deg: 80,
        cancelled: false,
    });
    let step = core2.handle_frame(&frame(pendant(), 2, T0 + 60_000, fall), &dir, at(60));
    let alerts: Vec<_> = step
        .changes
        .alerts
        .iter()
        .filter(|a| matches!(a.key.kind, AlertKind::Call | AlertKind::Fall))
        .collect();
    assert_eq!(alerts.len(), 1, "the fall joins the open call");
    assert_eq!(alerts[0].key.kind, AlertKind::Call);
    assert_eq!(alerts[0].repeat_count, 1);
    assert!(step.changes.started.is_empty());
}

#[test]
fn a_press_with_no_alert_id_left_waits_and_is_raised_when_ids_are_granted() {
    let dir = directory();
    let mut core = EngineCore::new(DetectionConfig::default(), AlertPolicy::default());
    let step = core.handle_frame(&frame(pendant(), 31, T0, press()), &dir, at(0));
    assert!(
        step.changes.alerts.is_empty(),
        "no alert without a granted id"
    );
    assert_eq!(core.book().ids_wanted(), 1);
    let step = core.grant_ids(500..501, &dir, at(1));
    let call = step
        .changes
        .alerts
        .iter()
        .find(|a| a.key.kind == AlertKind::Call)
        .expect("the waiting call opens");
    assert_eq!(call.id, AlertId(500));
    assert_eq!(call.opened_at, at(0));
    assert_eq!(step.changes.started.len(), 1, "and escalates");
    assert_eq!(core.book().ids_wanted(), 0);
}
