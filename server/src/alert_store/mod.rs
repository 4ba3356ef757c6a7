//! Durable alerts: the alert records, their append-only audit trail, the escalation work
//! queue and the webhook delivery log, behind one [`AlertStore`] trait with two backends.
//!
//! # Layout
//!
//! - [`any`]: [`AnyAlertStore`], the backend the configuration picks, and [`open`].
//! - [`changes`]: [`ChangeSet`], what one core step wrote, committed in one transaction.
//! - [`query`]: [`AlertFilter`] and the listing's SQL, shared by both backends.
//! - [`postgres`]: [`PgAlertStore`] (tokio-postgres over a deadpool pool); claims due work
//!   with `FOR UPDATE SKIP LOCKED`, so several server instances can share one database.
//! - [`sqlite`]: [`SqliteAlertStore`] (rusqlite, WAL), blocking calls on `spawn_blocking`;
//!   claims inside `BEGIN IMMEDIATE`.
//!
//! Both run their own migrations (`server/migrations/alert_store/`) with refinery into the
//! table `vigil_alert_migrations`; every table is prefixed `alert_`, `escalation_` or
//! `webhook_`. Times are stored as milliseconds since the Unix epoch.
//!
//! # Alert ids
//!
//! [`AlertStore::reserve_alert_ids`] hands out blocks of ids from the one-row table
//! `alert_id_counter` (migration 3): each block to one caller alone, above every stored alert,
//! so that engines sharing one database never give two alerts one id. An engine spends its
//! block through the [`AlertBook`](crate::alerts::book::AlertBook); what a stopped engine
//! did not spend is never handed out again (ids have gaps).
//!
//! # The escalation work queue
//!
//! One row per alert under escalation. [`AlertStore::claim_due`] hands each due row to one
//! claimer for a lease; the claimer runs [`EscalationTask::handle_due`] and calls
//! [`AlertStore::complete`] with the claim, which writes the task back and appends the audit
//! records in one transaction — only if the claim is still the row's current one. A claimer
//! that died leaves its lease to expire and the row is handed out again; a claimer whose lease
//! was taken over (or whose alert was acknowledged meanwhile) gets
//! [`Completion::Superseded`] and must not send its notifications.

pub mod any;
pub mod changes;
pub mod postgres;
pub mod query;
pub mod sqlite;

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

pub use any::{open, AnyAlertStore};
pub use changes::{AfterCommit, Applied, ChangeSet, StartedEscalation};
pub use postgres::PgAlertStore;
pub use query::{AlertFilter, AlertPage};
pub use sqlite::SqliteAlertStore;

use crate::alerts::audit::{AuditChange, AuditRecord};
use crate::alerts::book::BookSnapshot;
use crate::alerts::kpi::Period;
use crate::alerts::lifecycle::{Alert, AlertId};
use crate::alerts::{Severity, Timestamp};
use crate::escalation::EscalationTask;
use crate::ids::SiteId;
use crate::notify::webhook::{DeliveryId, DeliveryRecord};

/// The name of the migration table, distinct from the other stores' sets.
pub const MIGRATION_TABLE: &str = "vigil_alert_migrations";

#[derive(Debug, thiserror::Error)]
pub enum AlertStoreError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("postgres connection pool setup: {0}")]
    PoolSetup(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("sqlite database setup: {0}")]
    SqliteSetup(String),
    #[error("alert store migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("alert {0} is closed in the store: a closed alert never changes again")]
    AlertClosed(AlertId),
    #[error("another alert is already open for this (subject, kind): {0}")]
    OpenAlertConflict(String),
    #[error("stored {what} is not valid JSON of the expected shape: {source}")]
    Corrupt {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("stored {what} has an impossible value: {found}")]
    InvalidColumn { what: &'static str, found: i64 },
    #[error("{what} {value} does not fit the store's signed 64-bit integers")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("the sqlite worker failed: {0}")]
    Worker(String),
}

pub type Result<T, E = AlertStoreError> = std::result::Result<T, E>;

/// Identifies one hand-out of a task; only the current claim may complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub i64);

/// A due escalation task handed to this claimer until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    pub task: EscalationTask,
    /// The tier whose deadline passed: pass it to [`EscalationTask::handle_due`].
    pub tier: usize,
    pub due_at: Timestamp,
    pub lease_until: Timestamp,
    pub token: ClaimToken,
}

