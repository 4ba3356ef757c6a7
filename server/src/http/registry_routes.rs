//! Registry CRUD, bulk import and "who is on duty".

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{body_bytes, parse_json, path_id, ApiJson, ApiQuery, Caller};
use super::AppState;
use crate::auth::{Action, Principal};
use crate::ids::{DeviceId, GatewayId, ResidentId, ResponderId, SiteId};
use crate::registry::import::{
    parse_csv, parse_json as parse_import_json, ImportReport, ImportRow,
};
use crate::registry::{
    Device, Entity, EntityKind, EscalationPolicy, Gateway, Page, PolicyId, Resident, Responder,
    Shift, ShiftId, Site, SiteFilter,
};

/// Default page size of list endpoints.
pub const DEFAULT_PAGE: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only entities of this site.
    pub site: Option<String>,
    /// Continue after this id (the `next_after` of the previous page).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

fn require(p: &Principal, action: Action) -> Result<(), ApiError> {
    if p.may(action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn write_action<E: Entity>() -> Action {
    match E::KIND {
        // Sites and the district-wide escalation policies: administrators only.
        EntityKind::EscalationPolicy | EntityKind::Site => Action::WriteSites,
        EntityKind::Resident
        | EntityKind::Responder
        | EntityKind::Device
        | EntityKind::Gateway
        | EntityKind::Shift => Action::WriteRegistry,
    }
}

/// The caller's scope, narrowed to `site` when the query names one.
pub(super) fn scope_for(p: &Principal, site: Option<&str>) -> Result<SiteFilter, ApiError> {
    match site {
        None => Ok(p.scope.filter()),
        Some(s) => {
            let _: SiteId = path_id(s).map_err(|_| ApiError::BadRequest {
                code: "invalid_query",
                message: format!("invalid site id {s:?}"),
                field: Some("site".into()),
            })?;
            if p.sees_site(s) {
                Ok(SiteFilter::Only(vec![s.to_owned()]))
            } else {
                Err(ApiError::NotFound(format!("site {s:?}")))
            }
        }
    }
}

async fn list_entities<E: Entity>(
    state: &AppState,
    p: &Principal,
    q: ListQuery,
) -> Result<Page<E>, ApiError> {
    require(p, Action::ReadRegistry)?;
    let filter = scope_for(p, q.site.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=crate::registry::MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest {
            code: "invalid_query",
            message: format!("limit must be 1 to {}", crate::registry::MAX_PAGE),
            field: Some("limit".into()),
        });
    }
    Ok(state.registry().list(&filter, q.after, limit).await?)
}

async fn create_entity<E: Entity>(state: &AppState, p: &Principal, e: E) -> Result<E, ApiError> {
    require(p, write_action::<E>())?;
    let created = state.registry().create(&p.scope.filter(), e).await?;
    tracing::info!(by = %p.username, kind = E::KIND.singular(), id = created.id_str(), "created");
    Ok(created)
}

async fn get_entity<E: Entity>(state: &AppState, p: &Principal, id: &str) -> Result<E, ApiError> {
    require(p, Action::ReadRegistry)?;
    Ok(state.registry().get(&p.scope.filter(), id).await?)
}

async fn update_entity<E: Entity>(
    state: &AppState,
    p: &Principal,
    id: &str,
    e: E,
) -> Result<E, ApiError> {
    require(p, write_action::<E>())?;
    let updated = state.registry().update(&p.scope.filter(), id, e).await?;
    tracing::info!(by = %p.username, kind = E::KIND.singular(), id, "updated");
    Ok(updated)
}

async fn delete_entity<E: Entity>(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<(), ApiError> {
    require(p, write_action::<E>())?;
    state.registry().delete::<E>(&p.scope.filter(), id).await?;
    tracing::info!(by = %p.username, kind = E::KIND.singular(), id, "deleted");
    Ok(())
}

macro_rules! entity_routes {
    ($entity:ty, $id:ty, $page:ident, $tag:literal, $coll:literal, $item:literal,
     $list:ident, $create:ident, $get:ident, $update:ident, $delete:ident) => {
        /// One page of a list.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$entity>,
            /// Pass as `after` for the next page; absent on the last page.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub next_after: Option<String>,
        }

        #[utoipa::path(get, path = $coll, tag = $tag, params(ListQuery),
                    responses((status = 200, body = $page), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
        async fn $list(
            State(state): State<AppState>,
            Caller(p): Caller,
            ApiQuery(q): ApiQuery<ListQuery>,
        ) -> Result<Json<$page>, ApiError> {
            let page = list_entities::<$entity>(&state, &p, q).await?;
            Ok(Json($page {
                items: page.items,
                next_after: page.next_after,
            }))
        }

        #[utoipa::path(post, path = $coll, tag = $tag, request_body = $entity,
                    responses((status = 201, body = $entity), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
                        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
        async fn $create(
            State(state): State<AppState>,
            Caller(p): Caller,
            ApiJson(e): ApiJson<$entity>,
        ) -> Result<(StatusCode, Json<$entity>), ApiError> {
            Ok((
                StatusCode::CREATED,
                Json(create_entity(&state, &p, e).await?),
            ))
        }

        #[utoipa::path(get, path = $item, tag = $tag, params(("id" = String, Path)),
                    responses((status = 200, body = $entity), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
        async fn $get(
            State(state): State<AppState>,
            Caller(p): Caller,
            Path(id): Path<String>,
        ) -> Result<Json<$entity>, ApiError> {
            let _: $id = path_id(&id)?;
            Ok(Json(get_entity(&state, &p, &id).await?))
        }

        #[utoipa::path(put, path = $item, tag = $tag, params(("id" = String, Path)),
                    request_body = $entity,
                    responses((status = 200, body = $entity), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
        async fn $update(
            State(state): State<AppState>,
            Caller(p): Caller,
            Path(id): Path<String>,
            ApiJson(e): ApiJson<$entity>,
        ) -> Result<Json<$entity>, ApiError> {
            let _: $id = path_id(&id)?;
            Ok(Json(update_entity(&state, &p, &id, e).await?))
        }

        #[utoipa::path(delete, path = $item, tag = $tag, params(("id" = String, Path)),
                    responses((status = 204), (status = 400, body = ErrorBody),
                        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
                        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        async fn $delete(
            State(state): State<AppState>,
            Caller(p): Caller,
            Path(id): Path<String>,
        ) -> Result<StatusCode, ApiError> {
            let _: $id = path_id(&id)?;
            delete_entity::<$entity>(&state, &p, &id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

entity_routes!(
    Site,
    SiteId,
    SitePage,
    "sites",
    "/sites",
    "/sites/{id}",
    list_sites,
    create_site,
    get_site,
    update_site,
    delete_site
);
entity_routes!(
    Resident,
    ResidentId,
    ResidentPage,
    "residents",
    "/residents",
    "/residents/{id}",
    list_residents,
    create_resident,
    get_resident,
    update_resident,
    delete_resident
);
entity_routes!(
    Device,
    DeviceId,
    DevicePage,
    "devices",
    "/devices",
    "/devices/{id}",
    list_devices,
    create_device,
    get_device,
    update_device,
    delete_device
);
entity_routes!(
    Gateway,
    GatewayId,
    GatewayPage,
    "gateways",
    "/gateways",
    "/gateways/{id}",
    list_gateways,
    create_gateway,
    get_gateway,
    update_gateway,
    delete_gateway
);
entity_routes!(
    Responder,
    ResponderId,
    ResponderPage,
    "responders",
    "/responders",
    "/responders/{id}",
    list_responders,
    create_responder,
    get_responder,
    update_responder,
    delete_responder
);
entity_routes!(
    Shift,
    ShiftId,
    ShiftPage,
    "rosters",
    "/shifts",
    "/shifts/{id}",
    list_shifts,
    create_shift,
    get_shift,
    update_shift,
    delete_shift
);

entity_routes!(
    EscalationPolicy,
    PolicyId,
    EscalationPolicyPage,
    "escalation policies",
    "/escalation_policies",
    "/escalation_policies/{id}",
    list_escalation_policies,
    create_escalation_policy,
    get_escalation_policy,
    update_escalation_policy,
    delete_escalation_policy
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OnDutyQuery {
    /// The instant (RFC 3339); default now.
    pub at: Option<DateTime<Utc>>,
}

/// A responder on duty and the shift that puts them there.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnDutyView {
    pub shift: Shift,
    pub responder: Responder,
}

/// Who is on duty for a site at an instant.
#[utoipa::path(get, path = "/sites/{id}/on-duty", tag = "rosters",
    params(("id" = String, Path), OnDutyQuery),
    responses((status = 200, body = Vec<OnDutyView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn on_duty(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<OnDutyQuery>,
) -> Result<Json<Vec<OnDutyView>>, ApiError> {
    let _: SiteId = path_id(&id)?;
    require(&p, Action::ReadRegistry)?;
    let at = q.at.unwrap_or_else(|| state.now());
    let list = state.registry().on_duty(&p.scope.filter(), &id, at).await?;
    Ok(Json(
        list.into_iter()
            .map(|d| OnDutyView {
                shift: d.shift,
                responder: d.responder,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check every row and report, without importing anything.
    #[serde(default)]
    pub dry_run: bool,
}

async fn run_import(
    state: &AppState,
    p: &Principal,
    rows: Vec<ImportRow>,
    errors: Vec<crate::registry::import::RowError>,
    dry_run: bool,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    require(p, Action::ImportRegistry)?;
    if rows
        .iter()
        .any(|r| matches!(r.kind, EntityKind::Site | EntityKind::EscalationPolicy))
    {
        require(p, Action::WriteSites)?;
    }
    let report = state
        .registry()
        .import(&p.scope.filter(), rows, errors, dry_run)
        .await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    tracing::info!(by = %p.username, dry_run, rows = report.rows, imported = report.imported,
        bad_rows = report.errors.len(), "registry import");
    Ok((status, Json(report)))
}

fn format_error(e: crate::registry::import::ImportFormatError) -> ApiError {
    ApiError::BadRequest {
        code: "unreadable_import",
        message: e.to_string(),
        field: None,
    }
}

/// Imports one kind of entity from CSV (`text/csv`, header row naming the columns) or JSON
/// (`application/json`, an array of entities). All rows or none; with `dry_run`, only the
/// report.
#[utoipa::path(post, path = "/import/{kind}", tag = "import",
    params(("kind" = String, Path, description = "sites, residents, responders, devices, gateways or shifts (escalation_policies: JSON only)"), ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, description = "bad rows; nothing imported", body = ImportReport),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn import_kind(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(kind): Path<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    req: Request,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let kind = EntityKind::from_table(&kind)
        .ok_or_else(|| ApiError::NotFound(format!("import kind {kind:?}")))?;
    let mime = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let is_csv = mime == "text/csv";
    if !is_csv && mime != "application/json" {
        return Err(ApiError::UnsupportedMediaType {
            expected: "text/csv or application/json",
        });
    }
    let bytes: Bytes = body_bytes(req, &state).await.map_err(|e| match e {
        ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge {
            limit: state.config().max_import_bytes,
        },
        other => other,
    })?;
    let mut errors = Vec::new();
    let rows = if is_csv {
        parse_csv(kind, &bytes, &mut errors).map_err(format_error)?
    } else {
        let items: Vec<serde_json::Value> = parse_json(&bytes)?;
        if items.len() > crate::registry::import::MAX_IMPORT_ROWS {
            return Err(format_error(
                crate::registry::import::ImportFormatError::TooManyRows,
            ));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, doc)| ImportRow {
                kind,
                row: i as u64 + 1,
                doc,
            })
            .collect()
    };
    run_import(&state, &p, rows, errors, q.dry_run).await
}

/// Imports entities of every kind from one JSON document
/// `{"sites": [...], "residents": [...], ...}`. All rows or none.
#[utoipa::path(post, path = "/import", tag = "import", params(ImportQuery),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses((status = 200, body = ImportReport), (status = 422, body = ImportReport),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
async fn import_all(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    req: Request,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let bytes: Bytes = body_bytes(req, &state).await.map_err(|e| match e {
        ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge {
            limit: state.config().max_import_bytes,
        },
        other => other,
    })?;
    // Shape errors name the field; syntax errors are 400.
    let _: serde_json::Value = parse_json(&bytes)?;
    let rows = parse_import_json(&bytes).map_err(format_error)?;
    run_import(&state, &p, rows, Vec::new(), q.dry_run).await
}

pub(super) fn routes(max_import_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sites, create_site))
        .routes(routes!(get_site, update_site, delete_site))
        .routes(routes!(on_duty))
        .routes(routes!(list_residents, create_resident))
        .routes(routes!(get_resident, update_resident, delete_resident))
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, update_device, delete_device))
        .routes(routes!(list_gateways, create_gateway))
        .routes(routes!(get_gateway, update_gateway, delete_gateway))
        .routes(routes!(list_responders, create_responder))
        .routes(routes!(get_responder, update_responder, delete_responder))
        .routes(routes!(list_shifts, create_shift))
        .routes(routes!(get_shift, update_shift, delete_shift))
        .routes(routes!(list_escalation_policies, create_escalation_policy))
        .routes(routes!(
            get_escalation_policy,
            update_escalation_policy,
            delete_escalation_policy
        ))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_kind))
                .routes(routes!(import_all))
                .layer(DefaultBodyLimit::max(max_import_bytes)),
        )
}
