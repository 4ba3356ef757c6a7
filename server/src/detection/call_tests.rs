use super::*;
use crate::alerts::audit::Actor;
use crate::alerts::book::{AlertBook, BookEvent};
use crate::alerts::lifecycle::{AlertPolicy, AlertState, OperatorAction};
use crate::detection::testkit::{at_s, ctx, drain, resident};
use vigil_protocol::{DownlinkBody, HelpComing};

fn press() -> ButtonEvent {
    ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    }
}

fn cancel(seq: Option<u32>) -> ButtonEvent {
    ButtonEvent {
        kind: ButtonKind::Cancel,
        cancels_seq: seq,
    }
}

fn fall(cancelled: bool) -> FallEvent {
    FallEvent {
        free_fall_ms: 350,
        peak_mg: 4200,
        stillness_ms: 20_000,
        orientation_change_deg: 80,
        cancelled,
    }
}

fn actions(d: &mut CallDetector) -> Vec<DetectorAction> {
    drain(|| d.poll_action())
}

fn raised_kinds(actions: &[DetectorAction]) -> Vec<(AlertKind, Severity)> {
    actions
        .iter()
        .filter_map(|a| match a {
            DetectorAction::Raise { key, severity, .. } => Some((key.kind, *severity)),
            DetectorAction::Clear { .. } => None,
        })
        .collect()
}

#[test]
fn a_press_raises_a_critical_call_alert_at_once() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_button(&ctx("pendant-1", 1, 0), &press(), at_s(0));
    let a = actions(&mut d);
    assert_eq!(
        raised_kinds(&a),
        vec![(AlertKind::Call, Severity::Critical)]
    );
    match &a[0] {
        DetectorAction::Raise { key, origin, .. } => {
            assert_eq!(key.subject, Subject::Resident(resident()));
            assert_eq!(origin.as_ref().map(|o| o.seq), Some(1));
        }
        DetectorAction::Clear { .. } => panic!("expected a raise"),
    }
}

#[test]
fn merging_keeps_the_first_kind_and_marks_the_second() {
    // (first, second, seconds apart, expected kinds raised, merged marker)
    let cases = [
        (
            Signal::Fall,
            Signal::Call,
            30,
            vec![AlertKind::Fall, AlertKind::Fall],
            Some("also_call"),
        ),
        (
            Signal::Call,
            Signal::Fall,
            30,
            vec![AlertKind::Call, AlertKind::Call],
            Some("also_fall"),
        ),
        // The window is half-open: exactly at its end a new incident starts.
        (
            Signal::Fall,
            Signal::Call,
            299,
            vec![AlertKind::Fall, AlertKind::Fall],
            Some("also_call"),
        ),
        (
            Signal::Fall,
            Signal::Call,
            300,
            vec![AlertKind::Fall, AlertKind::Call],
            None,
        ),
        (
            Signal::Call,
            Signal::Call,
            10,
            vec![AlertKind::Call, AlertKind::Call],
            None,
        ),
    ];
    for (first, second, gap, expected, marker) in cases {
        let mut d = CallDetector::new(CallConfig::default());
        let feed = |d: &mut CallDetector, s: Signal, seq: u32, t: u64| match s {
            Signal::Call => d.handle_button(&ctx("p", seq, t), &press(), at_s(t)),
            Signal::Fall => d.handle_fall(&ctx("p", seq, t), &fall(false), at_s(t)),
        };
        feed(&mut d, first, 1, 0);
        feed(&mut d, second, 2, gap);
        let a = actions(&mut d);
        let kinds: Vec<AlertKind> = raised_kinds(&a).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, expected, "{first:?} then {second:?} after {gap} s");
        let DetectorAction::Raise { details, .. } = &a[1] else {
            panic!("expected a raise")
        };
        if let Some(m) = marker {
            assert!(
                details.contains_key(m),
                "{m} missing after {gap} s: {details:?}"
            );
        }
    }
}

