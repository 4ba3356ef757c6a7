//! One conformance suite for both alert-store backends: every test below runs against a fresh
//! PostgreSQL schema (`VIGIL_TEST_PG_URL`) and a fresh SQLite file.

mod alert_store_support;

use std::collections::BTreeSet;
use std::time::Duration;

use alert_store_support::{
    commit_step, raise, resident, roster, site, step_changes, t, PgDb, SqliteDb, TestDb,
};
use vigil_server::alert_store::{AlertFilter, AlertStore, AlertStoreError, ChangeSet, Completion};
use vigil_server::alerts::audit::{Actor, AuditChange};
use vigil_server::alerts::book::{AlertBook, BookSnapshot};
use vigil_server::alerts::kpi::{kpis_by_site, Period};
use vigil_server::alerts::lifecycle::{
    AlertId, AlertPolicy, AlertState, Disposition, OperatorAction,
};
use vigil_server::alerts::{AlertKind, Severity};
use vigil_server::escalation::EscalationPolicy;
use vigil_server::notify::webhook::{AttemptResult, DeliveryId, DeliveryOutcome, DeliveryRecord};

const LEASE: Duration = Duration::from_secs(30);

fn ids(alerts: &[vigil_server::alerts::lifecycle::Alert]) -> Vec<u64> {
    alerts.iter().map(|a| a.id.0).collect()
}

/// A book with one call (alert 1) under escalation at `t(0)`, committed.
async fn one_call<S: AlertStore>(store: &S) -> (AlertBook, EscalationPolicy) {
    let policy = EscalationPolicy::telecare_default();
    let mut book = AlertBook::new(AlertPolicy::default());
    book.handle_detection(
        raise(
            "home-1",
            resident("mr-wang"),
            AlertKind::Call,
            Severity::Critical,
            t(0),
        ),
        t(0),
    );
    let told = commit_step(store, &mut book, &policy, &roster(&["home-1"]), t(0)).await;
    assert_eq!(told.len(), 1, "tier 0 is told at once");
    (book, policy)
}

async fn committed_steps_rebuild_the_book_and_the_escalations_after_a_restart<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    book.handle_detection(
        raise(
            "home-1",
            resident("mrs-li"),
            AlertKind::WaterNoUse,
            Severity::Warning,
            t(3),
        ),
        t(3),
    );
    book.handle_detection(
        raise(
            "home-1",
            resident("mr-wang"),
            AlertKind::Call,
            Severity::Critical,
            t(5),
        ),
        t(5),
    );
    commit_step(&store, &mut book, &policy, &r, t(5)).await;
    drop(store);

    let restarted = db.instance().await;
    let mut snap = restarted.book_snapshot().await.unwrap();
    let mut expected = book.snapshot();
    snap.open.sort_by_key(|a| a.id);
    expected.open.sort_by_key(|a| a.id);
    assert_eq!(snap, expected);
    assert_eq!(snap.open[0].repeat_count, 1);

    let tasks = restarted.pending_escalations().await.unwrap();
    assert_eq!(tasks.len(), 1, "a warning pages nobody");
    assert_eq!(tasks[0].alert, AlertId(1));
    assert_eq!(tasks[0].next_due(), Some((0, t(60))));

    // The rebuilt book carries on numbering after the stored alerts.
    let mut rebuilt = AlertBook::restore(AlertPolicy::default(), snap);
    rebuilt.handle_detection(
        raise(
            "home-1",
            resident("mr-zhao"),
            AlertKind::Fall,
            Severity::Critical,
            t(9),
        ),
        t(9),
    );
    commit_step(&restarted, &mut rebuilt, &policy, &r, t(9)).await;
    let after = restarted.book_snapshot().await.unwrap();
    assert_eq!(ids(&after.open), vec![1, 2, 3]);
    assert_eq!(after.next_id, 4);
}

