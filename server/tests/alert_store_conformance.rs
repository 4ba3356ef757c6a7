//! Conformance suite of both alert-store backends, part 1: alerts, audit trail, queries and the
//! delivery log. Every test runs against a fresh PostgreSQL schema (`VIGIL_TEST_PG_URL`) and a
//! fresh SQLite file; the escalation work queue is in `alert_store_queue.rs`.

#[macro_use]
mod alert_store_support;

use alert_store_support::{
    commit_step, one_call, raise, resident, roster, site, step_changes, t, PgDb, SqliteDb, TestDb,
};
use vigil_server::alert_store::{AlertFilter, AlertStore, AlertStoreError, ChangeSet};
use vigil_server::alerts::audit::Actor;
use vigil_server::alerts::book::{AlertBook, BookSnapshot};
use vigil_server::alerts::kpi::{kpis_by_site, Period};
use vigil_server::alerts::lifecycle::{
    Alert, AlertId, AlertPolicy, AlertState, Disposition, OperatorAction,
};
use vigil_server::alerts::{AlertKind, Severity};
use vigil_server::escalation::EscalationPolicy;
use vigil_server::notify::webhook::{AttemptResult, DeliveryId, DeliveryOutcome, DeliveryRecord};

fn ids(alerts: &[Alert]) -> Vec<u64> {
    alerts.iter().map(|a| a.id.0).collect()
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

    // The rebuilt book spends ids the store reserved, above every stored alert (these two
    // were numbered by the test's own book, not by the store).
    let mut rebuilt = AlertBook::restore(AlertPolicy::default(), snap);
    let block = restarted.reserve_alert_ids(8).await.unwrap();
    assert_eq!(block, 3..11);
    rebuilt.grant_ids(block);
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
}

async fn one_open_alert_per_subject_and_kind_is_enforced_by_the_database_atomically<D: TestDb>(
    db: &D,
) {
    let store = db.instance().await;
    let (mut book, policy) = one_call(&store).await;
    let r = roster(&["home-1"]);
    // A second instance that wrongly believes no call is open for mr-wang.
    let mut stray = AlertBook::restore(AlertPolicy::default(), BookSnapshot { open: Vec::new() });
    stray.grant_ids(100..101);
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

async fn listing_filters_pages_and_sorts_most_severe_then_oldest_first<D: TestDb>(db: &D) {
    let store = db.instance().await;
    let policy = EscalationPolicy::telecare_default();
    let r = roster(&["home-1", "home-2"]);
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
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

async fn id_blocks_follow_one_another_and_start_above_the_stored_alerts<D: TestDb>(db: &D) {
    let store = db.instance().await;
    assert_eq!(store.reserve_alert_ids(4).await.unwrap(), 1..5);
    assert_eq!(
        store.reserve_alert_ids(0).await.unwrap(),
        0..0,
        "nothing reserved"
    );
    assert_eq!(store.reserve_alert_ids(2).await.unwrap(), 5..7);
    // An alert stored with an id the counter never handed out (an older server that still
    // numbered its own) pushes the next block above it.
    store_fall_numbered(&store, 40).await;
    assert_eq!(store.reserve_alert_ids(3).await.unwrap(), 41..44);
    // Another instance (or a restart) carries on from the same counter.
    let other = db.instance().await;
    assert_eq!(other.reserve_alert_ids(1).await.unwrap(), 44..45);
}

/// Stores one fall alert numbered `id` by a book of the test's own.
async fn store_fall_numbered<S: AlertStore>(store: &S, id: u64) {
    let mut book = AlertBook::with_ids(AlertPolicy::default(), id..id + 1);
    book.handle_detection(
        raise(
            "home-1",
            resident("mr-li"),
            AlertKind::Fall,
            Severity::Critical,
            t(1),
        ),
        t(1),
    );
    let policy = EscalationPolicy::telecare_default();
    commit_step(store, &mut book, &policy, &roster(&["home-1"]), t(1)).await;
}

async fn concurrent_reservations_of_two_instances_never_overlap<D: TestDb>(db: &D) {
    let a = db.instance().await;
    let b = db.instance().await;
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let size = 1 + i % 7;
            let got = if i % 2 == 0 {
                a.reserve_alert_ids(size).await
            } else {
                b.reserve_alert_ids(size).await
            };
            (size, got.expect("reserve ids"))
        }));
    }
    let mut blocks = Vec::new();
    for t in tasks {
        let (size, block) = t.await.unwrap();
        assert_eq!(block.end - block.start, u64::from(size), "{block:?}");
        blocks.push(block);
    }
    blocks.sort_by_key(|b| b.start);
    for pair in blocks.windows(2) {
        assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
    }
    let total: u64 = (0..40u64).map(|i| 1 + i % 7).sum();
    assert_eq!(blocks.first().unwrap().start, 1);
    assert_eq!(
        blocks.last().unwrap().end,
        1 + total,
        "no id skipped or reused"
    );
}

conformance!(
    id_blocks_follow_one_another_and_start_above_the_stored_alerts,
    concurrent_reservations_of_two_instances_never_overlap,
    committed_steps_rebuild_the_book_and_the_escalations_after_a_restart,
    one_open_alert_per_subject_and_kind_is_enforced_by_the_database_atomically,
    listing_filters_pages_and_sorts_most_severe_then_oldest_first,
    detail_holds_the_trail_in_order_and_kpis_come_from_the_stored_trail,
    the_audit_trail_refuses_updates_and_deletes,
    webhook_attempts_are_logged_per_delivery_in_order,
    a_closed_alert_is_final_even_for_a_stale_writer,
);
