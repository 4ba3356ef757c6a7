//! Durable storage of telemetry: raw readings, per-device latest state, the replay windows
//! that deduplicate, and the quarantine of bad messages.
//!
//! One [`Store`] trait, two backends behind the same conformance suite
//! (`server/tests/store_conformance.rs`): [`postgres::PgStore`] for production and
//! [`sqlite::SqliteStore`], the default when no database URL is configured.
//!
//! A write is an [`IngestBatch`]: the frames and quarantine records of one or more MQTT
//! messages, committed in one transaction together with the replay windows and the latest
//! state of the devices concerned. Ingest acknowledges the messages only after that commit.

mod calendar;
mod model;
mod plan;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;

pub use model::{
    Backend, Bucket, CommitReport, DeviceLatest, IncomingFrame, IngestBatch, PruneReport,
    QuarantineRecord, Quarantined, ReadingCursor, ReadingsPage, ReadingsQuery, StoredReading,
    WaterUse, MAX_PAGE,
};

/// The server's storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Stores the new frames of `batch` (duplicates are recognised and skipped), updates the
    /// devices' latest state and replay windows, and records the quarantined messages — all
    /// in one transaction. The report says, frame by frame, what was done.
    async fn commit(&self, batch: Arc<IngestBatch>) -> Result<CommitReport, StoreError>;

    /// Readings of one device with `from_ms <= ts < to_ms`, oldest first, a page at a time.
    async fn readings(&self, query: ReadingsQuery) -> Result<ReadingsPage, StoreError>;

    /// The latest state of the given devices, or of every device when `devices` is `None`,
    /// ordered by device id.
    async fn latest(
        &self,
        devices: Option<Vec<vigil_protocol::DeviceId>>,
    ) -> Result<Vec<DeviceLatest>, StoreError>;

    /// Water used by one meter in each UTC hour or day of `[from_ms, to_ms)`; buckets with no
    /// reading are absent.
    async fn water_use(
        &self,
        device: vigil_protocol::DeviceId,
        from_ms: i64,
        to_ms: i64,
        bucket: Bucket,
    ) -> Result<Vec<WaterUse>, StoreError>;

    /// The most recent quarantine records, newest first.
    async fn quarantined(&self, limit: u32) -> Result<Vec<QuarantineRecord>, StoreError>;

    /// Deletes raw readings with `ts < older_than_ms` (on PostgreSQL: the daily partitions
    /// that end at or before it) and replay windows not written since then.
    async fn prune(&self, older_than_ms: i64) -> Result<PruneReport, StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A shared handle on whichever store was opened.
pub type SharedStore = Arc<dyn Store>;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL pool setup: {0}")]
    PoolSetup(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migrations: {0}")]
    Migration(#[from] refinery::Error),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the SQLite worker thread stopped")]
    WorkerGone,
    #[error("invalid query: {0}")]
    InvalidQuery(&'static str),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A short, stable name for counters.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Postgres(_) => "postgres",
            StoreError::Pool(_) | StoreError::PoolSetup(_) => "pool",
            StoreError::Sqlite(_) => "sqlite",
            StoreError::Migration(_) => "migration",
            StoreError::DataDir { .. } => "data_dir",
            StoreError::WorkerGone => "worker_gone",
            StoreError::InvalidQuery(_) => "invalid_query",
            StoreError::Corrupt(_) => "corrupt",
        }
    }
}

/// Opens the store the configuration names: PostgreSQL when `url` is set, otherwise SQLite
/// in `data_dir`. Migrations are applied before this returns.
pub async fn open(config: &crate::config::DatabaseConfig) -> Result<SharedStore, StoreError> {
    match &config.url {
        Some(url) => Ok(Arc::new(
            postgres::PgStore::connect(url, config.pool_size).await?,
        )),
        None => {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
            let path = config.data_dir.join("vigil.sqlite3");
            Ok(Arc::new(sqlite::SqliteStore::open(&path).await?))
        }
    }
}
