//! The alert engine on a real alert store (SQLite and PostgreSQL), on the wall clock with
//! 1-second tiers: a call escalates while nobody answers, stops when acknowledged, sends
//! "help is coming"; a restart neither loses nor repeats a tier; two engines on one
//! PostgreSQL database tell a due tier once, and give the alerts they raise at the same time
//! distinct ids.

#[allow(unused_macros)]
mod alert_store_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_store_support::{PgDb, SqliteDb, TestDb};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use vigil_protocol::{ButtonEvent, ButtonKind, DownlinkBody, UplinkBody, UplinkFrame};
use vigil_server::alert_store::{AlertFilter, AlertStore, AnyAlertStore};
use vigil_server::alerts::audit::{Actor, AuditChange, AuditRecord};
use vigil_server::alerts::lifecycle::{Alert, AlertId, AlertState, OperatorAction};
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::engine::{
    start, system_clock, ActionRequest, ActionScope, Downlink, EngineHandle, EngineParts,
    EngineSettings, EngineStats, LiveSink, Outputs, StaticDirectory, StaticSource, WebhookSink,
};
use vigil_server::escalation::{
    EscalationPolicy, Notification, RoleName, Roster, Shift, Target, Tier,
};
use vigil_server::ids::{ResponderId, SiteId};
use vigil_server::ingest::FrameSink;
use vigil_server::registry::{
    ContactChannel, Device, DeviceKind, Resident, Responder, ResponderRole, Site, SiteKind,
};
use vigil_server::store::IncomingFrame;

const GUARD: Duration = Duration::from_secs(20);

/// Records what the engine sent, and lets a test await a count.
#[derive(Default)]
struct Recorder {
    webhooks: Mutex<Vec<Notification>>,
    sent: watch::Sender<usize>,
    live_alerts: Mutex<Vec<Alert>>,
    live_audit: Mutex<Vec<AuditRecord>>,
}

impl WebhookSink for Recorder {
    fn send(&self, _: &str, _: &str, _: &str, _: String, n: Option<Notification>) {
        if let Some(n) = n {
            let mut v = self.webhooks.lock().unwrap();
            v.push(n);
            let len = v.len();
            self.sent.send_replace(len);
        }
    }
}

impl LiveSink for Recorder {
    fn publish_alert(&self, alert: &Alert) {
        self.live_alerts.lock().unwrap().push(alert.clone());
    }
    fn publish_audit(&self, record: &AuditRecord) {
        self.live_audit.lock().unwrap().push(record.clone());
    }
}

impl Recorder {
    async fn wait_sent(&self, n: usize) {
        let mut rx = self.sent.subscribe();
        tokio::time::timeout(GUARD, rx.wait_for(|&k| k >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} notifications in time, saw {:?}", self.told()))
            .unwrap();
    }

    fn told(&self) -> Vec<(usize, String)> {
        self.webhooks
            .lock()
            .unwrap()
            .iter()
            .map(|n| (n.tier, n.responder.to_string()))
            .collect()
    }
}

fn site() -> SiteId {
    SiteId::new("home-7").unwrap()
}

/// Tiers of 1 s each: carer, nurse, then the district operator (long, so it is told once).
fn policy() -> EscalationPolicy {
    let role = |r: &str| Target::Role(RoleName::new(r).unwrap());
    let tier = |r: &str, s: u64| Tier {
        targets: vec![role(r)],
        ack_deadline: Duration::from_secs(s),
    };
    EscalationPolicy::new(
        vec![tier("carer", 1), tier("nurse", 1), tier("district", 600)],
        Severity::Major,
    )
    .unwrap()
}

fn directory() -> StaticDirectory {
    let hook = |who: &str| Responder {
        id: who.parse().unwrap(),
        name: who.to_owned(),
        role: ResponderRole::Caregiver,
        channels: vec![ContactChannel::Webhook {
            url: format!("http://127.0.0.1:9/{who}"),
        }],
        site_ids: vec![site()],
    };
    let shift = |role: &str, who: &str| Shift {
        site: site(),
        role: RoleName::new(role).unwrap(),
        responder: ResponderId::new(who).unwrap(),
        from: Timestamp::from_unix_ms(0),
        until: Timestamp::from_unix_ms(u64::MAX / 2),
    };
    let mut dir = StaticDirectory::default()
        .with_site(Site {
            id: site(),
            kind: SiteKind::Household,
            name: "flat 7".into(),
            address: "7 River Road".into(),
            timezone: chrono_tz::Asia::Shanghai,
            escalation_policy: None,
        })
        .with_resident(Resident {
            id: "mr-wang".parse().unwrap(),
            site_id: site(),
            name: "Wang Wei".into(),
            emergency_contacts: vec![],
            conditions: vec![],
            away_until: None,
        })
        .with_resident(Resident {
            id: "mrs-wang".parse().unwrap(),
            site_id: site(),
            name: "Li Na".into(),
            emergency_contacts: vec![],
            conditions: vec![],
            away_until: None,
        })
        .with_device(Device {
            id: "pendant-7".parse().unwrap(),
            kind: DeviceKind::Pendant,
            site_id: site(),
            resident_id: Some("mr-wang".parse().unwrap()),
            zone: None,
            credentials_ref: None,
            installed_on: None,
        })
        .with_device(Device {
            id: "pendant-8".parse().unwrap(),
            kind: DeviceKind::Pendant,
            site_id: site(),
            resident_id: Some("mrs-wang".parse().unwrap()),
            zone: None,
            credentials_ref: None,
            installed_on: None,
        })
        .with_responder(hook("carer-a"))
        .with_responder(hook("nurse-x"))
        .with_responder(hook("district-1"))
        .with_policy(site(), policy());
    dir.roster = Roster {
        shifts: vec![
            shift("carer", "carer-a"),
            shift("nurse", "nurse-x"),
            shift("district", "district-1"),
        ],
        ..Roster::default()
    };
    dir
}

fn press(seq: u32) -> IncomingFrame {
    press_on("pendant-7", seq)
}

fn press_on(pendant: &str, seq: u32) -> IncomingFrame {
    let now = system_clock()().unix_ms();
    IncomingFrame {
        frame: UplinkFrame {
            device_id: pendant.parse().unwrap(),
            boot_id: 3,
            seq,
            uptime_ms: 1000,
            wall_ms: Some(now),
            body: UplinkBody::Button(ButtonEvent {
                kind: ButtonKind::Press,
                cancels_seq: None,
            }),
        },
        raw: Bytes::new(),
        via: None,
        gateway_received_ms: None,
        server_received_ms: now as i64,
    }
}

struct Running {
    handle: EngineHandle,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("engine stops in time")
            .unwrap();
    }
}