async fn one_open_alert_per_subject_and_kind_is_enforced_by_the_database_atomically<D: TestDb>(
    db: &D,
) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    // A second instance that wrongly believes no call is open for mr-wang.
    let mut stray = AlertBook::restore(
        AlertPolicy::default(),
        BookSnapshot {
            next_id: 100,
            open: Vec::new(),
        },
    );
    stray.handle_detection(
        raise(
            "home-1",
            resident("mr-wang"),
            AlertKind::Call,
            Severity::Critical,
            t(7),
        ),
        t(7),
    );
    let changes = step_changes(&mut stray, &policy, &r, t(7));
    let refused = store.apply(&changes).await;
    assert!(
        matches!(refused, Err(AlertStoreError::OpenAlertConflict(_))),
        "{refused:?}"
    );
    // Nothing of the refused step was written: no alert, no audit, no escalation.
    assert_eq!(store.alert_detail(AlertId(100)).await.unwrap(), None);
    assert_eq!(store.pending_escalations().await.unwrap().len(), 1);
    let trail = store.alert_detail(AlertId(1)).await.unwrap().unwrap().trail;
    assert_eq!(trail.len(), 2, "raised and tier 0 only: {trail:?}");

    // Once the first call is closed, a new one for the same (subject, kind) may open.
    book.handle_operator(
        AlertId(1),
        &OperatorAction::Resolve {
            disposition: Disposition::FalseAlarm,
        },
        Actor::User("op-1".into()),
        Some("pressed by mistake".into()),
        t(8),
    )
    .unwrap();
    commit_step(&store, &mut book, &policy, &r, t(8)).await;
    let applied = store.apply(&changes).await.unwrap();
    assert_eq!(applied.notify.len(), 1, "the new call pages tier 0");
    let open = store.book_snapshot().await.unwrap().open;
    assert_eq!(ids(&open), vec![100]);
}

async fn a_due_task_is_handed_out_once_and_completed_once<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (_, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    assert!(store.claim_due(t(59), 10, LEASE).await.unwrap().is_empty());
    let claims = store.claim_due(t(60), 10, LEASE).await.unwrap();
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!((claim.tier, claim.due_at), (0, t(60)));
    assert_eq!(claim.lease_until, t(90));
    assert!(
        store.claim_due(t(61), 10, LEASE).await.unwrap().is_empty(),
        "a leased task is nobody else's"
    );

    let mut task = claim.task.clone();
    let mut changes = ChangeSet::new();
    let told = changes.record_escalation(task.handle_due(claim.tier, &policy, &r, t(60)));
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].responder.as_str(), "nurse-x");
    assert_eq!(
        store.complete(claim, &task, &changes.audit).await.unwrap(),
        Completion::Completed
    );
    assert_eq!(
        store.complete(claim, &task, &changes.audit).await.unwrap(),
        Completion::Superseded,
        "completing twice writes nothing"
    );
    let trail = store.alert_detail(AlertId(1)).await.unwrap().unwrap().trail;
    let tier1 = trail
        .iter()
        .filter(|r| r.change == AuditChange::Escalated { tier: 1 })
        .count();
    assert_eq!(tier1, 1);

    assert!(store.claim_due(t(179), 10, LEASE).await.unwrap().is_empty());
    let next = store.claim_due(t(180), 10, LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].tier, next[0].due_at), (1, t(180)));
}

async fn a_task_whose_claimer_died_is_handed_out_again_when_its_lease_ends<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (_, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    let dead = store.claim_due(t(60), 10, LEASE).await.unwrap().remove(0);
    assert!(store.claim_due(t(89), 10, LEASE).await.unwrap().is_empty());
    let other = db.instance().await;
    let taken = other.claim_due(t(90), 10, LEASE).await.unwrap().remove(0);
    assert_eq!(taken.task.alert, dead.task.alert);
    assert_ne!(taken.token, dead.token);

    let mut task = taken.task.clone();
    let mut changes = ChangeSet::new();
    let _told = changes.record_escalation(task.handle_due(taken.tier, &policy, &r, t(90)));
    // The first claimer wakes up late: its claim is no longer the row's.
    assert_eq!(
        store.complete(&dead, &task, &changes.audit).await.unwrap(),
        Completion::Superseded
    );
    assert_eq!(
        other.complete(&taken, &task, &changes.audit).await.unwrap(),
        Completion::Completed
    );
}