#[test]
fn fall_then_call_is_one_alert_in_the_book_with_one_repeat() {
    let mut d = CallDetector::new(CallConfig::default());
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    d.handle_fall(&ctx("p", 1, 0), &fall(false), at_s(0));
    d.handle_button(&ctx("p", 2, 20), &press(), at_s(20));
    for a in actions(&mut d) {
        book.handle_detection(a, at_s(20));
    }
    let open: Vec<_> = book.open_alerts().collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].key.kind, AlertKind::Fall);
    assert_eq!(open[0].repeat_count, 1);
    assert!(open[0].details.contains_key("also_call"));
}

#[test]
fn a_cancel_is_recorded_but_the_call_stays_open_for_the_operator() {
    let mut d = CallDetector::new(CallConfig::default());
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    d.handle_button(&ctx("p", 1, 0), &press(), at_s(0));
    d.handle_button(&ctx("p", 2, 12), &cancel(Some(1)), at_s(12));
    for a in actions(&mut d) {
        book.handle_detection(a, at_s(12));
    }
    let alert = book.open_alerts().next().expect("still open");
    assert_eq!(alert.state, AlertState::Open);
    assert_eq!(
        alert.cleared.as_ref().map(|c| c.reason),
        Some(ClearReason::ResidentCancelled)
    );
}

#[test]
fn a_cancel_without_a_seq_cancels_the_incident_in_progress() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_fall(&ctx("p", 1, 0), &fall(false), at_s(0));
    d.handle_button(&ctx("p", 2, 5), &cancel(None), at_s(5));
    let a = actions(&mut d);
    assert!(matches!(
        &a[1],
        DetectorAction::Clear { key, reason: ClearReason::ResidentCancelled, .. } if key.kind == AlertKind::Fall
    ));
}

#[test]
fn a_cancel_for_an_unknown_frame_changes_nothing_and_is_counted() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_button(&ctx("p", 7, 0), &cancel(Some(99)), at_s(0));
    assert!(actions(&mut d).is_empty());
    assert_eq!(d.state().counters.cancels_without_alert, 1);
}

#[test]
fn a_duplicate_frame_is_ignored() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_button(&ctx("p", 1, 0), &press(), at_s(0));
    d.handle_button(&ctx("p", 1, 0), &press(), at_s(3));
    assert_eq!(actions(&mut d).len(), 1);
    assert_eq!(d.state().counters.duplicates, 1);
}

#[test]
fn a_fall_cancelled_on_the_pendant_raises_nothing() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_fall(&ctx("p", 1, 0), &fall(true), at_s(0));
    assert!(actions(&mut d).is_empty());
    assert_eq!(d.state().counters.falls_cancelled_on_pendant, 1);
}

#[test]
fn a_late_call_is_raised_with_its_real_time_and_marked_late() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_button(&ctx("p", 1, 0), &press(), at_s(600));
    let a = actions(&mut d);
    let DetectorAction::Raise { at, details, .. } = &a[0] else {
        panic!("expected a raise")
    };
    assert_eq!(*at, at_s(0));
    assert_eq!(
        details.get("reported_late_s").map(String::as_str),
        Some("600")
    );
}

