//! Conformance suite of both alert-store backends, part 2: the escalation work queue (claims,
//! leases, completion, restarts, two instances at once). Every test runs against a fresh
//! PostgreSQL schema (`VIGIL_TEST_PG_URL`) and a fresh SQLite file.

#[macro_use]
mod alert_store_support;

use std::collections::BTreeSet;
use std::time::Duration;

use alert_store_support::{
    commit_step, one_call, raise, resident, roster, site, t, PgDb, SqliteDb, TestDb,
};
use vigil_server::alert_store::{AlertStore, ChangeSet, Completion};
use vigil_server::alerts::audit::{Actor, AuditChange};
use vigil_server::alerts::book::AlertBook;
use vigil_server::alerts::kpi::Period;
use vigil_server::alerts::lifecycle::{AlertId, AlertPolicy, OperatorAction};
use vigil_server::alerts::{AlertKind, Severity};
use vigil_server::escalation::{EscalationAction, EscalationPolicy, Escalator};

const LEASE: Duration = Duration::from_secs(30);

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
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
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

async fn an_escalation_starts_once_even_when_the_book_offers_it_again<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let policy = EscalationPolicy::telecare_default();
    let r = roster(&["home-1"]);
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
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

async fn an_in_memory_escalator_resumes_from_the_stored_tasks<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let (_, policy) = one_call(&store).await;
    drop(store);
    let restarted = db.instance().await;
    let r = roster(&["home-1"]);
    let mut escalator = Escalator::new();
    escalator.set_policy(site("home-1"), policy);
    for task in restarted.pending_escalations().await.unwrap() {
        escalator.restore_task(task);
    }
    assert_eq!(escalator.next_deadline(), Some(t(60)));
    // Back at t(500): the deadline that passed while down fires at once, and once.
    escalator.handle_timeout(&r, t(500));
    let told: Vec<_> = std::iter::from_fn(|| escalator.poll_action())
        .filter_map(|a| match a {
            EscalationAction::Notify(n) => Some((n.tier, n.responder.to_string())),
            EscalationAction::Audit(_) => None,
        })
        .collect();
    assert_eq!(told, vec![(1, "nurse-x".to_owned())]);
    escalator.handle_timeout(&r, t(500));
    assert_eq!(escalator.poll_action(), None);
}

conformance!(
    a_due_task_is_handed_out_once_and_completed_once,
    a_task_whose_claimer_died_is_handed_out_again_when_its_lease_ends,
    acknowledging_removes_the_task_and_its_claimer_sends_nothing,
    a_deadline_that_passed_while_down_fires_once_after_restart,
    two_instances_claiming_together_share_every_task_exactly_once,
    an_escalation_starts_once_even_when_the_book_offers_it_again,
    an_in_memory_escalator_resumes_from_the_stored_tasks,
);
