//! Shared fixtures of the registry, auth and API tests: real PostgreSQL (one schema per test)
//! and SQLite backends, a clock moved by hand, an in-memory telemetry store, and a client
//! that drives the router without a socket.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::http::telemetry::{
    DeviceLatestState, Reading, ReadingCursor, ReadingsPage, TelemetryError, TelemetryQueries,
    TimeRange, WaterBucket, WaterUse,
};
use vigil_server::http::{app, ApiConfig, AppState, Clock};
use vigil_server::ids::DeviceId;
use vigil_server::registry::{PostgresRegistry, Registry, RegistryStore, SqliteRegistry};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn pg_url() -> String {
    std::env::var("VIGIL_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store for one test; PostgreSQL gets its own schema, dropped by [`TestDb::cleanup`].
pub struct TestDb {
    pub store: Arc<dyn RegistryStore>,
    schema: Option<String>,
}

impl TestDb {
    pub async fn open(backend: Backend, tag: &str) -> Self {
        match backend {
            Backend::Sqlite => Self {
                store: Arc::new(SqliteRegistry::open_in_memory().expect("sqlite opens")),
                schema: None,
            },
            Backend::Postgres => {
                // One schema per test, named after the test so that a run left behind by a
                // failed test is dropped by the next run instead of piling up.
                let short: String = tag
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(12)
                    .collect();
                let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                let schema = format!("vr_{short}_{:08x}", hash as u32);
                drop_schema(&schema).await;
                let store = PostgresRegistry::connect(&pg_url(), Some(&schema))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL at {} (VIGIL_TEST_PG_URL) is needed: {e}",
                            pg_url()
                        )
                    });
                Self {
                    store: Arc::new(store),
                    schema: Some(schema),
                }
            }
        }
    }

    pub fn registry(&self) -> Registry {
        Registry::new(self.store.clone())
    }

    pub async fn cleanup(self) {
        if let Some(schema) = self.schema {
            drop_schema(&schema).await;
        }
    }
}

async fn drop_schema(schema: &str) {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} (VIGIL_TEST_PG_URL) is needed: {e}",
                pg_url()
            )
        });
    let driver = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
    drop(client);
    let _ = driver.await;
}

/// A clock the test moves.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap()
}

// ---- fixtures -------------------------------------------------------------------------

pub fn site_json(id: &str) -> Value {
    json!({"id": id, "kind": "facility", "name": format!("Facility {id}"),
           "address": "1 Main Street", "timezone": "Asia/Shanghai"})
}

pub fn resident_json(id: &str, site: &str) -> Value {
    json!({"id": id, "site_id": site, "name": format!("Resident {id}"),
           "emergency_contacts": [{"name": "Daughter", "phone": "+86 138 0000 0000"}],
           "conditions": ["diabetes"]})
}

pub fn device_json(id: &str, site: &str, resident: &str) -> Value {
    json!({"id": id, "kind": "meter", "site_id": site, "resident_id": resident})
}

pub fn responder_json(id: &str, sites: &[&str]) -> Value {
    json!({"id": id, "name": format!("Nurse {id}"), "role": "nurse",
           "channels": [{"kind": "phone", "number": "+86 139 0000 0000"}], "site_ids": sites})
}

// ---- telemetry in memory (tests only; the real store implements the trait) ------------

#[derive(Default)]
pub struct MemoryTelemetry {
    /// (device, reading)
    pub readings: Mutex<Vec<(DeviceId, Reading)>>,
    pub latest: Mutex<Vec<DeviceLatestState>>,
    /// (device, at, used_ml)
    pub usage: Mutex<Vec<(DeviceId, DateTime<Utc>, u64)>>,
}

fn bucket_start(at: DateTime<Utc>, bucket: WaterBucket, tz: Tz) -> DateTime<Utc> {
    let local = at.with_timezone(&tz);
    let start = match bucket {
        WaterBucket::Hour => local
            .with_minute(0)
            .and_then(|l| l.with_second(0))
            .and_then(|l| l.with_nanosecond(0))
            .unwrap(),
        WaterBucket::Day => tz
            .with_ymd_and_hms(local.year(), local.month(), local.day(), 0, 0, 0)
            .earliest()
            .unwrap(),
    };
    start.with_timezone(&Utc)
}