async fn run_engine(
    store: AnyAlertStore,
    rec: &Arc<Recorder>,
    downlinks: Option<mpsc::Sender<Downlink>>,
) -> Running {
    let settings = EngineSettings {
        escalation_poll: Duration::from_millis(100),
        claim_lease: Duration::from_secs(5),
        ..EngineSettings::default()
    };
    let parts = EngineParts {
        alerts: store,
        telemetry: None,
        directory: StaticSource::new(directory()),
        outputs: Outputs {
            live: rec.clone(),
            webhooks: Some(rec.clone()),
        },
        downlinks,
        clock: system_clock(),
    };
    let (stop, stop_rx) = oneshot::channel::<()>();
    let (handle, task) = start(parts, settings, async {
        let _ = stop_rx.await;
    })
    .await
    .expect("engine starts");
    Running { handle, stop, task }
}

fn ack(id: AlertId) -> ActionRequest {
    ActionRequest {
        alert: id,
        action: OperatorAction::Acknowledge,
        actor: Actor::User("op-1".into()),
        note: Some("calling Mr Wang".into()),
        scope: ActionScope::Sites(vec!["home-7".into()]),
    }
}

async fn call_climbs_and_stops_when_acknowledged<D: TestDb>(db: D)
where
    D::Store: Into<AnyAlertStore>,
{
    let store: AnyAlertStore = db.instance().await.into();
    let rec = Arc::new(Recorder::default());
    let (down_tx, mut down_rx) = mpsc::channel(8);
    let engine = run_engine(store.clone(), &rec, Some(down_tx)).await;
    engine.handle.committed(vec![press(31)]).await;
    rec.wait_sent(2).await;
    assert_eq!(rec.told(), [(0, "carer-a".into()), (1, "nurse-x".into())]);
    let id = rec.webhooks.lock().unwrap()[0].alert;
    // Out of scope: the alert does not exist for this caller.
    let mut foreign = ack(id);
    foreign.scope = ActionScope::Sites(vec!["elsewhere".into()]);
    assert!(engine.handle.actions().act(foreign).await.is_err());
    let alert = engine
        .handle
        .actions()
        .act(ack(id))
        .await
        .expect("acknowledged");
    assert_eq!(alert.state, AlertState::Acknowledged);
    let again = engine.handle.actions().act(ack(id)).await;
    assert!(
        matches!(&again, Err(e) if e.to_string().contains("cannot acknowledge")),
        "{again:?}"
    );
    let down = tokio::time::timeout(GUARD, down_rx.recv())
        .await
        .expect("help is coming in time")
        .unwrap();
    assert_eq!(down.topic, "vigil/v1/dev/pendant-7/down");
    assert!(
        matches!(down.frame.body, DownlinkBody::HelpComing(h) if h.seq == 31 && h.boot_id == 3)
    );
    // Two more deadlines pass: nobody else is told.
    let told_at_ack = rec.told().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rec.told().len(), told_at_ack, "{:?}", rec.told());
    let detail = store.alert_detail(id).await.unwrap().unwrap();
    let trail: Vec<String> = detail
        .trail
        .iter()
        .filter_map(|r| match &r.change {
            AuditChange::Raised { .. } => Some("raised".to_owned()),
            AuditChange::Escalated { tier } => Some(format!("tier {tier}")),
            AuditChange::Transition { .. } => Some(format!("-> {}", r.to)),
            _ => None,
        })
        .collect();
    assert_eq!(&trail[..3], ["raised", "tier 0", "tier 1"]);
    assert_eq!(trail.last().unwrap(), "-> acknowledged");
    assert!(rec
        .live_alerts
        .lock()
        .unwrap()
        .iter()
        .any(|a| a.id == id && a.state == AlertState::Acknowledged));
    engine.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_call_climbs_the_tiers_and_stops_when_acknowledged() {
    call_climbs_and_stops_when_acknowledged(SqliteDb::new().await).await;
}

