//! The HTTP API: JSON under `/api/v1`, described by an OpenAPI document generated from the
//! code, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! # Layout
//! - [`app`] builds the router from an [`AppState`]; tests drive it with
//!   `tower::ServiceExt::oneshot`, no socket needed. [`serve`] runs it on a listener the caller
//!   bound, until the caller's shutdown future completes.
//! - `error`: the one error type; `extract`: body, query, path and session extractors.
//! - `session_routes`: login, logout, who am I, users. `registry_routes`: CRUD, import, on
//!   duty. `telemetry_routes` over the [`TelemetryQueries`] trait. `alert_routes`: alert
//!   listing, detail, KPIs and "away until" (schemas of the alert JSON in `alert_schema`).
//!   `events_routes`: the live events (Server-Sent Events) of a
//!   [`LiveHub`](crate::notify::live::LiveHub) attached with [`AppState::with_live`].
//!   `ops`: health, readiness, metrics.

mod alert_query;
mod alert_routes;
mod alert_schema;
mod error;
mod events_routes;
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
use std::sync::{Arc, Mutex, OnceLock};
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

use crate::alert_store::AnyAlertStore;
use crate::auth::{LoginLimiter, LoginRateLimit, PasswordHashing};
use crate::notify::live::LiveHub;
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
    /// How often an open event stream checks that its session is still live (logout,
    /// expiry), in seconds.
    pub events_session_check_s: u64,
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
            events_session_check_s: 30,
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

// Design: `Clone` so that the `with_*` builders can add optional parts to a state that is
// already shared (`Arc::unwrap_or_clone`); the limiter is shared by every copy.
#[derive(Clone)]
struct Inner {
    registry: Registry,
    telemetry: Arc<dyn TelemetryQueries>,
    config: ApiConfig,
    clock: Arc<dyn Clock>,
    hashing: PasswordHashing,
    limiter: Arc<Mutex<LoginLimiter>>,
    /// Set once by [`AppState::with_live`].
    live: OnceLock<LiveHub>,
    /// The alert store; without one the alert endpoints answer 503.
    alerts: Option<AnyAlertStore>,
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
            limiter: Arc::new(Mutex::new(limiter)),
            live: OnceLock::new(),
            alerts: None,
        }))
    }

    /// Serves the alert endpoints (`/alerts`, `/kpis`) from `store`.
    pub fn with_alerts(self, store: AnyAlertStore) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.0);
        inner.alerts = Some(store);
        Self(Arc::new(inner))
    }

    /// The alert store, when the server has one.
    pub fn alerts(&self) -> Option<&AnyAlertStore> {
        self.0.alerts.as_ref()
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

    /// Serves `hub` at `GET /api/v1/events` (without one that endpoint answers 503). Set it
    /// while building the state: clones share it, and a second hub is ignored (logged).
    pub fn with_live(self, hub: LiveHub) -> Self {
        if self.0.live.set(hub).is_err() {
            tracing::warn!("a live hub is already attached; the new one is ignored");
        }
        self
    }

    /// The live event hub, when one is attached.
    pub fn live(&self) -> Option<&LiveHub> {
        self.0.live.get()
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
                .merge(events_routes::routes())
                .merge(alert_routes::routes()),
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
    // Open event streams never end by themselves: end them, or the graceful shutdown would
    // wait for them forever.
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        if let Some(hub) = stopping.live() {
            hub.close();
        }
    };
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    upkeep.abort();
    result
}
