//! Properties of the alert book under arbitrary sequences of detector and operator inputs.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_server::alerts::audit::{Actor, AuditChange, AuditRecord};
use vigil_server::alerts::book::{AlertBook, BookEvent};
use vigil_server::alerts::kpi::{kpis_by_site, Period};
use vigil_server::alerts::lifecycle::{
    AlertId, AlertPolicy, AlertState, Disposition, OperatorAction,
};
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::detection::action::{AlertKey, ClearReason, Details, DetectorAction};
use vigil_server::ids::{DeviceId, ResponderId, SiteId};

#[derive(Debug, Clone)]
enum Input {
    Raise {
        key: usize,
        severity: usize,
        late_s: u64,
    },
    Clear {
        key: usize,
    },
    Operator {
        key: usize,
        action: usize,
    },
}

const KINDS: [AlertKind; 3] = [AlertKind::Call, AlertKind::DeviceOffline, AlertKind::Tamper];

fn key(i: usize) -> AlertKey {
    let device = DeviceId::new(&format!("d{}", i / KINDS.len())).unwrap();
    AlertKey::new(Subject::Device(device), KINDS[i % KINDS.len()])
}

fn action(i: usize) -> OperatorAction {
    match i {
        0 => OperatorAction::Acknowledge,
        1 => OperatorAction::Dispatch {
            responder: ResponderId::new("nurse-1").unwrap(),
        },
        2 => OperatorAction::OnScene,
        3 => OperatorAction::Note,
        n => OperatorAction::Resolve {
            disposition: Disposition::ALL[n % Disposition::ALL.len()],
        },
    }
}

fn input() -> impl Strategy<Value = (Input, u64)> {
    let input = prop_oneof![
        (0..6usize, 0..4usize, 0..120u64).prop_map(|(key, severity, late_s)| Input::Raise {
            key,
            severity,
            late_s
        }),
        (0..6usize).prop_map(|key| Input::Clear { key }),
        (0..6usize, 0..9usize).prop_map(|(key, action)| Input::Operator { key, action }),
    ];
    (input, 0..300u64)
}

proptest! {
    #[test]
    fn the_book_keeps_one_open_alert_per_key_and_a_consistent_trail(
        inputs in proptest::collection::vec(input(), 1..120)
    ) {
        let site = SiteId::new("s1").unwrap();
        let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
        let mut trail: Vec<AuditRecord> = Vec::new();
        let mut now = Timestamp::from_unix_s(1_700_000_000);
        for (inp, dt) in inputs {
            now = now + std::time::Duration::from_secs(dt);
            match inp {
                Input::Raise { key: k, severity, late_s } => book.handle_detection(
                    DetectorAction::Raise {
                        site: site.clone(),
                        key: key(k),
                        severity: Severity::ALL[severity],
                        at: now - std::time::Duration::from_secs(late_s),
                        origin: None,
                        details: Details::new(),
                    },
                    now,
                ),
                Input::Clear { key: k } => book.handle_detection(
                    DetectorAction::Clear {
                        site: site.clone(),
                        key: key(k),
                        at: now,
                        reason: ClearReason::ReturnedToNormal,
                        details: Details::new(),
                    },
                    now,
                ),
                Input::Operator { key: k, action: a } => {
                    if let Some(id) = book.open_alert(&key(k)).map(|a| a.id) {
                        // Refusals are fine; they must not change anything (checked below).
                        let before = book.get(id).cloned();
                        let result = book.handle_operator(
                            id,
                            &action(a),
                            Actor::User("op".into()),
                            Some("note".into()),
                            now,
                        );
                        if result.is_err() {
                            prop_assert_eq!(book.get(id).cloned(), before);
                        }
                    }
                }
            }
            while let Some(e) = book.poll_event() {
                if let BookEvent::Audit(r) = e {
                    trail.push(r);
                }
            }
            for a in book.open_alerts() {
                prop_assert!(!a.state.is_closed());
                prop_assert_eq!(book.get(a.id).map(|x| &x.key), Some(&a.key));
            }
        }
        // Every alert's trail starts with a raise and chains from-state to to-state; nothing
        // follows a close; a call is never closed by a rule.
        let mut last: BTreeMap<AlertId, AlertState> = BTreeMap::new();
        for r in &trail {
            match (&r.change, last.get(&r.alert)) {
                (AuditChange::Raised { .. }, None) => prop_assert_eq!(r.from, None),
                (AuditChange::Raised { .. }, Some(_)) => prop_assert!(false, "raised twice: {:?}", r),
                (_, None) => prop_assert!(false, "record before the raise: {:?}", r),
                (_, Some(prev)) => {
                    prop_assert!(!prev.is_closed(), "record after close: {:?}", r);
                    prop_assert_eq!(r.from, Some(*prev));
                }
            }
            if r.to.is_closed() && r.kind == AlertKind::Call {
                prop_assert_ne!(&r.actor, &Actor::Rule);
            }
            last.insert(r.alert, r.to);
        }
        let period = Period { from: Timestamp(0), until: now + std::time::Duration::from_secs(1) };
        for k in kpis_by_site(&trail, period).values() {
            let counted = |a: &vigil_server::alerts::kpi::AnswerStats| {
                a.time_to_acknowledge.count + a.unanswered + a.closed_by_rule_unanswered
            };
            for a in k.answer_by_kind.values().chain([&k.answer_critical]) {
                prop_assert!(a.within_60s.hits <= a.within_60s.of);
                prop_assert!(a.within_180s.hits <= a.within_180s.of);
                prop_assert!(a.within_180s.hits >= a.within_60s.hits);
            }
            prop_assert_eq!(k.answer_by_kind.values().map(counted).sum::<usize>(), k.alerts);
            prop_assert!(counted(&k.answer_critical) <= k.alerts);
        }
    }
}
