//! Operator actions on alerts: acknowledge, dispatch, on scene, resolve, note.
//!
//! Each action goes into the alert engine (so its in-memory alerts and the store agree),
//! as the signed-in user. Operators, managers and admins may act on the alerts of their
//! sites; supervisors watch and may not (403). An alert outside the caller's sites does not
//! exist for them (404); an action the alert's state does not allow is 409 naming the state
//! and what it is allowed from.

use axum::extract::{Path, Request, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{body_bytes, parse_json, Caller};
use super::AppState;
use crate::alerts::audit::Actor;
use crate::alerts::lifecycle::{AlertId, Disposition, LifecycleError, OperatorAction};
use crate::auth::{Principal, Role, SiteScope};
use crate::engine::{ActionError, ActionRequest, ActionScope};
use crate::ids::ResponderId;

/// Longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 2000;

/// The request body of every action; each action reads the fields it needs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Free text for the audit trail (required by `note`).
    #[serde(default)]
    pub note: Option<String>,
    /// How the alert ended (required by `resolve`): `real_emergency`, `false_alarm`,
    /// `resident_cancelled`, `test` or `condition_cleared`.
    #[serde(default)]
    pub disposition: Option<String>,
    /// Who was sent (required by `dispatch`).
    #[serde(default)]
    pub responder: Option<String>,
}

/// The alert after the action, as the alert API shows it.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(transparent)]
pub struct AlertJson {
    #[schema(value_type = Object)]
    alert: serde_json::Value,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Acknowledge,
    Dispatch,
    OnScene,
    Resolve,
    Note,
}

fn may_act(p: &Principal) -> Result<(), ApiError> {
    match p.role {
        Role::Operator | Role::Manager | Role::Admin => Ok(()),
        Role::Supervisor => Err(ApiError::Forbidden),
    }
}

fn alert_id(raw: &str) -> Result<AlertId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .map(AlertId)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_id",
            message: format!("invalid alert id {raw:?}: expected a positive number"),
            field: Some("id".into()),
        })
}

async fn read_body(req: Request, state: &AppState) -> Result<ActionBody, ApiError> {
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().eq_ignore_ascii_case("application/json"));
    let bytes = body_bytes(req, state).await?;
    if bytes.is_empty() {
        return Ok(ActionBody::default());
    }
    if is_json != Some(true) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    parse_json(&bytes)
}

fn check_note(note: &Option<String>) -> Result<(), ApiError> {
    if let Some(n) = note {
        if n.len() > MAX_NOTE_BYTES {
            return Err(ApiError::invalid(
                "note",
                format!("too long: {} bytes, at most {MAX_NOTE_BYTES}", n.len()),
            ));
        }
        if n.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ApiError::invalid("note", "contains control characters"));
        }
    }
    Ok(())
}

fn operator_action(kind: Kind, body: &ActionBody) -> Result<OperatorAction, ApiError> {
    Ok(match kind {
        Kind::Acknowledge => OperatorAction::Acknowledge,
        Kind::OnScene => OperatorAction::OnScene,
        Kind::Note => OperatorAction::Note,
        Kind::Dispatch => {
            let raw = body
                .responder
                .as_deref()
                .ok_or_else(|| ApiError::invalid("responder", "dispatch names who was sent"))?;
            let responder: ResponderId = raw.parse().map_err(|_| {
                ApiError::invalid(
                    "responder",
                    format!("expected 1 to 32 characters of A-Z a-z 0-9 . _ -, found {raw:?}"),
                )
            })?;
            OperatorAction::Dispatch { responder }
        }
        Kind::Resolve => {
            let raw = body
                .disposition
                .as_deref()
                .ok_or_else(|| ApiError::invalid("disposition", "resolving needs a disposition"))?;
            let disposition = Disposition::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    "disposition",
                    format!(
                        "expected real_emergency, false_alarm, resident_cancelled, test or \
                         condition_cleared, found {raw:?}"
                    ),
                )
            })?;
            OperatorAction::Resolve { disposition }
        }
    })
}

async fn act(
    state: AppState,
    p: Principal,
    raw_id: String,
    kind: Kind,
    req: Request,
) -> Result<Json<AlertJson>, ApiError> {
    may_act(&p)?;
    let id = alert_id(&raw_id)?;
    let body = read_body(req, &state).await?;
    check_note(&body.note)?;
    let action = operator_action(kind, &body)?;
    let actions = state.alert_actions().ok_or(ApiError::Unavailable)?;
    let scope = match &p.scope {
        SiteScope::All => ActionScope::All,
        SiteScope::Sites(s) => ActionScope::Sites(s.clone()),
    };
    let note = body.note.filter(|n| !n.trim().is_empty());
    let result = actions
        .act(ActionRequest {
            alert: id,
            action,
            actor: Actor::User(p.username.clone()),
            note,
            scope,
        })
        .await;
    match result {
        Ok(alert) => {
            tracing::info!(alert = %alert.id, user = %p.username, state = %alert.state, "alert action");
            let json = serde_json::to_value(&alert).map_err(|e| {
                tracing::error!(error = %e, "alert not encodable");
                ApiError::Internal
            })?;
            Ok(Json(AlertJson { alert: json }))
        }
        Err(ActionError::NotFound(id)) => Err(ApiError::NotFound(format!("alert {id}"))),
        Err(ActionError::Refused(LifecycleError::UnknownAlert(id))) => {
            Err(ApiError::NotFound(format!("alert {id}")))
        }
        Err(ActionError::Refused(LifecycleError::EmptyNote)) => Err(ApiError::invalid(
            "note",
            "a note action needs a non-empty note",
        )),
        Err(ActionError::Refused(e @ LifecycleError::InvalidTransition { .. })) => {
            Err(ApiError::Conflict(e.to_string()))
        }
        Err(ActionError::Unavailable(m)) => {
            tracing::warn!(error = %m, "alert action not stored");
            Err(ApiError::Unavailable)
        }
        Err(ActionError::EngineStopped) => Err(ApiError::Unavailable),
    }
}

macro_rules! action_route {
    ($fn:ident, $path:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "alerts", params(("id" = u64, Path)),
                    request_body(content = Option<ActionBody>, content_type = "application/json"),
                    responses((status = 200, body = AlertJson), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
                        (status = 503, body = ErrorBody)))]
        async fn $fn(
            State(state): State<AppState>,
            Caller(p): Caller,
            Path(id): Path<String>,
            req: Request,
        ) -> Result<Json<AlertJson>, ApiError> {
            act(state, p, id, $kind, req).await
        }
    };
}

action_route!(
    acknowledge,
    "/alerts/{id}/acknowledge",
    Kind::Acknowledge,
    "Acknowledge an open alert: escalation stops; a call or fall tells the pendant help is coming."
);
action_route!(
    dispatch,
    "/alerts/{id}/dispatch",
    Kind::Dispatch,
    "Record that a responder (`responder`) was sent to an acknowledged alert."
);
action_route!(
    on_scene,
    "/alerts/{id}/on_scene",
    Kind::OnScene,
    "Record that the dispatched responder is on scene."
);
action_route!(
    resolve,
    "/alerts/{id}/resolve",
    Kind::Resolve,
    "Close an alert with a `disposition`."
);
action_route!(
    note,
    "/alerts/{id}/note",
    Kind::Note,
    "Add a note (`note`) to an alert in any state."
);

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(acknowledge))
        .routes(routes!(dispatch))
        .routes(routes!(on_scene))
        .routes(routes!(resolve))
        .routes(routes!(note))
}
