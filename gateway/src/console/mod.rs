//! The local alarm console: a small page on the site network that lists open calls, falls and
//! fire alarms with the resident, room and time, beeps while any is unacknowledged, marks
//! which have reached the server, and records local acknowledgements. It needs nothing from
//! the internet: the page, its script and its sound are served by the gateway itself.
//!
//! - `GET /` the page; `GET /api/alarms` the alarms and the gateway's state as JSON;
//! - `POST /api/alarms/{device}/{boot}/{seq}/ack` with `{"by": "name"}` acknowledges;
//! - `GET /api/counters` every counter; `GET /api/boards` each board's last-seen state.

pub mod alarms;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use vigil_protocol::StaffName;

use self::alarms::{AckError, Alarm, AlarmBoard};
use crate::status::{BoardLiveness, Counters};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// What the core shares with the console.
#[derive(Clone)]
pub struct ConsoleState {
    pub site: String,
    pub gateway: String,
    pub alarms: Arc<Mutex<AlarmBoard>>,
    pub boards: Arc<Mutex<BoardLiveness>>,
    pub counters: Arc<Counters>,
    pub link: Arc<Mutex<LinkView>>,
    pub acks: mpsc::Sender<AckCommand>,
}

/// The gateway's state as the console shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkView {
    pub uplink_connected: bool,
    pub spool_frames: u64,
    pub oldest_unsent_ms: Option<u64>,
}

/// A local acknowledgement for the core to record and forward.
#[derive(Debug)]
pub struct AckCommand {
    pub key: String,
    pub by: StaffName,
    pub reply: oneshot::Sender<Result<Alarm, AckError>>,
}

#[derive(Serialize)]
struct AlarmsView {
    site: String,
    gateway: String,
    link: LinkView,
    alarms: Vec<Alarm>,
}

#[derive(Deserialize)]
struct AckBody {
    by: String,
}

/// Errors of the console API, each a status and a JSON body.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the gateway is shutting down")]
    Unavailable,
    #[error("{0}")]
    Storage(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// The console's routes.
pub fn app(state: ConsoleState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
        )
        .route(
            "/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route(
            "/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/api/alarms", get(list_alarms))
        .route("/api/alarms/{device}/{boot}/{seq}/ack", post(acknowledge))
        .route("/api/counters", get(counters))
        .route("/api/boards", get(boards))
        .with_state(state)
}

async fn list_alarms(State(s): State<ConsoleState>) -> Json<AlarmsView> {
    let alarms = s.alarms.lock().map(|b| b.listing()).unwrap_or_default();
    let link = s.link.lock().map(|l| l.clone()).unwrap_or_default();
    Json(AlarmsView {
        site: s.site.clone(),
        gateway: s.gateway.clone(),
        link,
        alarms,
    })
}

async fn acknowledge(
    State(s): State<ConsoleState>,
    Path((device, boot, seq)): Path<(String, u32, u32)>,
    Json(body): Json<AckBody>,
) -> Result<Json<Alarm>, ApiError> {
    let by = StaffName::new(body.by.trim())
        .map_err(|_| ApiError::BadRequest("`by` must be 1-48 printable ASCII characters".into()))?;
    let (reply, answer) = oneshot::channel();
    s.acks
        .send(AckCommand {
            key: Alarm::key_of(&device, boot, seq),
            by,
            reply,
        })
        .await
        .map_err(|_| ApiError::Unavailable)?;
    match answer.await.map_err(|_| ApiError::Unavailable)? {
        Ok(a) => Ok(Json(a)),
        Err(e @ AckError::NotFound(_)) => Err(ApiError::NotFound(e.to_string())),
        Err(e @ AckError::AlreadyAcked { .. }) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ AckError::Storage(_)) => Err(ApiError::Storage(e.to_string())),
    }
}

async fn counters(State(s): State<ConsoleState>) -> impl IntoResponse {
    Json(s.counters.snapshot())
}

async fn boards(State(s): State<ConsoleState>) -> impl IntoResponse {
    let map: std::collections::BTreeMap<String, crate::status::BoardSeen> = s
        .boards
        .lock()
        .map(|b| {
            b.boards()
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Json(map)
}