/// What [`AlertStore::complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Completion {
    /// The task and its audit records are committed: send the notifications now.
    Completed,
    /// The claim was no longer current (completed already, lease taken over, escalation
    /// stopped): nothing was written, and nothing must be sent.
    Superseded,
}

/// One alert with its whole audit trail, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDetail {
    pub alert: Alert,
    pub trail: Vec<AuditRecord>,
}

/// Durable alerts, audit trail, escalation work queue and webhook delivery log.
///
/// The audit trail and the delivery log have no update or delete path here (and the
/// databases refuse one with a trigger).
pub trait AlertStore: Send + Sync {
    /// Commits one core step's output (alert upserts, audit records, escalation starts and
    /// stops) in one transaction: all of it or none of it. Returns the notifications of the
    /// escalations it actually started, to send after the commit.
    fn apply(&self, changes: &ChangeSet) -> impl Future<Output = Result<Applied>> + Send;

    /// The open alerts, to rebuild the [`AlertBook`] after a restart.
    ///
    /// [`AlertBook`]: crate::alerts::book::AlertBook
    fn book_snapshot(&self) -> impl Future<Output = Result<BookSnapshot>> + Send;

    /// Reserves `count` alert ids for the caller alone, atomically: no other reservation, by
    /// this instance or another one sharing the database, returns any of them, and each is
    /// above every stored alert's id. Returns them as a range (empty when `count` is 0).
    fn reserve_alert_ids(&self, count: u32) -> impl Future<Output = Result<Range<u64>>> + Send;

    /// Every escalation still running, to rebuild an in-memory `Escalator`.
    fn pending_escalations(&self) -> impl Future<Output = Result<Vec<EscalationTask>>> + Send;

    /// Hands out up to `limit` tasks due at `now`, most overdue first, each to this caller
    /// alone until `now + lease`.
    fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<ClaimedTask>>> + Send;

    /// Writes back a claimed task after `handle_due` (its new `next_due()`, or removes it
    /// when stopped) with the audit records `handle_due` produced, in one transaction.
    /// Idempotent: a second call with the same claim is [`Completion::Superseded`].
    fn complete(
        &self,
        claim: &ClaimedTask,
        task: &EscalationTask,
        audit: &[AuditRecord],
    ) -> impl Future<Output = Result<Completion>> + Send;

    /// Saves detector states (storage key, JSON), replacing the stored ones of those keys.
    fn save_detector_states(
        &self,
        states: &[(String, String)],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Every saved detector state (storage key, JSON), to restore the engine's detectors.
    fn detector_states(&self) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;

    /// Appends attempts to the webhook delivery log.
    fn append_deliveries(
        &self,
        records: &[DeliveryRecord],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The attempts of one delivery, oldest first.
    fn deliveries(
        &self,
        delivery: DeliveryId,
    ) -> impl Future<Output = Result<Vec<DeliveryRecord>>> + Send;

    /// Alerts matching `filter`, most severe first, then oldest first.
    fn list_alerts(&self, filter: &AlertFilter) -> impl Future<Output = Result<AlertPage>> + Send;

    /// One alert (open or closed) with its audit trail.
    fn alert_detail(&self, id: AlertId)
        -> impl Future<Output = Result<Option<AlertDetail>>> + Send;

    /// The input of `alerts::kpi`: the whole trail of every alert of `site` raised in
    /// `period` (including what happened to them after the period ended).
    fn kpi_records(
        &self,
        site: &SiteId,
        period: Period,
    ) -> impl Future<Output = Result<Vec<AuditRecord>>> + Send;

    /// [`kpi_records`](Self::kpi_records) of several sites in one query: `None` for every
    /// site. Records of different alerts interleave; each alert's own are oldest first.
    fn kpi_records_of_sites(
        &self,
        sites: Option<&[SiteId]>,
        period: Period,
    ) -> impl Future<Output = Result<Vec<AuditRecord>>> + Send;
}

// ---- conversions shared by both backends ----

pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| AlertStoreError::OutOfRange { what, value })
}

pub(crate) fn ms(t: Timestamp) -> Result<i64> {
    to_i64("timestamp", t.unix_ms())
}

pub(crate) fn from_ms(what: &'static str, v: i64) -> Result<Timestamp> {
    u64::try_from(v)
        .map(Timestamp::from_unix_ms)
        .map_err(|_| AlertStoreError::InvalidColumn { what, found: v })
}

