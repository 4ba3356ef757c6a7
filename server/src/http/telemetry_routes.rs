//! Devices with their latest state, readings over a time range, water use per resident.
//! Scope comes from the registry; the numbers from [`TelemetryQueries`].

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{path_id, ApiQuery, Caller};
use super::registry_routes::{scope_for, DEFAULT_PAGE};
use super::telemetry::{
    DeviceLatestState, Reading, ReadingCursor, TelemetryError, TimeRange, WaterBucket, WaterUse,
};
use super::AppState;
use crate::auth::{Action, Principal};
use crate::ids::{DeviceId, ResidentId};
use crate::registry::{Device, DeviceKind, Resident, Site, SiteFilter, MAX_PAGE};

/// Longest range of one water-use query, per bucket size.
const MAX_HOURLY_RANGE_DAYS: i64 = 31;
const MAX_DAILY_RANGE_DAYS: i64 = 366;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(device_states))
        .routes(routes!(device_readings))
        .routes(routes!(resident_water_use))
}

pub(super) fn telemetry_err(e: TelemetryError) -> ApiError {
    match e {
        TelemetryError::Unavailable(m) => {
            tracing::warn!(error = %m, "telemetry store unavailable");
            ApiError::Unavailable
        }
        TelemetryError::Backend(m) => {
            tracing::error!(error = %m, "telemetry store error");
            ApiError::Internal
        }
    }
}

fn require_read(p: &Principal) -> Result<(), ApiError> {
    if p.may(Action::ReadTelemetry) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn bad_query(field: &str, message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message,
        field: Some(field.into()),
    }
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(bad_query("limit", format!("limit must be 1 to {MAX_PAGE}")))
    }
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<TimeRange, ApiError> {
    if to <= from {
        return Err(bad_query("to", "must be after from".into()));
    }
    Ok(TimeRange { from, to })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceStatesQuery {
    pub site: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// A registered device and the last thing heard from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceWithState {
    pub device: Device,
    /// Absent when the device never reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<DeviceLatestState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStatePage {
    pub items: Vec<DeviceWithState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Devices in scope with their latest state, paged by device id.
#[utoipa::path(get, path = "/device-states", tag = "telemetry", params(DeviceStatesQuery),
    responses((status = 200, body = DeviceStatePage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn device_states(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<DeviceStatesQuery>,
) -> Result<Json<DeviceStatePage>, ApiError> {
    require_read(&p)?;
    let filter = scope_for(&p, q.site.as_deref())?;
    let page = state
        .registry()
        .list::<Device>(&filter, q.after, page_limit(q.limit)?)
        .await?;
    let ids: Vec<DeviceId> = page.items.iter().map(|d| d.id.clone()).collect();
    let mut states = state
        .telemetry()
        .latest_states(&ids)
        .await
        .map_err(telemetry_err)?;
    let items = page
        .items
        .into_iter()
        .map(|device| {
            let idx = states.iter().position(|s| s.device_id == device.id);
            let state = idx.map(|i| states.swap_remove(i));
            DeviceWithState { device, state }
        })
        .collect();
    Ok(Json(DeviceStatePage {
        items,
        next_after: page.next_after,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// Start of the range (RFC 3339, inclusive).
    pub from: DateTime<Utc>,
    /// End of the range (RFC 3339, exclusive).
    pub to: DateTime<Utc>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingsResponse {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::registry::id_text")]
    pub device_id: DeviceId,
    pub readings: Vec<Reading>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Readings of one device over a time range, oldest first, paged.
#[utoipa::path(get, path = "/devices/{id}/readings", tag = "telemetry",
    params(("id" = String, Path), ReadingsQuery),
    responses((status = 200, body = ReadingsResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn device_readings(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReadingsQuery>,
) -> Result<Json<ReadingsResponse>, ApiError> {
    let device_id: DeviceId = path_id(&id)?;
    require_read(&p)?;
    let _: Device = state.registry().get(&p.scope.filter(), &id).await?;
    let range = range(q.from, q.to)?;
    let after = q
        .after
        .as_deref()
        .map(|s| s.parse::<ReadingCursor>())
        .transpose()
        .map_err(|_| bad_query("after", "invalid cursor".into()))?;
    let page = state
        .telemetry()
        .readings(&device_id, range, after, page_limit(q.limit)?)
        .await
        .map_err(telemetry_err)?;
    Ok(Json(ReadingsResponse {
        device_id,
        readings: page.readings,
        next: page.next.map(|c| c.to_string()),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaterUseQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: WaterBucket,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaterUseResponse {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::registry::id_text")]
    pub resident_id: ResidentId,
    /// The timezone day buckets follow (the site's).
    pub timezone: String,
    pub bucket: WaterBucket,
    pub buckets: Vec<WaterUse>,
}

/// Water used by a resident's meters per hour or per local day.
#[utoipa::path(get, path = "/residents/{id}/water-use", tag = "telemetry",
    params(("id" = String, Path), WaterUseQuery),
    responses((status = 200, body = WaterUseResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn resident_water_use(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaterUseQuery>,
) -> Result<Json<WaterUseResponse>, ApiError> {
    let resident_id: ResidentId = path_id(&id)?;
    require_read(&p)?;
    let filter = p.scope.filter();
    let resident: Resident = state.registry().get(&filter, &id).await?;
    let range = range(q.from, q.to)?;
    let max_days = match q.bucket {
        WaterBucket::Hour => MAX_HOURLY_RANGE_DAYS,
        WaterBucket::Day => MAX_DAILY_RANGE_DAYS,
    };
    if range.to - range.from > Duration::days(max_days) {
        return Err(bad_query(
            "to",
            format!("range too long for this bucket: at most {max_days} days"),
        ));
    }
    let site: Site = state
        .registry()
        .get(&SiteFilter::All, resident.site_id.as_str())
        .await?;
    let site_only = SiteFilter::Only(vec![site.id.to_string()]);
    let mut meters = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .registry()
            .list::<Device>(&site_only, after, MAX_PAGE)
            .await?;
        meters.extend(
            page.items
                .into_iter()
                .filter(|d| {
                    d.kind == DeviceKind::Meter && d.resident_id.as_ref() == Some(&resident.id)
                })
                .map(|d| d.id),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let buckets = state
        .telemetry()
        .water_use(&meters, range, q.bucket, site.timezone)
        .await
        .map_err(telemetry_err)?;
    Ok(Json(WaterUseResponse {
        resident_id,
        timezone: site.timezone.name().to_owned(),
        bucket: q.bucket,
        buckets,
    }))
}
