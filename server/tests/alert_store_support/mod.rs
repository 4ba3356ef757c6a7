//! Test databases for the alert store: a fresh PostgreSQL schema or SQLite file per test, and
//! fixtures shared by the conformance suite.

#![allow(dead_code)] // each test binary uses its own part of the support

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_server::alert_store::changes::AfterCommit;
use vigil_server::alert_store::{AlertStore, ChangeSet, PgAlertStore, SqliteAlertStore};
use vigil_server::alerts::book::AlertBook;
use vigil_server::alerts::lifecycle::AlertPolicy;
use vigil_server::alerts::lifecycle::AlertState;
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::detection::action::{AlertKey, DetectorAction};
use vigil_server::escalation::{
    EscalationPolicy, EscalationTask, Notification, RoleName, Roster, Shift,
};
use vigil_server::ids::{ResidentId, ResponderId, SiteId};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this or a concurrent run) uses; the wall clock only tells apart
/// runs that reuse a process id (a failed run leaves its schema behind for inspection).
#[allow(clippy::disallowed_methods)]
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// One database that several store instances (server instances) can open.
pub trait TestDb {
    type Store: AlertStore + Clone + 'static;
    /// Opens another instance on the same database, as a second server (or a restart) would.
    async fn instance(&self) -> Self::Store;
    /// Runs SQL outside the store's API; returns the database's refusal, if any.
    async fn raw(&self, sql: &str) -> Result<(), String>;
    async fn cleanup(self);
}

pub struct PgDb {
    url: String,
    schema: String,
}

impl PgDb {
    pub async fn new() -> Self {
        let url = std::env::var("VIGIL_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = unique("alert_store");
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {url} (VIGIL_TEST_PG_URL) is needed by this test: {e}")
            });
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create the test schema");
        Self { url, schema }
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut cfg: tokio_postgres::Config = self.url.parse().expect("VIGIL_TEST_PG_URL");
        cfg.options(format!("-c search_path={}", self.schema));
        cfg
    }
}

impl TestDb for PgDb {
    type Store = PgAlertStore;

    async fn instance(&self) -> PgAlertStore {
        PgAlertStore::connect(self.config(), 4)
            .await
            .expect("open the PostgreSQL alert store")
    }

    async fn raw(&self, sql: &str) -> Result<(), String> {
        let (client, conn) = self
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client.batch_execute(sql).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })
    }

    async fn cleanup(self) {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .expect("drop the test schema");
    }
}

pub struct SqliteDb {
    dir: PathBuf,
}

impl SqliteDb {
    pub async fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("vigil_alert_store"));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("alerts.sqlite")
    }
}

impl TestDb for SqliteDb {
    type Store = SqliteAlertStore;

    async fn instance(&self) -> SqliteAlertStore {
        SqliteAlertStore::open(self.path())
            .await
            .expect("open the SQLite alert store")
    }

    async fn raw(&self, sql: &str) -> Result<(), String> {
        let conn = rusqlite::Connection::open(self.path()).expect("open");
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    async fn cleanup(self) {
        std::fs::remove_dir_all(&self.dir).expect("remove the temporary directory");
    }
}

// ---- fixtures ----

pub fn t(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

pub fn site(name: &str) -> SiteId {
    SiteId::new(name).unwrap()
}

pub fn resident(name: &str) -> Subject {
    Subject::Resident(ResidentId::new(name).unwrap())
}

pub fn raise(
    site_name: &str,
    subject: Subject,
    kind: AlertKind,
    severity: Severity,
    at: Timestamp,
) -> DetectorAction {
    DetectorAction::Raise {
        site: site(site_name),
        key: AlertKey::new(subject, kind),
        severity,
        at,
        origin: None,
        details: [("rule".to_owned(), kind.as_str().to_owned())].into(),
    }
}

pub fn roster(sites: &[&str]) -> Roster {
    let mut shifts = Vec::new();
    for s in sites {
        for (role, who) in [
            ("on_duty_caregiver", "carer-a"),
            ("nurse_lead", "nurse-x"),
            ("district_duty_operator", "district-1"),
        ] {
            shifts.push(Shift {
                site: site(s),
                role: RoleName::new(role).unwrap(),
                responder: ResponderId::new(who).unwrap(),
                from: t(0),
                until: t(30 * 86_400),
            });
        }
    }
    Roster {
        shifts,
        ..Roster::default()
    }
}

/// What the server's driver does after one core step: drain the book into a change set and
/// start escalations for new alerts.
pub fn step_changes(
    book: &mut AlertBook,
    policy: &EscalationPolicy,
    roster: &Roster,
    now: Timestamp,
) -> ChangeSet {
    let mut changes = ChangeSet::new();
    while let Some(event) = book.poll_event() {
        match changes.record_book_event(event) {
            Some(AfterCommit::StartEscalation(id)) => {
                // Somebody may have answered (or closed) it before the driver got here.
                let Some(alert) = book.get(id) else {
                    continue;
                };
                if alert.state == AlertState::Open && policy.escalates(alert.severity) {
                    let (task, actions) = EscalationTask::start(alert, policy, roster, now);
                    changes.start(task, actions);
                }
            }
            Some(AfterCommit::Downlink(_)) | None => {}
        }
    }
    changes
}

/// [`step_changes`], committed; returns the notifications to send.
pub async fn commit_step<S: AlertStore>(
    store: &S,
    book: &mut AlertBook,
    policy: &EscalationPolicy,
    roster: &Roster,
    now: Timestamp,
) -> Vec<Notification> {
    let changes = step_changes(book, policy, roster, now);
    store.apply(&changes).await.expect("commit the step").notify
}

/// A book with one call (alert 1) under escalation at `t(0)`, committed.
pub async fn one_call<S: AlertStore>(store: &S) -> (AlertBook, EscalationPolicy) {
    let policy = EscalationPolicy::telecare_default();
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
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

/// Runs each named `async fn name<D: TestDb>(db: &D)` against a fresh PostgreSQL schema
/// (`postgres::name`) and a fresh SQLite file (`sqlite::name`).
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
