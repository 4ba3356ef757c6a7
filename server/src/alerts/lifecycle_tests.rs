use super::*;
use crate::alerts::audit::AuditLog;
use crate::alerts::book::{AlertBook, BookEvent, BookSnapshot};
use crate::alerts::Subject;
use crate::detection::action::{details, DetectorAction};
use crate::escalation::StopReason;
use crate::ids::{DeviceId, SiteId};

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn key(kind: AlertKind) -> AlertKey {
    AlertKey::new(Subject::Device(DeviceId::new("dev-1").unwrap()), kind)
}

fn raise(kind: AlertKind, severity: Severity, at: u64) -> DetectorAction {
    DetectorAction::Raise {
        site: SiteId::new("site-1").unwrap(),
        key: key(kind),
        severity,
        at: t(at),
        origin: None,
        details: details([]),
    }
}

fn clear(kind: AlertKind, at: u64) -> DetectorAction {
    DetectorAction::Clear {
        site: SiteId::new("site-1").unwrap(),
        key: key(kind),
        at: t(at),
        reason: ClearReason::ReturnedToNormal,
        details: details([]),
    }
}

fn alert_in(state: AlertState) -> Alert {
    Alert {
        id: AlertId(7),
        site: SiteId::new("site-1").unwrap(),
        key: key(AlertKind::Call),
        severity: Severity::Critical,
        state,
        opened_at: t(0),
        last_seen_at: t(0),
        repeat_count: 0,
        origin: None,
        details: details([]),
        cleared: None,
        acknowledged: None,
        dispatched_to: vec![],
        disposition: None,
        closed_at: None,
        closed_by: None,
    }
}

fn op() -> Actor {
    Actor::User("operator-1".into())
}

fn audits(book: &mut AlertBook, log: &mut AuditLog) -> Vec<BookEvent> {
    let events: Vec<BookEvent> = std::iter::from_fn(|| book.poll_event()).collect();
    for e in &events {
        if let BookEvent::Audit(r) = e {
            log.append(r.clone());
        }
    }
    events
}

#[test]
fn every_state_and_action_pair_follows_the_transition_table() {
    use AlertState as S;
    let responder = ResponderId::new("nurse-1").unwrap();
    let actions = [
        OperatorAction::Acknowledge,
        OperatorAction::Dispatch { responder },
        OperatorAction::OnScene,
        OperatorAction::Resolve {
            disposition: Disposition::RealEmergency,
        },
        OperatorAction::Resolve {
            disposition: Disposition::FalseAlarm,
        },
        OperatorAction::Resolve {
            disposition: Disposition::ResidentCancelled,
        },
    ];
    // Rows: from-state; columns: the actions above. None = refused.
    let table: [(S, [Option<S>; 6]); 7] = [
        (
            S::Open,
            [
                Some(S::Acknowledged),
                None,
                None,
                Some(S::Resolved),
                Some(S::FalseAlarm),
                Some(S::Cancelled),
            ],
        ),
        (
            S::Acknowledged,
            [
                None,
                Some(S::Dispatched),
                None,
                Some(S::Resolved),
                Some(S::FalseAlarm),
                Some(S::Cancelled),
            ],
        ),
        (
            S::Dispatched,
            [
                None,
                None,
                Some(S::OnScene),
                Some(S::Resolved),
                Some(S::FalseAlarm),
                Some(S::Cancelled),
            ],
        ),
        (
            S::OnScene,
            [
                None,
                None,
                None,
                Some(S::Resolved),
                Some(S::FalseAlarm),
                Some(S::Cancelled),
            ],
        ),
        (S::Resolved, [None; 6]),
        (S::Cancelled, [None; 6]),
        (S::FalseAlarm, [None; 6]),
    ];
    for (from, row) in table {
        for (action, expected) in actions.iter().zip(row) {
            let mut a = alert_in(from);
            let got = a.apply(action, op(), None, t(10));
            match (expected, got) {
                (Some(to), Ok(rec)) => {
                    assert_eq!(a.state, to, "{from} + {}", action.name());
                    assert_eq!((rec.from, rec.to), (Some(from), to));
                    assert_eq!(rec.actor, op());
                }
                (None, Err(LifecycleError::InvalidTransition { from: f, .. })) => {
                    assert_eq!(f, from);
                    assert_eq!(a.state, from, "a refused action must not change the state");
                }
                (expected, got) => panic!(
                    "{from} + {}: expected {expected:?}, got {got:?}",
                    action.name()
                ),
            }
        }
    }
}

