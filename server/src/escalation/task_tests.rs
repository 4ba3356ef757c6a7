use std::time::Duration;

use super::*;
use crate::alerts::Severity;
use crate::detection::action::{details, AlertKey};
use crate::escalation::policy::{PolicyError, RoleName, Roster, Shift, Tier};
use crate::escalation::{Escalator, SiteEscalation};
use crate::ids::ResidentId;

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn site() -> SiteId {
    SiteId::new("care-1").unwrap()
}

fn r(name: &str) -> ResponderId {
    ResponderId::new(name).unwrap()
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

fn shift(role_name: &str, who: &str, from: u64, until: u64) -> Shift {
    Shift {
        site: site(),
        role: role(role_name),
        responder: r(who),
        from: t(from),
        until: t(until),
    }
}

fn resident() -> ResidentId {
    ResidentId::new("mrs-li").unwrap()
}

fn alert(severity: Severity) -> Alert {
    Alert {
        id: AlertId(11),
        site: site(),
        key: AlertKey::new(Subject::Resident(resident()), AlertKind::Call),
        severity,
        state: AlertState::Open,
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

fn roster() -> Roster {
    let mut roster = Roster {
        shifts: vec![
            shift("on_duty_caregiver", "carer-a", 0, 86_400),
            shift("nurse_lead", "nurse-x", 0, 86_400),
            shift("district_duty_operator", "district-1", 0, 86_400),
        ],
        ..Roster::default()
    };
    roster.contacts.insert(resident(), vec![r("daughter")]);
    roster
}

/// The responders told, with the tier, in order.
fn notified(actions: &[EscalationAction]) -> Vec<(usize, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            EscalationAction::Notify(n) => Some((n.tier, n.responder.to_string())),
            EscalationAction::Audit(_) => None,
        })
        .collect()
}

fn escalator() -> Escalator {
    let mut e = Escalator::new();
    e.set_policy(site(), EscalationPolicy::telecare_default());
    e
}

fn step(e: &mut Escalator, roster: &Roster, now: Timestamp) -> Vec<(usize, String)> {
    e.handle_timeout(roster, now);
    notified(&std::iter::from_fn(|| e.poll_action()).collect::<Vec<_>>())
}

#[test]
fn an_unacknowledged_alert_climbs_the_tiers_exactly_at_each_deadline() {
    let roster = roster();
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    assert_eq!(step(&mut e, &roster, t(0)), vec![(0, "carer-a".into())]);
    // (virtual time, who is told then)
    let expected: [(Timestamp, Vec<(usize, String)>); 6] = [
        (t(60) - Duration::from_millis(1), vec![]),
        (t(60), vec![(1, "nurse-x".into())]),
        (t(179), vec![]),
        (
            t(180),
            vec![(2, "district-1".into()), (2, "daughter".into())],
        ),
        (t(479), vec![]),
        (
            t(480),
            vec![(2, "district-1".into()), (2, "daughter".into())],
        ),
    ];
    for (now, who) in expected {
        assert_eq!(step(&mut e, &roster, now), who, "at {now}");
    }
    assert_eq!(e.task(AlertId(11)).unwrap().repeats, 1);
}

#[test]
fn acknowledging_stops_the_escalation() {
    let roster = roster();
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    let _ = step(&mut e, &roster, t(0));
    e.handle_stopped(AlertId(11), StopReason::Acknowledged);
    assert_eq!(e.next_deadline(), None);
    assert!(step(&mut e, &roster, t(10_000)).is_empty());
}

#[test]
fn each_tier_asks_the_roster_who_is_on_duty_at_that_moment() {
    let mut roster = roster();
    // The nurse lead hands over at 50 s, between tier 0 and tier 1.
    roster.shifts[1] = shift("nurse_lead", "nurse-x", 0, 50);
    roster
        .shifts
        .push(shift("nurse_lead", "nurse-y", 50, 86_400));
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    let _ = step(&mut e, &roster, t(0));
    assert_eq!(step(&mut e, &roster, t(60)), vec![(1, "nurse-y".into())]);
}

#[test]
fn a_tier_with_nobody_on_duty_is_skipped_at_once_and_audited() {
    let mut roster = roster();
    roster.shifts.remove(0);
    let (task, actions) = EscalationTask::start(
        &alert(Severity::Critical),
        &EscalationPolicy::telecare_default(),
        &roster,
        t(0),
    );
    assert_eq!(notified(&actions), vec![(1, "nurse-x".into())]);
    assert!(actions.iter().any(|a| matches!(
        a,
        EscalationAction::Audit(AuditRecord {
            change: AuditChange::TierEmpty { tier: 0 },
            ..
        })
    )));
    assert_eq!(task.next_due(), Some((1, t(120))));
}

#[test]
fn handle_due_is_idempotent_for_a_second_instance_or_a_retry() {
    let roster = roster();
    let policy = EscalationPolicy::telecare_default();
    let (mut task, _) = EscalationTask::start(&alert(Severity::Critical), &policy, &roster, t(0));
    assert!(
        task.handle_due(0, &policy, &roster, t(59)).is_empty(),
        "not due yet"
    );
    assert!(
        task.handle_due(1, &policy, &roster, t(60)).is_empty(),
        "wrong tier"
    );
    assert_eq!(
        notified(&task.handle_due(0, &policy, &roster, t(60))),
        vec![(1, "nurse-x".into())]
    );
    assert!(
        task.handle_due(0, &policy, &roster, t(60)).is_empty(),
        "already done"
    );
    task.stop(StopReason::Closed);
    assert!(
        task.handle_due(1, &policy, &roster, t(1000)).is_empty(),
        "stopped"
    );
}

#[test]
fn a_restored_task_fires_on_time_after_a_restart() {
    let roster = roster();
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    let _ = step(&mut e, &roster, t(60));
    let stored: Vec<String> = e
        .tasks()
        .map(|t| serde_json::to_string(t).unwrap())
        .collect();
    let mut e = escalator();
    for s in stored {
        e.restore_task(serde_json::from_str(&s).unwrap());
    }
    assert_eq!(e.next_deadline(), Some(t(180)));
    assert!(step(&mut e, &roster, t(179)).is_empty());
    assert_eq!(step(&mut e, &roster, t(180)).len(), 2);
}

#[test]
fn alerts_below_the_policy_severity_page_nobody_until_they_become_more_urgent() {
    let roster = roster();
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Warning), &roster, t(0));
    assert_eq!(e.next_deadline(), None);
    assert_eq!(e.counters().below_policy_severity, 1);
    e.handle_raised(&alert(Severity::Major), &roster, t(50));
    assert_eq!(step(&mut e, &roster, t(50)), vec![(0, "carer-a".into())]);
    e.handle_raised(&alert(Severity::Critical), &roster, t(55));
    assert!(
        step(&mut e, &roster, t(55)).is_empty(),
        "a running escalation is not restarted"
    );
    assert_eq!(e.next_deadline(), Some(t(110)));
}