async fn acknowledging_removes_the_task_and_its_claimer_sends_nothing<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    let claim = store.claim_due(t(60), 10, LEASE).await.unwrap().remove(0);
    book.handle_operator(
        AlertId(1),
        &OperatorAction::Acknowledge,
        Actor::User("op-1".into()),
        None,
        t(61),
    )
    .unwrap();
    commit_step(&store, &mut book, &policy, &r, t(61)).await;
    let mut task = claim.task.clone();
    let mut changes = ChangeSet::new();
    let _told = changes.record_escalation(task.handle_due(claim.tier, &policy, &r, t(62)));
    assert_eq!(
        store.complete(&claim, &task, &changes.audit).await.unwrap(),
        Completion::Superseded
    );
    assert!(store.pending_escalations().await.unwrap().is_empty());
    assert!(store
        .claim_due(t(100_000), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
}

async fn a_deadline_that_passed_while_down_fires_once_after_restart<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (_, policy) = one_call(&store).await;
    drop(store);
    let r = roster(&["home-1"]);
    // Back up at t(500): tier 0's deadline (t(60)) passed while every instance was down.
    let a = db.instance().await;
    let b = db.instance().await;
    let claims = a.claim_due(t(500), 10, LEASE).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert!(b.claim_due(t(500), 10, LEASE).await.unwrap().is_empty());
    let claim = &claims[0];
    let mut task = claim.task.clone();
    let mut changes = ChangeSet::new();
    let told = changes.record_escalation(task.handle_due(claim.tier, &policy, &r, t(500)));
    assert_eq!(told.len(), 1, "the overdue tier fires at once");
    assert_eq!(told[0].tier, 1);
    assert_eq!(
        a.complete(claim, &task, &changes.audit).await.unwrap(),
        Completion::Completed
    );
    assert!(b.claim_due(t(500), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(
        b.pending_escalations().await.unwrap()[0].next_due(),
        Some((1, t(620)))
    );
}

async fn two_instances_claiming_together_share_every_task_exactly_once<D: TestDb>(db: &D) {
    const ALERTS: usize = 120;
    let store = db.instance().await;
    let policy = EscalationPolicy::telecare_default();
    let r = roster(&["home-1"]);
    let mut book = AlertBook::new(AlertPolicy::default());
    for i in 0..ALERTS {
        book.handle_detection(
            raise(
                "home-1",
                resident(&format!("r-{i}")),
                AlertKind::Call,
                Severity::Critical,
                t(0),
            ),
            t(0),
        );
    }
    commit_step(&store, &mut book, &policy, &r, t(0)).await;

    // Both instances are open before either claims, and they start together.
    let (first, second) = (db.instance().await, db.instance().await);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let claimer = |store: D::Store| {
        let (policy, r, start) = (policy.clone(), r.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            let mut got = Vec::new();
            loop {
                let claims = store.claim_due(t(60), 7, LEASE).await.unwrap();
                if claims.is_empty() {
                    return got;
                }
                for c in claims {
                    let mut task = c.task.clone();
                    let mut changes = ChangeSet::new();
                    let _told =
                        changes.record_escalation(task.handle_due(c.tier, &policy, &r, t(60)));
                    let done = store.complete(&c, &task, &changes.audit).await.unwrap();
                    assert_eq!(done, Completion::Completed);
                    got.push(c.task.alert);
                }
            }
        })
    };
    let (a, b) = (claimer(first), claimer(second));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    println!("instance a completed {}, instance b {}", a.len(), b.len());
    let all: Vec<AlertId> = a.iter().chain(&b).copied().collect();
    let distinct: BTreeSet<AlertId> = all.iter().copied().collect();
    assert_eq!(all.len(), ALERTS, "a: {}, b: {}", a.len(), b.len());
    assert_eq!(distinct.len(), ALERTS, "no task was handed out twice");
    let tasks = store.pending_escalations().await.unwrap();
    assert!(tasks
        .iter()
        .all(|task| task.next_due() == Some((1, t(180)))));
    let trails = store
        .kpi_records(
            &site("home-1"),
            Period {
                from: t(0),
                until: t(1),
            },
        )
        .await
        .unwrap();
    let escalated = trails
        .iter()
        .filter(|r| r.change == AuditChange::Escalated { tier: 1 })
        .count();
    assert_eq!(escalated, ALERTS, "each tier 1 was told once");
}

async fn listing_filters_pages_and_sorts_most_severe_then_oldest_first<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let policy = EscalationPolicy::telecare_default();
    let r = roster(&["home-1", "home-2"]);
    let mut book = AlertBook::new(AlertPolicy::default());
    for (site_name, who, kind, sev, at) in [
        ("home-1", "mr-a", AlertKind::Call, Severity::Critical, 0),
        (
            "home-1",
            "mr-b",
            AlertKind::WaterNoUse,
            Severity::Warning,
            10,
        ),
        ("home-2", "mr-c", AlertKind::WaterLeak, Severity::Major, 20),
        ("home-2", "mr-d", AlertKind::Call, Severity::Critical, 30),
        (
            "home-1",
            "mr-e",
            AlertKind::WaterExcessiveUse,
            Severity::Warning,
            5,
        ),
    ] {
        book.handle_detection(raise(site_name, resident(who), kind, sev, t(at)), t(at));
    }
    book.handle_operator(
        AlertId(2),
        &OperatorAction::Resolve {
            disposition: Disposition::ConditionCleared,
        },
        Actor::User("op-1".into()),
        None,
        t(40),
    )
    .unwrap();
    commit_step(&store, &mut book, &policy, &r, t(40)).await;

    let list = |f: AlertFilter| {
        let store = store.clone();
        async move { store.list_alerts(&f).await.unwrap() }
    };
    let all = list(AlertFilter::default()).await;
    assert_eq!(ids(&all.alerts), vec![1, 4, 3, 5, 2]);
    assert_eq!(all.total, 5);
    assert_eq!(all.alerts[4].state, AlertState::Resolved);
    let open = AlertFilter {
        states: AlertFilter::open_states(),
        ..AlertFilter::default()
    };
    assert_eq!(ids(&list(open).await.alerts), vec![1, 4, 3, 5]);
    let home2 = AlertFilter {
        sites: Some(vec![site("home-2")]),
        ..AlertFilter::default()
    };
    assert_eq!(ids(&list(home2).await.alerts), vec![4, 3]);
    let nowhere = AlertFilter {
        sites: Some(vec![]),
        ..AlertFilter::default()
    };
    assert_eq!(list(nowhere).await.total, 0);
    let warnings = AlertFilter {
        severities: vec![Severity::Warning],
        ..AlertFilter::default()
    };
    assert_eq!(ids(&list(warnings).await.alerts), vec![5, 2]);
    let calls = AlertFilter {
        kinds: vec![AlertKind::Call],
        ..AlertFilter::default()
    };
    assert_eq!(ids(&list(calls).await.alerts), vec![1, 4]);
    let window = AlertFilter {
        opened_from: Some(t(10)),
        opened_until: Some(t(30)),
        ..AlertFilter::default()
    };
    assert_eq!(ids(&list(window).await.alerts), vec![3, 2]);
    let page = AlertFilter {
        limit: 2,
        offset: 1,
        ..AlertFilter::default()
    };
    let page = list(page).await;
    assert_eq!((ids(&page.alerts), page.total), (vec![4, 3], 5));
}

