//! `GET /api/v1/events`: the live alert and audit events of the caller's sites as
//! Server-Sent Events, from the [`LiveHub`] attached with [`AppState::with_live`].

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::extract::{request_token, Caller};
use super::AppState;
use crate::auth::{hash_token, Principal, Role, SiteScope as UserScope};
use crate::ids::SiteId;
use crate::notify::live::{LiveMessage, LiveSubscription};
use crate::notify::sse::SiteScope;

/// The comment line sent on an idle stream, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What a browser waits before reconnecting after the stream drops.
pub const RETRY_MS: u64 = 3000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// The sites whose events `p` receives: admins every site; anyone else the sites of their
/// scope (which may be all sites, as for a district supervisor).
pub fn live_scope(p: &Principal) -> SiteScope {
    match (p.role, &p.scope) {
        (Role::Admin, _) | (_, UserScope::All) => SiteScope::All,
        (Role::Operator | Role::Manager | Role::Supervisor, UserScope::Sites(sites)) => {
            // Stored scopes hold valid ids; one that is not cannot match any event anyway.
            let sites: BTreeSet<SiteId> =
                sites.iter().filter_map(|s| SiteId::new(s).ok()).collect();
            SiteScope::Sites(sites)
        }
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| ApiError::BadRequest {
        code: "invalid_header",
        message: format!("Last-Event-ID must be an event id (a whole number), found {text:?}"),
        field: Some("Last-Event-ID".into()),
    })
}

fn unavailable() -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "live_events_unavailable".into(),
            message: "live events are not served by this server (no live hub attached)".into(),
            field: None,
        },
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

fn to_event(message: LiveMessage) -> Event {
    match message {
        LiveMessage::Event(e) => Event::default()
            .id(e.id.to_string())
            .event(e.kind.as_str())
            .data(e.data.to_string()),
        LiveMessage::Reload { gap, resume_after } => Event::default()
            .id(resume_after.to_string())
            .event("reload")
            .data(
                serde_json::json!({
                    "reason": gap.to_string(),
                    "requested": gap.requested,
                    "oldest": gap.oldest,
                })
                .to_string(),
            ),
    }
}

struct Stream {
    state: AppState,
    sub: LiveSubscription,
    token_hash: String,
    recheck: tokio::time::Interval,
    first: bool,
}

impl Stream {
    /// Whether the session the stream was opened with is still live.
    async fn session_live(&self) -> bool {
        match self
            .state
            .registry()
            .store()
            .get_session(&self.token_hash)
            .await
        {
            Ok(Some(s)) => s.is_live(self.state.now()),
            Ok(None) => false,
            // A database hiccup does not cut a console off; the next check decides.
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an event stream's session");
                true
            }
        }
    }

    async fn next(&mut self) -> Option<Event> {
        if self.first {
            self.first = false;
            // Tells the browser how soon to reconnect; a comment, not an event.
            return Some(
                Event::default()
                    .retry(Duration::from_millis(RETRY_MS))
                    .comment("vigil live events"),
            );
        }
        loop {
            tokio::select! {
                message = self.sub.next() => return message.map(to_event),
                _ = self.recheck.tick() => {
                    if !self.session_live().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Live events of the caller's sites (`text/event-stream`).
///
/// Events: `alert` (an alert's current state, as in the alert list, plus
/// `closed_unacknowledged`), `audit` (one audit-trail record), and `reload` (the events since
/// `Last-Event-ID` are no longer buffered: fetch the state again; the stream goes on). Each
/// has an `id`; a reconnect with `Last-Event-ID` gets what it missed first. Without it the
/// stream starts with the next event. The stream ends when the session ends.
#[utoipa::path(get, path = "/events", tag = "events",
    params(("Last-Event-ID" = Option<u64>, Header,
        description = "the id of the last event received, to resume after it")),
    responses(
        (status = 200, description = "the event stream", content_type = "text/event-stream",
            body = String),
        (status = 400, description = "bad Last-Event-ID", body = ErrorBody),
        (status = 401, description = "no valid session", body = ErrorBody),
        (status = 503, description = "live events not served", body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers)?;
    let Some(hub) = state.live() else {
        return Ok(unavailable());
    };
    // The extractor has just accepted this token.
    let token = request_token(&headers).ok_or(ApiError::Unauthenticated)?;
    let scope = live_scope(&caller);
    tracing::debug!(user = %caller.username, ?after, "event stream opened");
    let sub = hub.subscribe(scope, after);
    let every = Duration::from_secs(state.config().events_session_check_s.max(1));
    let mut recheck = tokio::time::interval(every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the session was just checked.
    recheck.reset();
    let stream = Stream {
        state: state.clone(),
        sub,
        token_hash: hash_token(&token),
        recheck,
        first: true,
    };
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, std::convert::Infallible>(event), s))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Reverse proxies (nginx) must pass events on at once, not buffer them.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(response)
}