#[async_trait]
impl TelemetryQueries for MemoryTelemetry {
    async fn latest_states(
        &self,
        devices: &[DeviceId],
    ) -> Result<Vec<DeviceLatestState>, TelemetryError> {
        Ok(self
            .latest
            .lock()
            .unwrap()
            .iter()
            .filter(|s| devices.contains(&s.device_id))
            .cloned()
            .collect())
    }

    async fn readings(
        &self,
        device: &DeviceId,
        range: TimeRange,
        after: Option<ReadingCursor>,
        limit: u32,
    ) -> Result<ReadingsPage, TelemetryError> {
        let mut rs: Vec<Reading> = self
            .readings
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, r)| d == device && r.at >= range.from && r.at < range.to)
            .filter(|(_, r)| after.is_none_or(|a| ReadingCursor::of(r) > a))
            .map(|(_, r)| r.clone())
            .collect();
        rs.sort_by_key(ReadingCursor::of);
        let more = rs.len() > limit as usize;
        rs.truncate(limit as usize);
        let next = if more {
            rs.last().map(ReadingCursor::of)
        } else {
            None
        };
        Ok(ReadingsPage { readings: rs, next })
    }

    async fn water_use(
        &self,
        meters: &[DeviceId],
        range: TimeRange,
        bucket: WaterBucket,
        tz: Tz,
    ) -> Result<Vec<WaterUse>, TelemetryError> {
        let mut out: Vec<WaterUse> = Vec::new();
        let mut start = bucket_start(range.from, bucket, tz);
        while start < range.to {
            let next = match bucket {
                WaterBucket::Hour => start + Duration::hours(1),
                WaterBucket::Day => bucket_start(start + Duration::hours(26), bucket, tz),
            };
            let used_ml = self
                .usage
                .lock()
                .unwrap()
                .iter()
                .filter(|(d, at, _)| meters.contains(d) && *at >= start && *at < next)
                .filter(|(_, at, _)| *at >= range.from && *at < range.to)
                .map(|(_, _, ml)| ml)
                .sum();
            out.push(WaterUse { start, used_ml });
            start = next;
        }
        Ok(out)
    }
}

// ---- the app under test ----------------------------------------------------------------

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub telemetry: Arc<MemoryTelemetry>,
    pub client_addr: SocketAddr,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn new(backend: Backend, tag: &str) -> Self {
        Self::with_config(backend, tag, ApiConfig::default()).await
    }

    pub async fn with_config(backend: Backend, tag: &str, config: ApiConfig) -> Self {
        let db = TestDb::open(backend, tag).await;
        let clock = ManualClock::new(t0());
        let telemetry = Arc::new(MemoryTelemetry::default());
        let state = AppState::new(
            db.registry(),
            telemetry.clone(),
            config,
            clock.clone(),
            PasswordHashing::insecure_fast_for_tests(),
        );
        Self {
            db,
            state,
            clock,
            telemetry,
            client_addr: SocketAddr::from(([192, 0, 2, 10], 50_000)),
        }
    }

    pub async fn add_user(&self, username: &str, role: Role, sites: Option<&[&str]>) {
        let scope = match sites {
            None => SiteScope::All,
            Some(s) => SiteScope::Sites(s.iter().map(|s| s.to_string()).collect()),
        };
        create_user(
            self.db.store.as_ref(),
            self.state.hashing(),
            NewUser {
                username: username.into(),
                password: PASSWORD.into(),
                role,
                scope,
            },
            self.clock.now(),
        )
        .await
        .expect("user created");
    }

    /// Signs in and returns the bearer token.
    pub async fn login(&self, username: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login of {username}: {}", r.text);
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<Body>,
    ) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    pub async fn send(&self, mut req: Request<Body>) -> Response {
        req.extensions_mut().insert(ConnectInfo(self.client_addr));
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }
}

/// Runs the async test body on both backends: `both_backends!(name, |backend| async { … })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                let f = $body;
                f(Backend::Sqlite, concat!(stringify!($name), "_s")).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                let f = $body;
                f(Backend::Postgres, concat!(stringify!($name), "_p")).await;
            }
        }
    };
}