async fn detail_holds_the_trail_in_order_and_kpis_come_from_the_stored_trail<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1", "home-2"]);
    let op = Actor::User("op-1".into());
    book.handle_operator(
        AlertId(1),
        &OperatorAction::Acknowledge,
        op.clone(),
        None,
        t(30),
    )
    .unwrap();
    book.handle_operator(
        AlertId(1),
        &OperatorAction::Resolve {
            disposition: Disposition::RealEmergency,
        },
        op,
        Some("carer on site, resident fine".into()),
        t(100),
    )
    .unwrap();
    // Neither another site's alert nor one raised after the period counts.
    book.handle_detection(
        raise(
            "home-2",
            resident("mr-x"),
            AlertKind::Call,
            Severity::Critical,
            t(50),
        ),
        t(50),
    );
    book.handle_detection(
        raise(
            "home-1",
            resident("mr-y"),
            AlertKind::Fall,
            Severity::Critical,
            t(7200),
        ),
        t(7200),
    );
    commit_step(&store, &mut book, &policy, &r, t(7200)).await;

    let detail = store.alert_detail(AlertId(1)).await.unwrap().unwrap();
    assert_eq!(detail.alert.state, AlertState::Resolved);
    assert_eq!(detail.alert.disposition, Some(Disposition::RealEmergency));
    let states: Vec<(Option<AlertState>, AlertState)> =
        detail.trail.iter().map(|r| (r.from, r.to)).collect();
    assert_eq!(
        states,
        vec![
            (None, AlertState::Open),
            (Some(AlertState::Open), AlertState::Open),
            (Some(AlertState::Open), AlertState::Acknowledged),
            (Some(AlertState::Acknowledged), AlertState::Resolved),
        ]
    );
    assert_eq!(store.alert_detail(AlertId(999)).await.unwrap(), None);

    let period = Period {
        from: t(0),
        until: t(3600),
    };
    let records = store.kpi_records(&site("home-1"), period).await.unwrap();
    assert!(records.iter().all(|r| r.alert == AlertId(1)));
    let kpis = kpis_by_site(&records, period);
    let home1 = &kpis[&site("home-1")];
    assert_eq!(
        home1.answer_critical.time_to_acknowledge.median_s,
        Some(30.0)
    );
    assert_eq!(kpis.len(), 1);
}