#[tokio::test]
async fn postgres_call_climbs_the_tiers_and_stops_when_acknowledged() {
    call_climbs_and_stops_when_acknowledged(PgDb::new().await).await;
}

async fn restart_neither_loses_nor_repeats_a_tier<D: TestDb>(db: D)
where
    D::Store: Into<AnyAlertStore>,
{
    let rec = Arc::new(Recorder::default());
    let first = run_engine(db.instance().await.into(), &rec, None).await;
    first.handle.committed(vec![press(5)]).await;
    rec.wait_sent(1).await;
    first.stop().await;
    // Down for longer than tier 0's deadline: tier 1 is due when the next instance starts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = run_engine(db.instance().await.into(), &rec, None).await;
    rec.wait_sent(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rec.told(),
        [
            (0, "carer-a".into()),
            (1, "nurse-x".into()),
            (2, "district-1".into())
        ]
    );
    // The restarted engine holds the alert: it can be acknowledged there.
    let id = rec.webhooks.lock().unwrap()[0].alert;
    let alert = second.handle.actions().act(ack(id)).await.unwrap();
    assert_eq!(alert.state, AlertState::Acknowledged);
    second.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_restart_neither_loses_nor_repeats_a_tier() {
    restart_neither_loses_nor_repeats_a_tier(SqliteDb::new().await).await;
}

#[tokio::test]
async fn postgres_restart_neither_loses_nor_repeats_a_tier() {
    restart_neither_loses_nor_repeats_a_tier(PgDb::new().await).await;
}

#[tokio::test]
async fn two_engines_on_one_postgres_database_tell_each_due_tier_once() {
    let db = PgDb::new().await;
    let rec = Arc::new(Recorder::default());
    let a = run_engine(db.instance().await.into(), &rec, None).await;
    let b = run_engine(db.instance().await.into(), &rec, None).await;
    a.handle.committed(vec![press(9)]).await;
    rec.wait_sent(3).await;
    // Both instances poll every 100 ms; give them many chances to tell a tier twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rec.told(),
        [
            (0, "carer-a".into()),
            (1, "nurse-x".into()),
            (2, "district-1".into())
        ]
    );
    let completed = vigil_server::engine::EngineStats::get(&a.handle.stats().tiers_completed)
        + vigil_server::engine::EngineStats::get(&b.handle.stats().tiers_completed);
    assert_eq!(
        completed, 2,
        "tiers 1 and 2, each completed by one instance"
    );
    a.stop().await;
    b.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn two_engines_on_one_postgres_database_raise_alerts_at_once_with_distinct_ids() {
    let db = PgDb::new().await;
    let rec = Arc::new(Recorder::default());
    let a = run_engine(db.instance().await.into(), &rec, None).await;
    let b = run_engine(db.instance().await.into(), &rec, None).await;
    // Each engine numbered its own alerts from "the stored maximum + 1" before: both would
    // have opened alert 1, and the second commit would have been refused.
    tokio::join!(
        a.handle.committed(vec![press_on("pendant-7", 1)]),
        b.handle.committed(vec![press_on("pendant-8", 1)]),
    );
    let store: AnyAlertStore = db.instance().await.into();
    let filter = AlertFilter {
        kinds: vec![AlertKind::Call],
        ..AlertFilter::default()
    };
    let alerts = tokio::time::timeout(GUARD, async {
        loop {
            let page = store.list_alerts(&filter).await.unwrap();
            if page.alerts.len() >= 2 {
                return page.alerts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("both calls stored in time");
    let mut subjects: Vec<Subject> = alerts.iter().map(|a| a.key.subject.clone()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            Subject::Resident("mr-wang".parse().unwrap()),
            Subject::Resident("mrs-wang".parse().unwrap())
        ]
    );
    assert_ne!(alerts[0].id, alerts[1].id);
    // Both pages went out: each alert started its own escalation.
    rec.wait_sent(2).await;
    for engine in [&a, &b] {
        let stats = engine.handle.stats();
        assert_eq!(EngineStats::get(&stats.commit_errors), 0, "nothing refused");
        assert_eq!(EngineStats::get(&stats.steps_lost), 0);
    }
    a.stop().await;
    b.stop().await;
    db.cleanup().await;
}
