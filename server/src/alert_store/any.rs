//! The server's alert store, whichever backend the configuration picks.
//!
//! [`AlertStore`] uses `async fn` in the trait, so it is not object safe; the server holds
//! this enum instead of a `dyn AlertStore`.

use std::ops::Range;
use std::time::Duration;

use super::{
    AlertDetail, AlertFilter, AlertPage, AlertStore, AlertStoreError, Applied, ChangeSet,
    ClaimedTask, Completion, PgAlertStore, Result, SqliteAlertStore,
};
use crate::alerts::audit::AuditRecord;
use crate::alerts::book::BookSnapshot;
use crate::alerts::kpi::Period;
use crate::alerts::lifecycle::AlertId;
use crate::alerts::Timestamp;
use crate::config::DatabaseConfig;
use crate::escalation::EscalationTask;
use crate::ids::SiteId;
use crate::notify::webhook::{DeliveryId, DeliveryRecord};

/// File of the alert store beside the telemetry database when no database URL is given.
pub const ALERT_FILE: &str = "alerts.sqlite3";

/// One of the two backends.
#[derive(Clone)]
pub enum AnyAlertStore {
    Postgres(std::sync::Arc<PgAlertStore>),
    Sqlite(std::sync::Arc<SqliteAlertStore>),
}

impl std::fmt::Debug for AnyAlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "AnyAlertStore::Postgres",
            Self::Sqlite(_) => "AnyAlertStore::Sqlite",
        })
    }
}

impl From<PgAlertStore> for AnyAlertStore {
    fn from(s: PgAlertStore) -> Self {
        Self::Postgres(std::sync::Arc::new(s))
    }
}

impl From<SqliteAlertStore> for AnyAlertStore {
    fn from(s: SqliteAlertStore) -> Self {
        Self::Sqlite(std::sync::Arc::new(s))
    }
}

/// Opens the alert store the database configuration names: PostgreSQL at `url` (migrations
/// applied), else `alerts.sqlite3` under `data_dir`.
pub async fn open(config: &DatabaseConfig) -> Result<AnyAlertStore> {
    match &config.url {
        Some(url) => {
            let pg: tokio_postgres::Config = url
                .parse()
                .map_err(|e: tokio_postgres::Error| AlertStoreError::PoolSetup(e.to_string()))?;
            Ok(PgAlertStore::connect(pg, config.pool_size.max(2))
                .await?
                .into())
        }
        None => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                AlertStoreError::SqliteSetup(format!(
                    "cannot create the data directory {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            Ok(SqliteAlertStore::open(config.data_dir.join(ALERT_FILE))
                .await?
                .into())
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyAlertStore::Postgres($s) => $e,
            AnyAlertStore::Sqlite($s) => $e,
        }
    };
}

impl AlertStore for AnyAlertStore {
    async fn apply(&self, changes: &ChangeSet) -> Result<Applied> {
        each!(self, s => s.apply(changes).await)
    }

    async fn book_snapshot(&self) -> Result<BookSnapshot> {
        each!(self, s => s.book_snapshot().await)
    }

    async fn reserve_alert_ids(&self, count: u32) -> Result<Range<u64>> {
        each!(self, s => s.reserve_alert_ids(count).await)
    }

    async fn pending_escalations(&self) -> Result<Vec<EscalationTask>> {
        each!(self, s => s.pending_escalations().await)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>> {
        each!(self, s => s.claim_due(now, limit, lease).await)
    }

    async fn complete(
        &self,
        claim: &ClaimedTask,
        task: &EscalationTask,
        audit: &[AuditRecord],
    ) -> Result<Completion> {
        each!(self, s => s.complete(claim, task, audit).await)
    }

    async fn save_detector_states(&self, states: &[(String, String)]) -> Result<()> {
        each!(self, s => s.save_detector_states(states).await)
    }

    async fn detector_states(&self) -> Result<Vec<(String, String)>> {
        each!(self, s => s.detector_states().await)
    }

    async fn append_deliveries(&self, records: &[DeliveryRecord]) -> Result<()> {
        each!(self, s => s.append_deliveries(records).await)
    }

    async fn deliveries(&self, delivery: DeliveryId) -> Result<Vec<DeliveryRecord>> {
        each!(self, s => s.deliveries(delivery).await)
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<AlertPage> {
        each!(self, s => s.list_alerts(filter).await)
    }

    async fn alert_detail(&self, id: AlertId) -> Result<Option<AlertDetail>> {
        each!(self, s => s.alert_detail(id).await)
    }

    async fn kpi_records(&self, site: &SiteId, period: Period) -> Result<Vec<AuditRecord>> {
        each!(self, s => s.kpi_records(site, period).await)
    }

    async fn kpi_records_of_sites(
        &self,
        sites: Option<&[SiteId]>,
        period: Period,
    ) -> Result<Vec<AuditRecord>> {
        each!(self, s => s.kpi_records_of_sites(sites, period).await)
    }
}