#[test]
fn a_refusal_says_what_was_expected_and_what_was_found() {
    let mut a = alert_in(AlertState::Open);
    let err = a
        .apply(&OperatorAction::OnScene, op(), None, t(1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "alert 7 is open: cannot on_scene it (allowed from: dispatched)"
    );
}

#[test]
fn resolving_records_disposition_closer_and_time() {
    let mut a = alert_in(AlertState::OnScene);
    let rec = a
        .apply(
            &OperatorAction::Resolve {
                disposition: Disposition::Test,
            },
            op(),
            Some("monthly test".into()),
            t(99),
        )
        .unwrap();
    assert_eq!(a.disposition, Some(Disposition::Test));
    assert_eq!(a.closed_at, Some(t(99)));
    assert_eq!(a.closed_by, Some(op()));
    assert_eq!(rec.note.as_deref(), Some("monthly test"));
}

#[test]
fn a_note_needs_text_and_keeps_the_state() {
    let mut a = alert_in(AlertState::Dispatched);
    assert_eq!(
        a.apply(&OperatorAction::Note, op(), None, t(1)),
        Err(LifecycleError::EmptyNote)
    );
    let rec = a
        .apply(
            &OperatorAction::Note,
            op(),
            Some("neighbour has a key".into()),
            t(2),
        )
        .unwrap();
    assert_eq!(
        (rec.from, rec.to),
        (Some(AlertState::Dispatched), AlertState::Dispatched)
    );
}

#[test]
fn repeats_update_one_open_alert_per_subject_and_kind() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let mut log = AuditLog::new();
    book.handle_detection(raise(AlertKind::Tamper, Severity::Minor, 0), t(0));
    book.handle_detection(raise(AlertKind::Tamper, Severity::Major, 60), t(60));
    book.handle_detection(raise(AlertKind::Tamper, Severity::Warning, 30), t(120));
    book.handle_detection(raise(AlertKind::LowBattery, Severity::Warning, 5), t(120));
    audits(&mut book, &mut log);
    let tamper = book.open_alert(&key(AlertKind::Tamper)).unwrap();
    assert_eq!(tamper.repeat_count, 2);
    assert_eq!(
        tamper.severity,
        Severity::Major,
        "a repeat never lowers the severity"
    );
    assert_eq!(
        tamper.last_seen_at,
        t(60),
        "a late repeat does not move last-seen back"
    );
    assert_eq!(book.open_alerts().count(), 2);
    let changes: Vec<_> = log.for_alert(tamper.id).map(|r| r.change.clone()).collect();
    assert_eq!(changes.len(), 3);
}

#[test]
fn a_rule_clearing_is_recorded_but_the_operator_closes_the_alert() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(raise(AlertKind::FireTrouble, Severity::Minor, 0), t(0));
    book.handle_detection(clear(AlertKind::FireTrouble, 30), t(30));
    let a = book.open_alert(&key(AlertKind::FireTrouble)).unwrap();
    assert_eq!(a.state, AlertState::Open);
    assert_eq!(a.cleared.as_ref().map(|c| c.at), Some(t(30)));
    // The condition comes back: the clearing is withdrawn.
    book.handle_detection(raise(AlertKind::FireTrouble, Severity::Minor, 40), t(40));
    assert_eq!(
        book.open_alert(&key(AlertKind::FireTrouble))
            .unwrap()
            .cleared,
        None
    );
}

