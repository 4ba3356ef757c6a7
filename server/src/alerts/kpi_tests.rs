use super::*;
use crate::alerts::audit::AuditLog;
use crate::alerts::book::{AlertBook, BookEvent};
use crate::alerts::lifecycle::{AlertPolicy, OperatorAction};
use crate::alerts::{Severity, Subject};
use crate::detection::action::{details, AlertKey, ClearReason, DetectorAction};
use crate::ids::{DeviceId, ResponderId};

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn site(name: &str) -> SiteId {
    SiteId::new(name).unwrap()
}

/// Drives a real alert book and keeps its audit trail.
struct Desk {
    book: AlertBook,
    log: AuditLog,
    next_device: u32,
}

impl Desk {
    fn new() -> Self {
        Self {
            book: AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000),
            log: AuditLog::new(),
            next_device: 0,
        }
    }

    fn pump(&mut self) {
        while let Some(e) = self.book.poll_event() {
            if let BookEvent::Audit(r) = e {
                self.log.append(r);
            }
        }
    }

    fn raise(&mut self, site_name: &str, kind: AlertKind, at: u64) -> AlertId {
        self.raise_with(site_name, kind, Severity::Critical, at)
    }

    fn raise_with(
        &mut self,
        site_name: &str,
        kind: AlertKind,
        severity: Severity,
        at: u64,
    ) -> AlertId {
        self.next_device += 1;
        let key = AlertKey::new(
            Subject::Device(DeviceId::new(&format!("d{}", self.next_device)).unwrap()),
            kind,
        );
        self.book.handle_detection(
            DetectorAction::Raise {
                site: site(site_name),
                key: key.clone(),
                severity,
                at: t(at),
                origin: None,
                details: details([]),
            },
            t(at),
        );
        self.pump();
        self.book.open_alert(&key).unwrap().id
    }

    fn act(&mut self, id: AlertId, action: OperatorAction, at: u64) {
        self.book
            .handle_operator(id, &action, Actor::User("op".into()), None, t(at))
            .unwrap();
        self.pump();
    }
}

fn resolve(d: Disposition) -> OperatorAction {
    OperatorAction::Resolve { disposition: d }
}

#[test]
fn answer_times_and_target_shares_come_from_the_audit_trail() {
    let mut desk = Desk::new();
    // Ten calls answered after 10, 20, … 100 s.
    for i in 1..=10u64 {
        let raised = i * 1000;
        let id = desk.raise("a", AlertKind::Call, raised);
        desk.act(id, OperatorAction::Acknowledge, raised + i * 10);
        desk.act(id, resolve(Disposition::RealEmergency), raised + 500);
    }
    let k = &kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(100_000),
        },
    )[&site("a")];
    assert_eq!(k.alerts, 10);
    assert_eq!(k.answer_critical.time_to_acknowledge.count, 10);
    assert_eq!(k.answer_critical.time_to_acknowledge.median_s, Some(50.0));
    assert_eq!(k.answer_critical.time_to_acknowledge.p90_s, Some(90.0));
    assert_eq!(k.answer_critical.within_60s, Share { hits: 6, of: 10 });
    assert_eq!(k.answer_critical.within_180s, Share { hits: 10, of: 10 });
    assert_eq!(k.false_alarms, Share { hits: 0, of: 10 });
}

#[test]
fn exactly_sixty_seconds_is_within_the_target() {
    let mut desk = Desk::new();
    let id = desk.raise("a", AlertKind::Fall, 0);
    desk.act(id, OperatorAction::Acknowledge, 60);
    let k = &kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(1000),
        },
    )[&site("a")];
    assert_eq!(k.answer_critical.within_60s, Share { hits: 1, of: 1 });
}

#[test]
fn unanswered_alerts_count_as_misses_once_they_have_waited_past_the_target() {
    let mut desk = Desk::new();
    desk.raise("a", AlertKind::Call, 0); // waiting 200 s at the end: misses both targets
    desk.raise("a", AlertKind::Call, 100); // waiting 100 s: misses 60 s only
    desk.raise("a", AlertKind::Call, 170); // waiting 30 s: counted in neither yet
    let k = &kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(200),
        },
    )[&site("a")];
    assert_eq!(k.answer_critical.unanswered, 3);
    assert_eq!(k.answer_critical.within_60s, Share { hits: 0, of: 2 });
    assert_eq!(k.answer_critical.within_180s, Share { hits: 0, of: 1 });
    assert_eq!(k.answer_critical.time_to_acknowledge.median_s, None);
}

