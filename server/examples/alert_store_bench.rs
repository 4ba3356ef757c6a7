//! Cost of the alert store on both backends: the commit of one core step (a call raised, its
//! audit record, its escalation started and tier 0's audit record) and the escalation work
//! queue's throughput with two instances claiming and completing together.
//!
//! `cargo run -p vigil-server --example alert_store_bench [alerts]` (PostgreSQL at
//! `VIGIL_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`; it works in a
//! schema of its own and drops it; SQLite in a temporary file).
// A benchmark measures wall time: it is a driver, not a core.
#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::time::{Duration, Instant};

use vigil_server::alert_store::{AfterCommit, SqliteAlertStore};
use vigil_server::alert_store::{AlertStore, ChangeSet, Completion, PgAlertStore};
use vigil_server::alerts::book::AlertBook;
use vigil_server::alerts::lifecycle::AlertPolicy;
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::detection::action::{AlertKey, DetectorAction};
use vigil_server::escalation::{EscalationPolicy, EscalationTask, RoleName, Roster, Shift};
use vigil_server::ids::{ResidentId, ResponderId, SiteId};

type Res<T> = Result<T, Box<dyn Error>>;

fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

fn roster(site: &SiteId) -> Roster {
    let shifts = ["on_duty_caregiver", "nurse_lead", "district_duty_operator"]
        .iter()
        .map(|role| Shift {
            site: site.clone(),
            role: RoleName::new(role).unwrap(),
            responder: ResponderId::new("carer-a").unwrap(),
            from: t(0),
            until: t(86_400),
        })
        .collect();
    Roster {
        shifts,
        ..Roster::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1e3
}

async fn run<S: AlertStore + Clone + 'static>(name: &str, a: S, b: S, alerts: usize) -> Res<()> {
    let site = SiteId::new("bench-site")?;
    let policy = EscalationPolicy::telecare_default();
    let roster = roster(&site);
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let mut commits = Vec::with_capacity(alerts);
    for i in 0..alerts {
        let resident = ResidentId::new(&format!("r-{i}"))?;
        book.handle_detection(
            DetectorAction::Raise {
                site: site.clone(),
                key: AlertKey::new(Subject::Resident(resident), AlertKind::Call),
                severity: Severity::Critical,
                at: t(0),
                origin: None,
                details: Default::default(),
            },
            t(0),
        );
        let mut changes = ChangeSet::new();
        while let Some(e) = book.poll_event() {
            if let Some(AfterCommit::StartEscalation(id)) = changes.record_book_event(e) {
                let alert = book.get(id).ok_or("started alert is open")?;
                let (task, actions) = EscalationTask::start(alert, &policy, &roster, t(0));
                changes.start(task, actions);
            }
        }
        let started = Instant::now();
        let applied = a.apply(&changes).await?;
        commits.push(started.elapsed());
        assert_eq!(applied.notify.len(), 1);
    }
    commits.sort();
    println!(
        "{name}: commit of one step (alert + 2 audit records + escalation task), {alerts} steps: \
         p50 {:.2} ms, p99 {:.2} ms",
        percentile(&commits, 0.5),
        percentile(&commits, 0.99)
    );

    let claimer = |store: S| {
        let (policy, roster) = (policy.clone(), roster.clone());
        tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let claims = store.claim_due(t(60), 50, Duration::from_secs(30)).await?;
                if claims.is_empty() {
                    return Ok::<usize, vigil_server::alert_store::AlertStoreError>(done);
                }
                for c in claims {
                    let mut task = c.task.clone();
                    let mut changes = ChangeSet::new();
                    let _notify =
                        changes.record_escalation(task.handle_due(c.tier, &policy, &roster, t(60)));
                    if store.complete(&c, &task, &changes.audit).await? == Completion::Completed {
                        done += 1;
                    }
                }
            }
        })
    };
    let started = Instant::now();
    let (x, y) = (claimer(a), claimer(b));
    let (x, y) = (x.await??, y.await??);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(x + y, alerts, "every due task completed once");
    println!(
        "{name}: work queue, 2 instances claiming 50 at a time: {alerts} due tasks in {secs:.2} s \
         ({:.0} tasks/s; split {x}/{y})",
        alerts as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let alerts: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);

    let url = std::env::var("VIGIL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alert_store_bench_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await?;
    let mut cfg: tokio_postgres::Config = url.parse()?;
    cfg.options(format!("-c search_path={schema}"));
    let pg = async {
        let a = PgAlertStore::connect(cfg.clone(), 4).await?;
        let b = PgAlertStore::connect(cfg, 4).await?;
        run("postgres", a, b, alerts).await
    }
    .await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    pg?;

    let dir = std::env::temp_dir().join(format!("vigil_alert_store_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("alerts.sqlite");
    let sqlite = async {
        let a = SqliteAlertStore::open(&path).await?;
        let b = SqliteAlertStore::open(&path).await?;
        run("sqlite", a, b, alerts).await
    }
    .await;
    std::fs::remove_dir_all(&dir)?;
    sqlite
}