#[test]
fn invalid_policies_are_refused_with_the_reason() {
    let tier = |targets: Vec<Target>, s: u64| Tier {
        targets,
        ack_deadline: Duration::from_secs(s),
    };
    assert_eq!(
        EscalationPolicy::new(vec![], Severity::Major),
        Err(PolicyError::NoTiers)
    );
    assert_eq!(
        EscalationPolicy::new(
            vec![tier(vec![Target::EmergencyContact], 60), tier(vec![], 60)],
            Severity::Major
        ),
        Err(PolicyError::EmptyTier(1))
    );
    assert_eq!(
        EscalationPolicy::new(
            vec![tier(vec![Target::EmergencyContact], 0)],
            Severity::Major
        ),
        Err(PolicyError::ZeroDeadline(0))
    );
    assert!(RoleName::new("Nurse Lead").is_err());
    let json = r#"{"tiers":[],"min_severity":"major"}"#;
    assert!(serde_json::from_str::<EscalationPolicy>(json).is_err());
    let ok = serde_json::to_string(&EscalationPolicy::telecare_default()).unwrap();
    assert_eq!(
        serde_json::from_str::<EscalationPolicy>(&ok).unwrap(),
        EscalationPolicy::telecare_default()
    );
}

#[test]
fn notification_outcomes_become_audit_records_even_after_the_alert_was_acknowledged() {
    let roster = roster();
    let policy = EscalationPolicy::telecare_default();
    let (mut task, actions) =
        EscalationTask::start(&alert(Severity::Critical), &policy, &roster, t(0));
    let notification = actions
        .into_iter()
        .find_map(|a| match a {
            EscalationAction::Notify(n) => Some(n),
            EscalationAction::Audit(_) => None,
        })
        .unwrap();
    task.stop(StopReason::Acknowledged);
    let rec =
        notification.outcome_record("webhook", NotifyOutcome::Failed("HTTP 503".into()), t(2));
    assert_eq!(
        (rec.alert, rec.kind, rec.at),
        (AlertId(11), AlertKind::Call, t(2))
    );
    assert_eq!(rec.actor, Actor::System);
    assert_eq!(
        rec.change,
        AuditChange::Notified {
            tier: 0,
            responder: r("carer-a"),
            channel: "webhook".into(),
            outcome: NotifyOutcome::Failed("HTTP 503".into()),
        }
    );
}