async fn the_audit_trail_refuses_updates_and_deletes<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let _ = one_call(&store).await;
    let update = db.raw("UPDATE alert_audit SET at = 0").await;
    assert!(
        update.as_ref().is_err_and(|e| e.contains("append-only")),
        "{update:?}"
    );
    let delete = db.raw("DELETE FROM alert_audit").await;
    assert!(
        delete.as_ref().is_err_and(|e| e.contains("append-only")),
        "{delete:?}"
    );
    let trail = store.alert_detail(AlertId(1)).await.unwrap().unwrap().trail;
    assert_eq!(trail.len(), 2);
}

async fn webhook_attempts_are_logged_per_delivery_in_order<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let attempt =
        |delivery: u64, attempt: u32, code: u16, outcome: DeliveryOutcome| DeliveryRecord {
            delivery: DeliveryId(delivery),
            endpoint: "carer-a".into(),
            event: "alert.raised".into(),
            attempt,
            at: t(u64::from(attempt) * 2),
            result: AttemptResult::Status { code },
            outcome,
        };
    let first = attempt(
        7,
        1,
        503,
        DeliveryOutcome::WillRetry {
            next_attempt_at: t(4),
        },
    );
    let other = attempt(8, 1, 404, DeliveryOutcome::Rejected);
    let second = attempt(7, 2, 200, DeliveryOutcome::Delivered);
    store
        .append_deliveries(&[first.clone(), other.clone()])
        .await
        .unwrap();
    store
        .append_deliveries(std::slice::from_ref(&second))
        .await
        .unwrap();
    assert_eq!(
        store.deliveries(DeliveryId(7)).await.unwrap(),
        vec![first, second]
    );
    assert_eq!(store.deliveries(DeliveryId(8)).await.unwrap(), vec![other]);
    assert!(store.deliveries(DeliveryId(9)).await.unwrap().is_empty());
}

