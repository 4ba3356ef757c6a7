//! The cores wired together the way the server's driver wires them: detector → alert book →
//! escalation, on a virtual clock. This is the reference for the thin async driver.

use vigil_protocol::{
    ButtonEvent, ButtonKind, DownlinkBody, DownlinkFrame, FireReport, SensorKind, SignalClass,
};
use vigil_server::alerts::audit::{Actor, AuditChange, AuditLog, NotifyOutcome};
use vigil_server::alerts::book::{AlertBook, BookEvent};
use vigil_server::alerts::kpi::{kpis_by_site, Period, Share};
use vigil_server::alerts::lifecycle::{AlertPolicy, AlertState, Disposition, OperatorAction};
use vigil_server::alerts::{AlertKind, Timestamp};
use vigil_server::detection::action::{DetectorAction, FrameContext, FrameRef};
use vigil_server::detection::call::{CallConfig, CallDetector};
use vigil_server::detection::fire::{FireConfig, FireDetector};
use vigil_server::escalation::{
    EscalationAction, EscalationPolicy, Escalator, RoleName, Roster, Shift,
};
use vigil_server::ids::{DeviceId, ResidentId, ResponderId, SiteId, ZoneId};

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn site() -> SiteId {
    SiteId::new("care-home-3").unwrap()
}

fn roster() -> Roster {
    let shift = |role: &str, who: &str| Shift {
        site: site(),
        role: RoleName::new(role).unwrap(),
        responder: ResponderId::new(who).unwrap(),
        from: t(0),
        until: t(86_400),
    };
    Roster {
        shifts: vec![
            shift("on_duty_caregiver", "carer-a"),
            shift("nurse_lead", "nurse-x"),
            shift("district_duty_operator", "district-1"),
        ],
        ..Roster::default()
    }
}

/// What the async driver does with the cores' outputs, minus the I/O.
struct Driver {
    book: AlertBook,
    escalator: Escalator,
    roster: Roster,
    audit: AuditLog,
    told: Vec<(u64, usize, String)>,
    downlinks: Vec<DownlinkFrame>,
}

impl Driver {
    fn new() -> Self {
        let mut escalator = Escalator::new();
        escalator.set_policy(site(), EscalationPolicy::telecare_default());
        Self {
            book: AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000),
            escalator,
            roster: roster(),
            audit: AuditLog::new(),
            told: Vec::new(),
            downlinks: Vec::new(),
        }
    }

    fn detected(&mut self, actions: impl IntoIterator<Item = DetectorAction>, now: Timestamp) {
        for a in actions {
            self.book.handle_detection(a, now);
        }
        self.pump(now);
    }

    fn pump(&mut self, now: Timestamp) {
        while let Some(e) = self.book.poll_event() {
            match e {
                BookEvent::Audit(r) => self.audit.append(r),
                BookEvent::Upserted(_) => {}
                BookEvent::StartEscalation(id) => {
                    if let Some(alert) = self.book.get(id) {
                        self.escalator.handle_raised(alert, &self.roster, now);
                    }
                }
                BookEvent::StopEscalation(id, reason) => self.escalator.handle_stopped(id, reason),
                BookEvent::Downlink(f) => self.downlinks.push(f),
            }
        }
        while let Some(a) = self.escalator.poll_action() {
            match a {
                EscalationAction::Notify(n) => {
                    self.told
                        .push((now.since(t(0)).as_secs(), n.tier, n.responder.to_string()));
                    // Every attempt and its outcome is audited (here the channel succeeded).
                    self.audit
                        .append(n.outcome_record("sse", NotifyOutcome::Delivered, now));
                }
                EscalationAction::Audit(r) => self.audit.append(r),
            }
        }
    }

    /// Advances the virtual clock to `until`, waking at every deadline on the way.
    fn run_until(&mut self, until: Timestamp) {
        while let Some(due) = self.escalator.next_deadline().filter(|d| *d <= until) {
            self.escalator.handle_timeout(&self.roster, due);
            self.pump(due);
        }
    }
}

fn pendant_ctx(seq: u32, at: Timestamp) -> FrameContext {
    FrameContext {
        site: site(),
        resident: Some(ResidentId::new("mr-wang").unwrap()),
        frame: FrameRef {
            device: DeviceId::new("pendant-7").unwrap(),
            boot_id: 2,
            seq,
        },
        occurred_at: at,
    }
}

