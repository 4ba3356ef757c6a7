//! Starting the HTTP API inside `vigil server`: the registry (opened by `run_with`), the
//! initial admin from the environment, telemetry from the server's store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::store_telemetry::StoreTelemetry;
use super::{serve, ApiConfig, AppState, Clock, SystemClock};
use crate::auth::{bootstrap_admin, AdminBootstrap, PasswordHashing};
use crate::notify::live::LiveHub;
use crate::registry::Registry;
use crate::run::RunError;
use crate::store::SharedStore;

/// File of the registry beside the telemetry database (kept here for older callers).
pub use crate::registry::REGISTRY_FILE;

/// A running HTTP API.
pub struct ApiHandle {
    pub address: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Creates the initial admin when `VIGIL_ADMIN_USER` and `VIGIL_ADMIN_PASSWORD` say so, binds
/// `config.listen` and serves `registry` (opened by the caller, see [`crate::registry::open`]),
/// the telemetry of `store` and `live` (the live events) until `shutdown`.
pub async fn start(
    registry: Registry,
    store: SharedStore,
    config: ApiConfig,
    live: LiveHub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ApiHandle, RunError> {
    let hashing = PasswordHashing::production();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin = AdminBootstrap::from_env().map_err(|e| RunError::Api(e.to_string()))?;
    if let Some(admin) = admin {
        let created = bootstrap_admin(registry.store().as_ref(), &hashing, &admin, clock.now())
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
    let state = AppState::new(
        registry,
        Arc::new(StoreTelemetry::new(store)),
        config,
        clock,
        hashing,
    )
    .with_live(live);
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, state, shutdown).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok(ApiHandle { address, task })
}
