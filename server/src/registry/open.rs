//! Opening the registry on the server's database: PostgreSQL at the configured URL, or an
//! SQLite file beside the telemetry database.

use std::sync::Arc;

use super::{PostgresRegistry, RegistryStore, SqliteRegistry, StoreError};
use crate::config::DatabaseConfig;

/// File of the registry (sites, residents, devices, users) beside the telemetry database.
pub const REGISTRY_FILE: &str = "registry.sqlite3";

/// Opens the registry the server's `[database]` names, applying its migrations: PostgreSQL at
/// `url` (the same database and search path as the telemetry store), else
/// `data_dir/registry.sqlite3` (the directory is created when missing).
pub async fn open(database: &DatabaseConfig) -> Result<Arc<dyn RegistryStore>, StoreError> {
    match &database.url {
        Some(url) => {
            let pg = PostgresRegistry::connect(url, None).await.map_err(|e| {
                StoreError::Unavailable(format!("registry on PostgreSQL: {}", error_text(e)))
            })?;
            Ok(Arc::new(pg))
        }
        None => {
            std::fs::create_dir_all(&database.data_dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the data directory {}: {e}",
                    database.data_dir.display()
                ))
            })?;
            let path = database.data_dir.join(REGISTRY_FILE);
            let sqlite = SqliteRegistry::open(&path).map_err(|e| {
                StoreError::Unavailable(format!(
                    "registry at {}: {}",
                    path.display(),
                    error_text(e)
                ))
            })?;
            Ok(Arc::new(sqlite))
        }
    }
}

/// The error's own text, without the variant's prefix (it is re-wrapped above).
fn error_text(e: StoreError) -> String {
    match e {
        StoreError::Unavailable(m)
        | StoreError::Backend(m)
        | StoreError::Corrupt(m)
        | StoreError::Integrity(m) => m,
        other @ StoreError::AlreadyExists { .. } => other.to_string(),
    }
}