async fn an_escalation_starts_once_even_when_the_book_offers_it_again<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let policy = EscalationPolicy::telecare_default();
    let r = roster(&["home-1"]);
    let mut book = AlertBook::new(AlertPolicy::default());
    let silence = |severity, at| {
        raise(
            "home-1",
            resident("mr-wang"),
            AlertKind::WaterNoUse,
            severity,
            at,
        )
    };
    // Below the policy's severity: shown on the console, nobody paged.
    book.handle_detection(silence(Severity::Minor, t(0)), t(0));
    assert!(commit_step(&store, &mut book, &policy, &r, t(0))
        .await
        .is_empty());
    assert!(store.pending_escalations().await.unwrap().is_empty());
    // More urgent: it now reaches the policy and tier 0 is paged.
    book.handle_detection(silence(Severity::Major, t(10)), t(10));
    assert_eq!(
        commit_step(&store, &mut book, &policy, &r, t(10))
            .await
            .len(),
        1
    );
    // More urgent again while escalating: offered again, but the running task stays.
    book.handle_detection(silence(Severity::Critical, t(20)), t(20));
    assert!(commit_step(&store, &mut book, &policy, &r, t(20))
        .await
        .is_empty());
    let tasks = store.pending_escalations().await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].next_due(), Some((0, t(70))));
    let trail = store.alert_detail(AlertId(1)).await.unwrap().unwrap().trail;
    let tier0 = trail
        .iter()
        .filter(|r| r.change == AuditChange::Escalated { tier: 0 })
        .count();
    assert_eq!(tier0, 1, "{trail:#?}");
}

async fn a_closed_alert_is_final_even_for_a_stale_writer<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    // An API request loaded the alert, then another operator closed it.
    let mut stale = book.get(AlertId(1)).unwrap().clone();
    book.handle_operator(
        AlertId(1),
        &OperatorAction::Resolve {
            disposition: Disposition::FalseAlarm,
        },
        Actor::User("op-1".into()),
        None,
        t(30),
    )
    .unwrap();
    commit_step(&store, &mut book, &policy, &r, t(30)).await;
    let rec = stale
        .apply(
            &OperatorAction::Acknowledge,
            Actor::User("op-2".into()),
            None,
            t(31),
        )
        .unwrap();
    let changes = ChangeSet {
        alerts: vec![stale],
        audit: vec![rec],
        ..ChangeSet::default()
    };
    let refused = store.apply(&changes).await;
    assert!(
        matches!(refused, Err(AlertStoreError::AlertClosed(AlertId(1)))),
        "{refused:?}"
    );
    let detail = store.alert_detail(AlertId(1)).await.unwrap().unwrap();
    assert_eq!(detail.alert.state, AlertState::FalseAlarm);
    assert_eq!(detail.trail.last().unwrap().to, AlertState::FalseAlarm);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = PgDb::new().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = SqliteDb::new().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    committed_steps_rebuild_the_book_and_the_escalations_after_a_restart,
    one_open_alert_per_subject_and_kind_is_enforced_by_the_database_atomically,
    a_due_task_is_handed_out_once_and_completed_once,
    a_task_whose_claimer_died_is_handed_out_again_when_its_lease_ends,
    acknowledging_removes_the_task_and_its_claimer_sends_nothing,
    a_deadline_that_passed_while_down_fires_once_after_restart,
    two_instances_claiming_together_share_every_task_exactly_once,
    listing_filters_pages_and_sorts_most_severe_then_oldest_first,
    detail_holds_the_trail_in_order_and_kpis_come_from_the_stored_trail,
    the_audit_trail_refuses_updates_and_deletes,
    webhook_attempts_are_logged_per_delivery_in_order,
    an_escalation_starts_once_even_when_the_book_offers_it_again,
    a_closed_alert_is_final_even_for_a_stale_writer,
);