pub(crate) fn usize_col(what: &'static str, v: i64) -> Result<usize> {
    usize::try_from(v).map_err(|_| AlertStoreError::InvalidColumn { what, found: v })
}

pub(crate) fn to_json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| AlertStoreError::Corrupt { what, source })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| AlertStoreError::Corrupt { what, source })
}

pub(crate) fn severity_rank(s: Severity) -> i16 {
    match s {
        Severity::Critical => 0,
        Severity::Major => 1,
        Severity::Minor => 2,
        Severity::Warning => 3,
    }
}

/// The audit change's stable name (the `change` column).
pub(crate) fn change_name(c: &AuditChange) -> &'static str {
    match c {
        AuditChange::Raised { .. } => "raised",
        AuditChange::Repeated { .. } => "repeated",
        AuditChange::ConditionCleared { .. } => "condition_cleared",
        AuditChange::Transition { .. } => "transition",
        AuditChange::Escalated { .. } => "escalated",
        AuditChange::TierEmpty { .. } => "tier_empty",
        AuditChange::Notified { .. } => "notified",
        AuditChange::Note => "note",
    }
}

/// The columns of an alert row, computed once for both backends.
pub(crate) struct AlertRow {
    pub id: i64,
    pub site: String,
    pub subject: String,
    pub kind: &'static str,
    pub severity: &'static str,
    pub severity_rank: i16,
    pub state: &'static str,
    pub is_open: bool,
    pub repeat_count: i64,
    pub opened_at: i64,
    pub last_seen_at: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<i64>,
    pub disposition: Option<&'static str>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
    pub details: String,
    pub body: String,
}

impl AlertRow {
    pub fn of(a: &Alert) -> Result<Self> {
        Ok(Self {
            id: to_i64("alert id", a.id.0)?,
            site: a.site.to_string(),
            subject: to_json("alert subject", &a.key.subject)?,
            kind: a.key.kind.as_str(),
            severity: a.severity.as_str(),
            severity_rank: severity_rank(a.severity),
            state: a.state.as_str(),
            is_open: !a.state.is_closed(),
            repeat_count: i64::from(a.repeat_count),
            opened_at: ms(a.opened_at)?,
            last_seen_at: ms(a.last_seen_at)?,
            acknowledged_by: a
                .acknowledged
                .as_ref()
                .map(|k| to_json("actor", &k.by))
                .transpose()?,
            acknowledged_at: a.acknowledged.as_ref().map(|k| ms(k.at)).transpose()?,
            disposition: a.disposition.map(|d| d.as_str()),
            closed_at: a.closed_at.map(ms).transpose()?,
            closed_by: a
                .closed_by
                .as_ref()
                .map(|b| to_json("actor", b))
                .transpose()?,
            details: to_json("alert details", &a.details)?,
            body: to_json("alert", a)?,
        })
    }
}

/// The columns of an escalation task row.
pub(crate) struct TaskRow {
    pub alert_id: i64,
    pub site: String,
    pub tier: Option<i64>,
    pub due_at: Option<i64>,
    pub task: String,
}

impl TaskRow {
    pub fn of(t: &EscalationTask) -> Result<Self> {
        let (tier, due_at) = match t.next_due() {
            Some((tier, at)) => (Some(to_i64("tier", tier as u64)?), Some(ms(at)?)),
            None => (None, None),
        };
        Ok(Self {
            alert_id: to_i64("alert id", t.alert.0)?,
            site: t.site.to_string(),
            tier,
            due_at,
            task: to_json("escalation task", t)?,
        })
    }
}

/// When a detector state was saved (for operators reading the table; never used to decide).
#[allow(clippy::disallowed_methods)] // a record-keeping column, not a core decision
pub(crate) fn detector_state_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The ids a reservation returned (`first`, `end` as stored) as a range.
pub(crate) fn id_range(first: i64, end: i64) -> Result<Range<u64>> {
    let col = |v: i64| {
        u64::try_from(v).map_err(|_| AlertStoreError::InvalidColumn {
            what: "alert id counter",
            found: v,
        })
    };
    let ids = col(first)?..col(end)?;
    if ids.start > ids.end {
        return Err(AlertStoreError::InvalidColumn {
            what: "alert id counter",
            found: first,
        });
    }
    Ok(ids)
}

pub(crate) fn lease_until(now: Timestamp, lease: Duration) -> Result<i64> {
    ms(now + lease)
}