#[test]
fn an_auto_close_kind_closes_and_shows_nobody_acknowledged_it() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let mut log = AuditLog::new();
    book.handle_detection(raise(AlertKind::DeviceOffline, Severity::Minor, 0), t(0));
    book.handle_detection(clear(AlertKind::DeviceOffline, 90), t(90));
    let events = audits(&mut book, &mut log);
    assert!(book.open_alert(&key(AlertKind::DeviceOffline)).is_none());
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            BookEvent::Upserted(a) => Some(a.clone()),
            BookEvent::Audit(_)
            | BookEvent::StartEscalation(_)
            | BookEvent::StopEscalation(..)
            | BookEvent::Downlink(_) => None,
        })
        .unwrap();
    assert_eq!(last.state, AlertState::Resolved);
    assert_eq!(last.disposition, Some(Disposition::ConditionCleared));
    assert!(last.closed_unacknowledged());
    assert!(events.contains(&BookEvent::StopEscalation(last.id, StopReason::Closed)));
    let actors: Vec<_> = log.records().iter().map(|r| r.actor.clone()).collect();
    assert_eq!(actors, vec![Actor::Rule; 3]);
}

#[test]
fn life_safety_kinds_can_never_be_configured_to_auto_close() {
    for kind in [
        AlertKind::Call,
        AlertKind::Fall,
        AlertKind::FireConfirmed,
        AlertKind::FireAlarm,
    ] {
        assert_eq!(
            AlertPolicy::with_auto_close([AlertKind::LowBattery, kind]),
            Err(AutoCloseRefused(kind))
        );
    }
    assert!(AlertPolicy::with_auto_close([AlertKind::Tamper]).is_ok());
    let from_file = r#"{"auto_close":["low_battery","call"]}"#;
    let err = serde_json::from_str::<AlertPolicy>(from_file).unwrap_err();
    assert!(
        err.to_string().contains("call must never auto-close"),
        "{err}"
    );
    let json = serde_json::to_string(&AlertPolicy::default()).unwrap();
    assert_eq!(
        serde_json::from_str::<AlertPolicy>(&json).unwrap(),
        AlertPolicy::default()
    );
}

#[test]
fn a_new_alert_is_raised_after_the_previous_one_closed() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 0), t(0));
    let first = book.open_alert(&key(AlertKind::Call)).unwrap().id;
    let resolve = OperatorAction::Resolve {
        disposition: Disposition::FalseAlarm,
    };
    book.handle_operator(first, &resolve, op(), None, t(10))
        .unwrap();
    assert_eq!(
        book.handle_operator(first, &resolve, op(), None, t(11)),
        Err(LifecycleError::UnknownAlert(first))
    );
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 20), t(20));
    let second = book.open_alert(&key(AlertKind::Call)).unwrap();
    assert_ne!(second.id, first);
    assert_eq!(second.repeat_count, 0);
}

#[test]
fn acknowledging_stops_escalation_and_is_remembered_once() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let mut log = AuditLog::new();
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 0), t(0));
    let id = book.open_alert(&key(AlertKind::Call)).unwrap().id;
    let events = audits(&mut book, &mut log);
    assert!(events.contains(&BookEvent::StartEscalation(id)));
    book.handle_operator(id, &OperatorAction::Acknowledge, op(), None, t(42))
        .unwrap();
    let events = audits(&mut book, &mut log);
    assert!(events.contains(&BookEvent::StopEscalation(id, StopReason::Acknowledged)));
    let a = book.get(id).unwrap();
    assert_eq!(a.acknowledged.as_ref().map(|k| k.at), Some(t(42)));
}

#[test]
fn the_book_is_rebuilt_from_its_snapshot_without_reusing_ids() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(raise(AlertKind::Tamper, Severity::Major, 0), t(0));
    let json = serde_json::to_string(&book.snapshot()).unwrap();
    let snapshot: BookSnapshot = serde_json::from_str(&json).unwrap();
    let mut book = AlertBook::restore(AlertPolicy::default(), snapshot);
    // Ids come from the store, which never hands out one it handed out before.
    book.grant_ids(2..10);
    book.handle_detection(raise(AlertKind::Tamper, Severity::Major, 5), t(5));
    assert_eq!(
        book.open_alert(&key(AlertKind::Tamper))
            .unwrap()
            .repeat_count,
        1
    );
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 6), t(6));
    assert_eq!(
        book.open_alert(&key(AlertKind::Call)).unwrap().id,
        AlertId(2)
    );
}