#[test]
fn a_call_nobody_answers_climbs_the_tiers_and_stops_when_acknowledged() {
    let mut drv = Driver::new();
    let mut call = CallDetector::new(CallConfig::default());
    let press = ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    };
    call.handle_button(&pendant_ctx(31, t(0)), &press, t(0));
    drv.detected(std::iter::from_fn(|| call.poll_action()), t(0));
    drv.run_until(t(200));
    assert_eq!(
        drv.told,
        vec![
            (0, 0, "carer-a".to_owned()),
            (60, 1, "nurse-x".to_owned()),
            (180, 2, "district-1".to_owned()),
        ]
    );
    let id = drv.book.open_alerts().next().unwrap().id;
    drv.book
        .handle_operator(
            id,
            &OperatorAction::Acknowledge,
            Actor::User("district-1".into()),
            None,
            t(200),
        )
        .unwrap();
    drv.pump(t(200));
    drv.run_until(t(10_000));
    assert_eq!(
        drv.told.len(),
        3,
        "nobody is told after the acknowledgement"
    );
    assert_eq!(drv.escalator.next_deadline(), None);
    // "Help is coming" goes back to the pendant that called.
    assert_eq!(drv.downlinks.len(), 1);
    assert!(
        matches!(drv.downlinks[0].body, DownlinkBody::HelpComing(h) if h.seq == 31 && h.boot_id == 2)
    );
    // The trail holds the raise, each tier, and the acknowledgement, in order.
    let changes: Vec<String> = drv
        .audit
        .for_alert(id)
        .map(|r| match &r.change {
            AuditChange::Raised { .. } => "raised".to_owned(),
            AuditChange::Escalated { tier } => format!("tier {tier}"),
            AuditChange::Notified { responder, .. } => format!("told {responder}"),
            AuditChange::Transition { .. } => format!("-> {}", r.to),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            "raised",
            "tier 0",
            "told carer-a",
            "tier 1",
            "told nurse-x",
            "tier 2",
            "told district-1",
            "-> acknowledged"
        ]
    );
    let k = &kpis_by_site(
        drv.audit.records(),
        Period {
            from: t(0),
            until: t(86_400),
        },
    )[&site()];
    assert_eq!(k.answer_critical.within_180s, Share { hits: 0, of: 1 });
    assert_eq!(k.answer_critical.time_to_acknowledge.median_s, Some(200.0));
}

#[test]
fn a_confirmed_fire_pages_at_once_and_its_clearing_waits_for_the_operator() {
    let mut drv = Driver::new();
    let mut fire = FireDetector::new(FireConfig::default(), site());
    let report = |sensor: SensorKind, signal: SignalClass, value: i32| FireReport {
        sensor,
        value,
        unit: sensor.unit(),
        signal,
        zone: ZoneId::new("f2-east").unwrap(),
        self_test: false,
    };
    let ctx = |dev: &str, seq: u32, at: Timestamp| FrameContext {
        site: site(),
        resident: None,
        frame: FrameRef {
            device: DeviceId::new(dev).unwrap(),
            boot_id: 1,
            seq,
        },
        occurred_at: at,
    };
    fire.handle_report(
        &ctx("smoke-203", 1, t(0)),
        &report(SensorKind::Smoke, SignalClass::Alarm, 900),
        t(0),
    );
    fire.handle_report(
        &ctx("smoke-204", 1, t(8)),
        &report(SensorKind::Smoke, SignalClass::Alarm, 650),
        t(8),
    );
    drv.detected(std::iter::from_fn(|| fire.poll_action()), t(8));
    let kinds: Vec<(AlertKind, u32)> = drv
        .book
        .open_alerts()
        .map(|a| (a.key.kind, a.repeat_count))
        .collect();
    assert_eq!(
        kinds,
        vec![(AlertKind::FireAlarm, 1), (AlertKind::FireConfirmed, 0)]
    );
    fire.handle_report(
        &ctx("smoke-203", 2, t(900)),
        &report(SensorKind::Smoke, SignalClass::Normal, 5),
        t(900),
    );
    fire.handle_report(
        &ctx("smoke-204", 2, t(905)),
        &report(SensorKind::Smoke, SignalClass::Normal, 5),
        t(905),
    );
    drv.detected(std::iter::from_fn(|| fire.poll_action()), t(905));
    for a in drv.book.open_alerts() {
        assert_eq!(
            a.state,
            AlertState::Open,
            "{} must wait for a person",
            a.key.kind
        );
        assert!(a.cleared.is_some());
    }
    let confirmed = drv
        .book
        .open_alerts()
        .find(|a| a.key.kind == AlertKind::FireConfirmed)
        .unwrap()
        .id;
    let op = Actor::User("duty-op".into());
    drv.book
        .handle_operator(
            confirmed,
            &OperatorAction::Acknowledge,
            op.clone(),
            None,
            t(920),
        )
        .unwrap();
    drv.book
        .handle_operator(
            confirmed,
            &OperatorAction::Resolve {
                disposition: Disposition::FalseAlarm,
            },
            op,
            Some("burnt toast, room 203".into()),
            t(1000),
        )
        .unwrap();
    drv.pump(t(1000));
    assert!(drv.book.get(confirmed).is_none());
}