#[test]
fn the_merge_window_survives_a_restart_and_expires_on_time() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_fall(&ctx("p", 1, 0), &fall(false), at_s(0));
    let _ = actions(&mut d);
    let json = serde_json::to_string(d.state()).unwrap();
    let mut d = CallDetector::restore(CallConfig::default(), serde_json::from_str(&json).unwrap());
    assert_eq!(d.next_deadline(), Some(at_s(300)));
    d.handle_timeout(at_s(299));
    assert_eq!(d.next_deadline(), Some(at_s(300)));
    d.handle_button(&ctx("p", 2, 299), &press(), at_s(299));
    assert_eq!(
        raised_kinds(&actions(&mut d)),
        vec![(AlertKind::Fall, Severity::Critical)]
    );
    d.handle_timeout(at_s(300));
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn acknowledging_a_call_sends_help_is_coming_to_the_pendant() {
    let mut d = CallDetector::new(CallConfig::default());
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    d.handle_button(&ctx("pendant-9", 4, 0), &press(), at_s(0));
    for a in actions(&mut d) {
        book.handle_detection(a, at_s(0));
    }
    let id = book.open_alerts().next().unwrap().id;
    let _ = drain(|| book.poll_event());
    book.handle_operator(
        id,
        &OperatorAction::Acknowledge,
        Actor::User("op".into()),
        None,
        at_s(20),
    )
    .unwrap();
    let downlinks: Vec<_> = drain(|| book.poll_event())
        .into_iter()
        .filter_map(|e| match e {
            BookEvent::Downlink(f) => Some(f),
            BookEvent::Audit(_)
            | BookEvent::Upserted(_)
            | BookEvent::StartEscalation(_)
            | BookEvent::StopEscalation(..) => None,
        })
        .collect();
    assert_eq!(downlinks.len(), 1);
    assert_eq!(downlinks[0].device_id.as_str(), "pendant-9");
    assert_eq!(
        downlinks[0].body,
        DownlinkBody::HelpComing(HelpComing {
            boot_id: 1,
            seq: 4,
            alert_id: id.0
        })
    );
}

#[test]
fn a_residents_call_state_stays_under_one_kibibyte_when_full() {
    let mut d = CallDetector::new(CallConfig::default());
    for seq in 0..40 {
        d.handle_button(
            &ctx("pendant-with-a-long-name-0001", seq, 0),
            &press(),
            at_s(u64::from(seq)),
        );
        d.handle_fall(
            &ctx("pendant-with-a-long-name-0001", 100 + seq, 0),
            &fall(false),
            at_s(u64::from(seq)),
        );
    }
    let _ = actions(&mut d);
    let s = d.state();
    assert_eq!(s.recent.len(), REMEMBERED_FRAMES);
    let incident_heap = s.incident.as_ref().map_or(0, |i| match &i.key.subject {
        Subject::Resident(r) => r.as_str().len(),
        Subject::Device(_) | Subject::Zone { .. } | Subject::Gateway(_) | Subject::Site(_) => 0,
    });
    let bytes = std::mem::size_of::<CallState>()
        + s.recent.capacity() * std::mem::size_of::<SeenFrame>()
        + std::mem::size_of::<Incident>()
        + incident_heap;
    eprintln!("call detector state: {bytes} bytes per resident");
    assert!(bytes <= 1024, "{bytes} bytes per resident");
}

#[test]
fn a_long_press_cancels_only_within_the_cancel_window() {
    // (seconds from the press to the long press, cancels?)
    for (gap, cancels) in [(0, true), (30, true), (31, false), (200, false)] {
        let mut d = CallDetector::new(CallConfig::default());
        d.handle_button(&ctx("p", 1, 0), &press(), at_s(0));
        let long = ButtonEvent {
            kind: ButtonKind::LongPress,
            cancels_seq: None,
        };
        d.handle_button(&ctx("p", 2, gap), &long, at_s(gap));
        let a = actions(&mut d);
        let cleared = a.iter().any(|a| {
            matches!(
                a,
                DetectorAction::Clear {
                    reason: ClearReason::ResidentCancelled,
                    ..
                }
            )
        });
        assert_eq!(cleared, cancels, "long press {gap} s after the call");
        assert_eq!(d.state().counters.long_presses, u64::from(!cancels));
    }
}

#[test]
fn a_fall_dated_in_the_future_still_merges_with_the_call_that_follows() {
    let mut d = CallDetector::new(CallConfig::default());
    d.handle_fall(&ctx("p", 1, 86_400), &fall(false), at_s(0));
    d.handle_button(&ctx("p", 2, 10), &press(), at_s(10));
    let a = actions(&mut d);
    assert_eq!(
        raised_kinds(&a),
        vec![(AlertKind::Fall, Severity::Critical); 2]
    );
    let DetectorAction::Raise { at, .. } = &a[0] else {
        panic!("expected a raise")
    };
    assert_eq!(*at, at_s(0));
}
