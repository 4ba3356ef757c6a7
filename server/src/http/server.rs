//! Starting the HTTP API inside `vigil server`: the registry on the server's database, the
//! initial admin from the environment, telemetry from the server's store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::store_telemetry::StoreTelemetry;
use super::{serve, ApiConfig, AppState, Clock, SystemClock};
use crate::auth::{bootstrap_admin, AdminBootstrap, PasswordHashing};
use crate::config::DatabaseConfig;
use crate::registry::{PostgresRegistry, Registry, RegistryStore, SqliteRegistry};
use crate::run::RunError;
use crate::store::SharedStore;

/// File of the registry (sites, residents, devices, users) beside the telemetry database.
pub const REGISTRY_FILE: &str = "registry.sqlite3";

/// A running HTTP API.
pub struct ApiHandle {
    pub address: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Opens the registry, creates the initial admin when `VIGIL_ADMIN_USER` and
/// `VIGIL_ADMIN_PASSWORD` say so, binds `config.listen` and serves until `shutdown`.
pub async fn start(
    database: &DatabaseConfig,
    store: SharedStore,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ApiHandle, RunError> {
    start_with(database, store, config, shutdown, |state| state).await
}

/// Opens the registry on the server's database (PostgreSQL, else `registry.sqlite3`).
pub async fn open_registry(database: &DatabaseConfig) -> Result<Arc<dyn RegistryStore>, RunError> {
    let registry: Arc<dyn RegistryStore> = match &database.url {
        Some(url) => Arc::new(
            PostgresRegistry::connect(url, None)
                .await
                .map_err(|e| RunError::Api(format!("registry on PostgreSQL: {e}")))?,
        ),
        None => {
            std::fs::create_dir_all(&database.data_dir).map_err(|e| {
                RunError::Api(format!(
                    "cannot create the data directory {}: {e}",
                    database.data_dir.display()
                ))
            })?;
            let path = database.data_dir.join(REGISTRY_FILE);
            Arc::new(
                SqliteRegistry::open(&path)
                    .map_err(|e| RunError::Api(format!("registry at {}: {e}", path.display())))?,
            )
        }
    };
    Ok(registry)
}

/// As [`start`], with `extend` adding to the API state (alert actions, …) before serving.
pub async fn start_with(
    database: &DatabaseConfig,
    store: SharedStore,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extend: impl FnOnce(AppState) -> AppState,
) -> Result<ApiHandle, RunError> {
    let registry = open_registry(database).await?;
    let hashing = PasswordHashing::production();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin = AdminBootstrap::from_env().map_err(|e| RunError::Api(e.to_string()))?;
    if let Some(admin) = admin {
        let created = bootstrap_admin(registry.as_ref(), &hashing, &admin, clock.now())
            .await
            .map_err(|e| RunError::Api(format!("initial admin: {e}")))?;
        if created {
            tracing::info!(user = %admin.username, "initial admin created");
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            RunError::Api(format!(
                "cannot listen on {} for the HTTP API ({e}); choose another address with \
                 --api-listen or `listen` in the [api] table (port 0 picks a free port)",
                config.listen
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| RunError::Api(format!("HTTP listener: {e}")))?;
    let state = extend(AppState::new(
        Registry::new(registry),
        Arc::new(StoreTelemetry::new(store)),
        config,
        clock,
        hashing,
    ));
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, state, shutdown).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok(ApiHandle { address, task })
}