#[test]
fn an_alert_its_rule_closed_before_anybody_answered_is_not_a_miss() {
    let mut desk = Desk::new();
    let key_site = "a";
    let id = desk.raise(key_site, AlertKind::DeviceOffline, 0);
    let key = desk.book.get(id).unwrap().key.clone();
    desk.book.handle_detection(
        DetectorAction::Clear {
            site: site(key_site),
            key,
            at: t(600),
            reason: ClearReason::BackOnline,
            details: details([]),
        },
        t(600),
    );
    desk.pump();
    let k = &kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(10_000),
        },
    )[&site("a")];
    assert_eq!(k.answer_critical.closed_by_rule_unanswered, 1);
    assert_eq!(k.answer_critical.unanswered, 0);
    assert_eq!(k.answer_critical.within_60s, Share { hits: 0, of: 0 });
    assert_eq!(k.answer_critical.within_60s.ratio(), None);
}

#[test]
fn on_scene_times_kinds_and_false_alarms_are_per_site_and_period() {
    let mut desk = Desk::new();
    let nurse = ResponderId::new("nurse-1").unwrap();
    let a1 = desk.raise("a", AlertKind::Fall, 0);
    desk.act(a1, OperatorAction::Acknowledge, 20);
    desk.act(
        a1,
        OperatorAction::Dispatch {
            responder: nurse.clone(),
        },
        30,
    );
    desk.act(a1, OperatorAction::OnScene, 20 * 60);
    desk.act(a1, resolve(Disposition::RealEmergency), 40 * 60);
    let a2 = desk.raise("a", AlertKind::Call, 100);
    desk.act(a2, OperatorAction::Acknowledge, 110);
    desk.act(a2, OperatorAction::Dispatch { responder: nurse }, 120);
    desk.act(a2, OperatorAction::OnScene, 100 + 50 * 60);
    desk.act(a2, resolve(Disposition::FalseAlarm), 100 + 55 * 60);
    let a3 = desk.raise("a", AlertKind::Call, 200);
    desk.act(a3, resolve(Disposition::Test), 230);
    let b1 = desk.raise("b", AlertKind::Call, 300);
    desk.act(b1, resolve(Disposition::FalseAlarm), 310);
    // Raised after the period: not counted anywhere.
    desk.raise("a", AlertKind::Call, 50_000);

    let all = kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(10_000),
        },
    );
    let a = &all[&site("a")];
    assert_eq!(a.alerts, 3);
    assert_eq!(a.by_kind[&AlertKind::Call], 2);
    assert_eq!(a.by_kind[&AlertKind::Fall], 1);
    assert_eq!(a.time_to_on_scene.count, 2);
    assert_eq!(a.on_scene_within_45min, Share { hits: 1, of: 2 });
    // The test disposition is left out of the false-alarm share.
    assert_eq!(a.false_alarms, Share { hits: 1, of: 2 });
    // Resolving straight from open answers the alert too.
    assert_eq!(a.answer_critical.within_60s, Share { hits: 3, of: 3 });
    let b = &all[&site("b")];
    assert_eq!((b.alerts, b.false_alarms), (1, Share { hits: 1, of: 1 }));
}

#[test]
fn a_minor_alert_left_for_later_does_not_count_against_the_answering_targets() {
    let mut desk = Desk::new();
    let call = desk.raise("a", AlertKind::Call, 0);
    desk.act(call, OperatorAction::Acknowledge, 30);
    desk.raise_with("a", AlertKind::FireTrouble, Severity::Minor, 0);
    let k = &kpis_by_site(
        desk.log.records(),
        Period {
            from: t(0),
            until: t(7200),
        },
    )[&site("a")];
    assert_eq!(k.answer_critical.within_60s, Share { hits: 1, of: 1 });
    let trouble = &k.answer_by_kind[&AlertKind::FireTrouble];
    assert_eq!(
        (trouble.unanswered, trouble.within_180s),
        (1, Share { hits: 0, of: 1 })
    );
    assert_eq!(
        k.answer_by_kind[&AlertKind::Call]
            .time_to_acknowledge
            .median_s,
        Some(30.0)
    );
}
