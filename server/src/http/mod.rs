//! The HTTP API: JSON under `/api/v1`, described by an OpenAPI document generated from the
//! code, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! # Layout
//! - [`app`] builds the router from an [`AppState`]; tests drive it with
//!   `tower::ServiceExt::oneshot`, no socket needed. [`serve`] runs it on a listener the caller
//!   bound, until the caller's shutdown future completes.
//! - `error`: the one error type; `extract`: body, query, path and session extractors.
//! - `session_routes`: login, logout, who am I, users. `registry_routes`: CRUD, import, on
//!   duty. `telemetry_routes` over the [`TelemetryQueries`] trait. `ops`: health, readiness,
//!   metrics.

mod alert_action_routes;
mod error;
mod extract;
mod ops;
mod registry_routes;
pub mod server;
mod session_routes;
pub mod store_telemetry;
pub mod telemetry;
mod telemetry_routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use extract::SESSION_COOKIE;
pub use ops::metrics_handle;
pub use telemetry::TelemetryQueries;

use crate::auth::{LoginLimiter, LoginRateLimit, PasswordHashing};
use crate::registry::Registry;

/// Settings of the HTTP API (the `[api]` table of the server configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// How long a login session lasts, in seconds.
    pub session_lifetime_s: u64,
    /// Login attempts per user name.
    pub login_per_user: LoginRateLimit,
    /// Login attempts per client address.
    pub login_per_ip: LoginRateLimit,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest import file, in bytes.
    pub max_import_bytes: usize,
    /// Mark the session cookie `Secure` (HTTPS only; browsers also accept it on localhost).
    pub secure_cookie: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            session_lifetime_s: 12 * 3600,
            login_per_user: LoginRateLimit {
                burst: 5,
                per_minute: 5,
            },
            login_per_ip: LoginRateLimit {
                burst: 20,
                per_minute: 30,
            },
            max_body_bytes: 64 * 1024,
            max_import_bytes: 8 * 1024 * 1024,
            secure_cookie: true,
        }
    }
}

impl ApiConfig {
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_lifetime_s)
    }
}

/// Where handlers read the time; tests substitute a clock they move by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the HTTP layer reads the wall clock; everything else takes a `Clock`.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

struct Inner {
    registry: Registry,
    telemetry: Arc<dyn TelemetryQueries>,
    config: ApiConfig,
    clock: Arc<dyn Clock>,
    hashing: PasswordHashing,
    limiter: Mutex<LoginLimiter>,
    alert_actions: Option<crate::engine::AlertActions>,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// Keys the login limiter tracks at most, per kind (user names, addresses).
const LIMITER_MAX_KEYS: usize = 100_000;

impl AppState {
    pub fn new(
        registry: Registry,
        telemetry: Arc<dyn TelemetryQueries>,
        config: ApiConfig,
        clock: Arc<dyn Clock>,
        hashing: PasswordHashing,
    ) -> Self {
        let limiter =
            LoginLimiter::new(config.login_per_user, config.login_per_ip, LIMITER_MAX_KEYS);
        Self(Arc::new(Inner {
            registry,
            telemetry,
            config,
            clock,
            hashing,
            limiter: Mutex::new(limiter),
            alert_actions: None,
        }))
    }

    /// Lets the API act on alerts through the alert engine. Call while building the state,
    /// before it is cloned.
    pub fn with_alert_actions(mut self, actions: crate::engine::AlertActions) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.alert_actions = Some(actions),
            None => tracing::error!("alert actions attached after the API state was shared"),
        }
        self
    }

    pub fn alert_actions(&self) -> Option<&crate::engine::AlertActions> {
        self.0.alert_actions.as_ref()
    }

    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub fn telemetry(&self) -> &Arc<dyn TelemetryQueries> {
        &self.0.telemetry
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    pub fn hashing(&self) -> &PasswordHashing {
        &self.0.hashing
    }

    pub(crate) fn limiter(&self) -> &Mutex<LoginLimiter> {
        &self.0.limiter
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vigil API",
        description = "Registry, telemetry and sessions of a Vigil server. Every endpoint except \
            login needs a session: the `vigil_session` cookie or `Authorization: Bearer <token>`."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

/// The versioned API with its OpenAPI document.
fn api_v1(max_import_bytes: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            session_routes::routes()
                .merge(registry_routes::routes(max_import_bytes))
                .merge(telemetry_routes::routes())
                .merge(alert_action_routes::routes()),
        )
        .split_for_parts()
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_v1(ApiConfig::default().max_import_bytes).1
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (api, doc) = api_v1(state.config().max_import_bytes);
    let doc = Arc::new(doc);
    let max_body = state.config().max_body_bytes;
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(DefaultBodyLimit::max(max_body));
    ops::routes()
        .merge(api)
        .route_layer(axum::middleware::from_fn(ops::track_metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then drains open requests.
/// Accepted sockets get `TCP_NODELAY`: small JSON answers must not wait for Nagle.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Histogram samples accumulate until drained; drain them even when nobody scrapes.
    let handle = metrics_handle();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on an API connection");
        }
    });
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    upkeep.abort();
    result
}