#[test]
fn an_alert_answered_before_escalation_started_pages_nobody() {
    let roster = roster();
    let mut e = escalator();
    let mut a = alert(Severity::Critical);
    a.state = AlertState::Acknowledged;
    e.handle_raised(&a, &roster, t(0));
    assert!(step(&mut e, &roster, t(0)).is_empty());
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn a_kind_with_its_own_chain_follows_it_and_other_kinds_the_default() {
    let mut roster = roster();
    roster
        .shifts
        .push(shift("neighbourhood_office", "office-7", 0, 86_400));
    let water_chain = EscalationPolicy::new(
        vec![
            Tier {
                targets: vec![Target::EmergencyContact],
                ack_deadline: Duration::from_secs(600),
            },
            Tier {
                targets: vec![Target::Role(role("neighbourhood_office"))],
                ack_deadline: Duration::from_secs(1800),
            },
        ],
        Severity::Major,
    )
    .unwrap();
    let site_policy = SiteEscalation::from(EscalationPolicy::telecare_default())
        .with_kind(AlertKind::WaterNoUseSevere, water_chain);
    let json = serde_json::to_string(&site_policy).unwrap();
    let mut e = Escalator::new();
    e.set_policy(
        site(),
        serde_json::from_str::<SiteEscalation>(&json).unwrap(),
    );
    let mut water = alert(Severity::Major);
    water.id = AlertId(12);
    water.key.kind = AlertKind::WaterNoUseSevere;
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    e.handle_raised(&water, &roster, t(0));
    assert_eq!(
        step(&mut e, &roster, t(0)),
        vec![(0, "carer-a".into()), (0, "daughter".into())]
    );
    // The call (alert 11) moves on after 60 s; the water alert (12) only after 600 s.
    assert_eq!(step(&mut e, &roster, t(60)), vec![(1, "nurse-x".into())]);
    assert_eq!(
        step(&mut e, &roster, t(599)),
        vec![(2, "district-1".into()), (2, "daughter".into())]
    );
    assert_eq!(step(&mut e, &roster, t(600)), vec![(1, "office-7".into())]);
}

#[test]
fn the_escalator_acts_on_a_claimed_due_item_once() {
    let roster = roster();
    let mut e = escalator();
    e.handle_raised(&alert(Severity::Critical), &roster, t(0));
    let _ = step(&mut e, &roster, t(0));
    let (tier, due) = e.next_due(AlertId(11)).unwrap();
    assert_eq!((tier, due), (0, t(60)));
    for _ in 0..2 {
        e.handle_due(AlertId(11), tier, &roster, due);
    }
    let told = notified(&std::iter::from_fn(|| e.poll_action()).collect::<Vec<_>>());
    assert_eq!(told, vec![(1, "nurse-x".into())]);
    e.handle_due(AlertId(99), 0, &roster, due);
    assert!(e.poll_action().is_none(), "an unknown alert is ignored");
}