#[test]
fn a_clear_without_an_open_alert_is_counted() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(clear(AlertKind::Tamper, 0), t(0));
    assert_eq!(book.counters().clears_without_alert, 1);
    assert!(book.poll_event().is_none());
}

#[test]
fn an_alert_that_becomes_more_urgent_is_offered_to_escalation_again() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let mut log = AuditLog::new();
    book.handle_detection(raise(AlertKind::Tamper, Severity::Warning, 0), t(0));
    let id = book.open_alert(&key(AlertKind::Tamper)).unwrap().id;
    let starts = |events: &[BookEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, BookEvent::StartEscalation(_)))
            .count()
    };
    assert_eq!(starts(&audits(&mut book, &mut log)), 1);
    book.handle_detection(raise(AlertKind::Tamper, Severity::Warning, 10), t(10));
    assert_eq!(starts(&audits(&mut book, &mut log)), 0, "same severity");
    book.handle_detection(raise(AlertKind::Tamper, Severity::Major, 20), t(20));
    assert_eq!(starts(&audits(&mut book, &mut log)), 1, "more urgent");
    book.handle_operator(id, &OperatorAction::Acknowledge, op(), None, t(30))
        .unwrap();
    let _ = audits(&mut book, &mut log);
    book.handle_detection(raise(AlertKind::Tamper, Severity::Critical, 40), t(40));
    assert_eq!(
        starts(&audits(&mut book, &mut log)),
        0,
        "already acknowledged"
    );
}

#[test]
fn only_a_person_answers_an_alert() {
    // (actor, action from open, answered?)
    let resolve = OperatorAction::Resolve {
        disposition: Disposition::FalseAlarm,
    };
    let cases = [
        (op(), OperatorAction::Acknowledge, true),
        (op(), resolve.clone(), true),
        (
            Actor::Responder(ResponderId::new("nurse-1").unwrap()),
            OperatorAction::Acknowledge,
            true,
        ),
        (Actor::Rule, resolve.clone(), false),
        (op(), OperatorAction::Note, false),
    ];
    for (actor, action, answered) in cases {
        let mut a = alert_in(AlertState::Open);
        a.apply(&action, actor.clone(), Some("n".into()), t(5))
            .unwrap();
        assert_eq!(
            a.acknowledged.is_some(),
            answered,
            "{actor:?} {}",
            action.name()
        );
        if answered {
            assert_eq!(
                a.acknowledged,
                Some(Acknowledgement {
                    by: actor,
                    at: t(5)
                })
            );
        }
    }
}

#[test]
fn a_clearing_older_than_the_last_sighting_is_ignored() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 0), t(0));
    book.handle_detection(raise(AlertKind::Call, Severity::Critical, 20), t(20));
    book.handle_detection(clear(AlertKind::Call, 10), t(25));
    assert_eq!(
        book.open_alert(&key(AlertKind::Call)).unwrap().cleared,
        None
    );
    assert_eq!(book.counters().stale_clears, 1);
    // Exactly at the last sighting still counts.
    book.handle_detection(clear(AlertKind::Call, 20), t(26));
    assert!(book
        .open_alert(&key(AlertKind::Call))
        .unwrap()
        .cleared
        .is_some());
}

#[test]
fn a_sighting_dated_in_the_future_is_clamped_to_now() {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    book.handle_detection(raise(AlertKind::Tamper, Severity::Major, 3600), t(10));
    let a = book.open_alert(&key(AlertKind::Tamper)).unwrap();
    assert_eq!((a.opened_at, a.last_seen_at), (t(10), t(10)));
    book.handle_detection(clear(AlertKind::Tamper, 20), t(20));
    assert!(book
        .open_alert(&key(AlertKind::Tamper))
        .unwrap()
        .cleared
        .is_some());
}
