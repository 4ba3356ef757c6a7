//! The alert read side: listing with filters, one alert with its audit trail and the readings
//! around it, response-time KPIs per site and period, and a resident's "away until".
//!
//! Scope follows the registry routes: an alert of a site outside the caller's scope does not
//! exist for them (404), and naming such a site in a filter is a 404 for that site.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::alert_query::{bad, AlertListQuery, KpiQuery};
use super::alert_schema;
use super::error::{ApiError, ErrorBody};
use super::extract::{path_id, ApiJson, Caller};
use super::telemetry::{Reading, TimeRange};
use super::telemetry_routes::telemetry_err;
use super::AppState;
use crate::alert_store::{AlertFilter, AlertStore, AlertStoreError, AnyAlertStore};
use crate::alerts::audit::AuditRecord;
use crate::alerts::kpi::{kpis_by_site, Period, SiteKpis};
use crate::alerts::lifecycle::{Alert, AlertId};
use crate::alerts::{Subject, Timestamp};
use crate::auth::{Action, Principal, SiteScope};
use crate::ids::{DeviceId, ResidentId, SiteId};
use crate::registry::{Device, Resident, SiteFilter, MAX_PAGE};

/// Readings shown around an alert: from this many minutes before it opened to this many after
/// it was last seen.
pub const READINGS_MARGIN_MINUTES: i64 = 30;
/// Most devices whose readings an alert's detail shows.
pub const MAX_DETAIL_DEVICES: usize = 16;
/// Most readings per device in an alert's detail (the rest: `/devices/{id}/readings`).
pub const MAX_DETAIL_READINGS: u32 = 500;
/// Devices of one site scanned to find an alert's subject's devices.
const MAX_SITE_DEVICES_SCANNED: usize = 20 * MAX_PAGE as usize;
/// Longest KPI period.
pub const MAX_KPI_DAYS: i64 = 366;
/// KPI period when `from` is not given: this many days before `to`.
pub const DEFAULT_KPI_DAYS: i64 = 30;
/// The telecare answering targets (TEC Services Association) and the on-scene target.
pub const TARGET_WITHIN_60S: f64 = 0.975;
pub const TARGET_WITHIN_180S: f64 = 0.99;
pub const TARGET_ON_SCENE_45MIN: f64 = 0.90;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(get_alert))
        .routes(routes!(kpis))
        .routes(routes!(set_away_until))
}

fn require(p: &Principal, action: Action) -> Result<(), ApiError> {
    if p.may(action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn store(state: &AppState) -> Result<&AnyAlertStore, ApiError> {
    state.alerts().ok_or(ApiError::NotConfigured(
        "this server runs without an alert store: the alert endpoints are unavailable",
    ))
}

fn store_err(e: AlertStoreError) -> ApiError {
    match e {
        AlertStoreError::Pool(e) => {
            tracing::warn!(error = %e, "alert store unavailable");
            metrics::counter!("vigil_http_db_errors_total", "kind" => "unavailable").increment(1);
            ApiError::Unavailable
        }
        other => {
            tracing::error!(error = %other, "alert store error");
            metrics::counter!("vigil_http_db_errors_total", "kind" => "backend").increment(1);
            ApiError::Internal
        }
    }
}

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    // Query times before 1970 are refused when parsed; clamp defensively.
    Timestamp::from_unix_ms(u64::try_from(t.timestamp_millis()).unwrap_or(0))
}

fn datetime(t: Timestamp) -> DateTime<Utc> {
    i64::try_from(t.unix_ms())
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The sites a request covers: those it names (each must be in scope, else 404 as in the
/// registry routes), else the caller's whole scope (`None`: every site).
fn covered_sites(p: &Principal, named: Vec<SiteId>) -> Result<Option<Vec<SiteId>>, ApiError> {
    if !named.is_empty() {
        if let Some(s) = named.iter().find(|s| !p.sees_site(s.as_str())) {
            return Err(ApiError::NotFound(format!("site {:?}", s.as_str())));
        }
        return Ok(Some(named));
    }
    Ok(match &p.scope {
        SiteScope::All => None,
        // A scope entry that is not a valid id cannot match any alert.
        SiteScope::Sites(list) => Some(list.iter().filter_map(|s| s.parse().ok()).collect()),
    })
}

// ---- GET /alerts -----------------------------------------------------------------------------

/// The query of `GET /alerts` (documentation; the handler reads the raw query string so that
/// `site`, `kind`, `state` and `severity` may repeat and take comma lists).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; `AlertListQuery` reads it
pub struct AlertListParams {
    /// Site ids (repeatable or comma-separated); default every site in your scope.
    pub site: Option<String>,
    /// Alert kinds, e.g. `call,fall` (repeatable or comma-separated).
    pub kind: Option<String>,
    /// States (repeatable or comma-separated): `open`, `acknowledged`, `dispatched`,
    /// `on_scene`, `resolved`, `cancelled`, `false_alarm`; `active` for every state not
    /// closed, `closed` for the three closed ones.
    pub state: Option<String>,
    /// `critical`, `major`, `minor`, `warning` (repeatable or comma-separated).
    pub severity: Option<String>,
    /// Opened at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Opened before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Alerts to skip, 0 to 1 000 000.
    pub offset: Option<u64>,
}

/// One page of alerts, most severe first, then oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertListPage {
    #[schema(value_type = Vec<alert_schema::Alert>)]
    pub items: Vec<Alert>,
    /// How many alerts match the filter in all.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// Alerts of the sites in your scope, filtered, most severe first then oldest first.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertListParams),
    responses((status = 200, body = AlertListPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, description = "a named site is not in your scope", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn list_alerts(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<AlertListPage>, ApiError> {
    require(&p, Action::ReadAlerts)?;
    let q = AlertListQuery::parse(raw.as_deref())?;
    let store = store(&state)?;
    let filter = AlertFilter {
        sites: covered_sites(&p, q.sites)?,
        states: q.states,
        severities: q.severities,
        kinds: q.kinds,
        opened_from: q.from.map(timestamp),
        opened_until: q.to.map(timestamp),
        limit: q.limit,
        offset: q.offset,
    };
    let page = store.list_alerts(&filter).await.map_err(store_err)?;
    Ok(Json(AlertListPage {
        items: page.alerts,
        total: page.total,
        limit: q.limit,
        offset: q.offset,
    }))
}

// ---- GET /alerts/{id} ------------------------------------------------------------------------

/// One device's readings around an alert, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceReadings {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::registry::id_text")]
    pub device_id: DeviceId,
    pub readings: Vec<Reading>,
    /// More readings in the window than shown: page on with `/devices/{id}/readings`.
    pub more: bool,
}

/// The readings of the alert's subject around it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertReadings {
    /// `opened_at - 30 min`.
    pub from: DateTime<Utc>,
    /// `last_seen_at + 30 min`.
    pub to: DateTime<Utc>,
    /// The subject's devices (the resident's, the device itself, the zone's); none for a
    /// gateway or a whole site.
    pub devices: Vec<DeviceReadings>,
    /// The subject has more devices than shown.
    pub more_devices: bool,
}

/// An alert, its audit trail oldest first, and the readings around it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDetailView {
    #[schema(value_type = alert_schema::Alert)]
    pub alert: Alert,
    #[schema(value_type = Vec<alert_schema::AuditRecord>)]
    pub trail: Vec<AuditRecord>,
    pub readings: AlertReadings,
}

fn alert_id(raw: &str) -> Result<AlertId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .map(AlertId)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_id",
            message: format!("invalid alert id {raw:?}: expected a positive integer"),
            field: Some("id".into()),
        })
}

/// The devices an alert's subject has at its site, at most [`MAX_DETAIL_DEVICES`] (+1 to tell
/// that there are more).
async fn subject_devices(state: &AppState, alert: &Alert) -> Result<Vec<DeviceId>, ApiError> {
    let wanted: Box<dyn Fn(&Device) -> bool + Send> = match &alert.key.subject {
        Subject::Device(id) => {
            let id = id.clone();
            Box::new(move |d| d.id == id)
        }
        Subject::Resident(r) => {
            let r = r.clone();
            Box::new(move |d| d.resident_id.as_ref() == Some(&r))
        }
        Subject::Zone { zone, .. } => {
            let zone = zone.clone();
            Box::new(move |d| d.zone.as_ref() == Some(&zone))
        }
        Subject::Gateway(_) | Subject::Site(_) => return Ok(Vec::new()),
    };
    let site = SiteFilter::Only(vec![alert.site.to_string()]);
    let mut found = Vec::new();
    let (mut after, mut scanned) = (None, 0usize);
    loop {
        let page = state
            .registry()
            .list::<Device>(&site, after, MAX_PAGE)
            .await?;
        scanned += page.items.len();
        found.extend(
            page.items
                .iter()
                .filter(|d| wanted(d))
                .map(|d| d.id.clone()),
        );
        if found.len() > MAX_DETAIL_DEVICES || scanned >= MAX_SITE_DEVICES_SCANNED {
            break;
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    found.truncate(MAX_DETAIL_DEVICES + 1);
    Ok(found)
}

async fn readings_around(state: &AppState, alert: &Alert) -> Result<AlertReadings, ApiError> {
    let margin = Duration::minutes(READINGS_MARGIN_MINUTES);
    let opened = datetime(alert.opened_at);
    let last_seen = datetime(alert.last_seen_at);
    let range = TimeRange {
        from: opened.checked_sub_signed(margin).unwrap_or(opened),
        to: last_seen.checked_add_signed(margin).unwrap_or(last_seen),
    };
    let mut ids = subject_devices(state, alert).await?;
    let more_devices = ids.len() > MAX_DETAIL_DEVICES;
    ids.truncate(MAX_DETAIL_DEVICES);
    let mut devices = Vec::with_capacity(ids.len());
    for device_id in ids {
        let page = state
            .telemetry()
            .readings(&device_id, range, None, MAX_DETAIL_READINGS)
            .await
            .map_err(telemetry_err)?;
        devices.push(DeviceReadings {
            device_id,
            readings: page.readings,
            more: page.next.is_some(),
        });
    }
    Ok(AlertReadings {
        from: range.from,
        to: range.to,
        devices,
        more_devices,
    })
}

/// One alert with its audit trail (oldest first) and its subject's readings from 30 minutes
/// before it opened to 30 minutes after it was last seen.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", params(("id" = u64, Path)),
    responses((status = 200, body = AlertDetailView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn get_alert(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetailView>, ApiError> {
    let id = alert_id(&id)?;
    require(&p, Action::ReadAlerts)?;
    let detail = store(&state)?
        .alert_detail(id)
        .await
        .map_err(store_err)?
        .filter(|d| p.sees_site(d.alert.site.as_str()))
        .ok_or_else(|| ApiError::NotFound(format!("alert {id}")))?;
    let readings = readings_around(&state, &detail.alert).await?;
    Ok(Json(AlertDetailView {
        alert: detail.alert,
        trail: detail.trail,
        readings,
    }))
}

// ---- GET /kpis -------------------------------------------------------------------------------

/// The query of `GET /kpis` (documentation; the handler reads the raw query string).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; `KpiQuery` reads it
pub struct KpiParams {
    /// Site ids (repeatable or comma-separated); default every site in your scope.
    pub site: Option<String>,
    /// Start of the period (RFC 3339, inclusive); default 30 days before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End of the period (RFC 3339, exclusive); default now. At most 366 days after `from`.
    pub to: Option<DateTime<Utc>>,
}

/// The targets the shares are judged against.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiTargets {
    /// Critical alerts answered by a person within 60 s (telecare code of practice).
    pub answered_within_60s: f64,
    /// … within 180 s.
    pub answered_within_180s: f64,
    /// Mobile responder on scene within 45 min.
    pub on_scene_within_45min: f64,
}

/// The shares of one site as ratios, and whether they meet the targets (null without data).
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiSummary {
    pub critical_answered_within_60s: Option<f64>,
    pub critical_answered_within_180s: Option<f64>,
    pub meets_60s_target: Option<bool>,
    pub meets_180s_target: Option<bool>,
    pub on_scene_within_45min: Option<f64>,
    pub meets_on_scene_target: Option<bool>,
    pub false_alarm_share: Option<f64>,
}

impl KpiSummary {
    fn of(k: &SiteKpis) -> Self {
        let fast = k.answer_critical.within_60s.ratio();
        let slow = k.answer_critical.within_180s.ratio();
        let scene = k.on_scene_within_45min.ratio();
        Self {
            critical_answered_within_60s: fast,
            critical_answered_within_180s: slow,
            meets_60s_target: fast.map(|r| r >= TARGET_WITHIN_60S),
            meets_180s_target: slow.map(|r| r >= TARGET_WITHIN_180S),
            on_scene_within_45min: scene,
            meets_on_scene_target: scene.map(|r| r >= TARGET_ON_SCENE_45MIN),
            false_alarm_share: k.false_alarms.ratio(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteKpiView {
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::registry::id_text")]
    pub site_id: SiteId,
    #[schema(value_type = alert_schema::SiteKpis)]
    pub kpis: SiteKpis,
    pub summary: KpiSummary,
}

/// KPIs per site over alerts raised in `[from, to)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub targets: KpiTargets,
    /// One entry per site covered, by site id. Sites named in the query, or listed in a
    /// site-scoped user's scope, appear even without alerts; for an unrestricted scope
    /// without `site`, the sites with alerts in the period.
    pub sites: Vec<SiteKpiView>,
}

/// Response-time KPIs per site and period, computed from the audit trail: time to
/// acknowledge (median, 90th percentile, shares within 60 s and 180 s against the telecare
/// targets of 97.5 % and 99 %), time to on scene, alerts per kind, false-alarm share.
#[utoipa::path(get, path = "/kpis", tag = "alerts", params(KpiParams),
    responses((status = 200, body = KpiReport), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, description = "a named site is not in your scope", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn kpis(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<KpiReport>, ApiError> {
    require(&p, Action::ReadAlerts)?;
    let q = KpiQuery::parse(raw.as_deref())?;
    let to = q.to.unwrap_or_else(|| state.now());
    let from = q.from.unwrap_or(to - Duration::days(DEFAULT_KPI_DAYS));
    if to <= from {
        return Err(bad("to", "to must be after from"));
    }
    if to - from > Duration::days(MAX_KPI_DAYS) {
        return Err(bad(
            "to",
            format!("the period is at most {MAX_KPI_DAYS} days; ask for several periods"),
        ));
    }
    let store = store(&state)?;
    let sites = covered_sites(&p, q.sites)?;
    let period = Period {
        from: timestamp(from),
        until: timestamp(to),
    };
    let records = match &sites {
        Some(list) if list.is_empty() => Ok(Vec::new()),
        Some(list) => {
            store
                .kpi_records_of_sites(Some(list.as_slice()), period)
                .await
        }
        None => store.kpi_records_of_sites(None, period).await,
    }
    .map_err(store_err)?;
    let mut computed = kpis_by_site(&records, period);
    let rows: Vec<(SiteId, SiteKpis)> = match sites {
        Some(list) => list
            .into_iter()
            .map(|s| {
                let k = computed.remove(&s).unwrap_or_default();
                (s, k)
            })
            .collect(),
        None => computed.into_iter().collect(),
    };
    Ok(Json(KpiReport {
        from,
        to,
        targets: KpiTargets {
            answered_within_60s: TARGET_WITHIN_60S,
            answered_within_180s: TARGET_WITHIN_180S,
            on_scene_within_45min: TARGET_ON_SCENE_45MIN,
        },
        sites: rows
            .into_iter()
            .map(|(site_id, kpis)| SiteKpiView {
                site_id,
                summary: KpiSummary::of(&kpis),
                kpis,
            })
            .collect(),
    }))
}

// ---- PUT /residents/{id}/away_until ----------------------------------------------------------

/// `{"until": "2026-12-24T18:00:00Z"}` marks the resident away; `{"until": null}` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwayUntil {
    /// RFC 3339, not in the past and at most one year ahead; null when back home.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub until: Option<Option<DateTime<Utc>>>,
}

/// Tells a `null` (`Some(None)`) from a missing field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

/// Checks an "away until" against the server's clock.
pub fn check_away_until(
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(t) = until else {
        return Ok(None);
    };
    if t <= now {
        return Err(ApiError::invalid(
            "until",
            format!("must be in the future (now is {})", now.to_rfc3339()),
        ));
    }
    let latest = now.checked_add_months(Months::new(12)).unwrap_or(now);
    if t > latest {
        return Err(ApiError::invalid(
            "until",
            format!("at most one year ahead ({})", latest.to_rfc3339()),
        ));
    }
    Ok(Some(t))
}

/// Marks a resident away (hospital, family visit) until a time, or back home with `null`: the
/// water no-use rules stay quiet meanwhile, and an alert they would have raised says so.
#[utoipa::path(put, path = "/residents/{id}/away_until", tag = "residents",
    params(("id" = String, Path)), request_body = AwayUntil,
    responses((status = 200, body = Resident), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_away_until(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AwayUntil>,
) -> Result<Json<Resident>, ApiError> {
    let _: ResidentId = path_id(&id)?;
    require(&p, Action::MarkAway)?;
    let until = body
        .until
        .ok_or_else(|| ApiError::invalid("until", "missing: give a time, or null to clear"))?;
    let until = check_away_until(until, state.now())?;
    let filter = p.scope.filter();
    let mut resident: Resident = state.registry().get(&filter, &id).await?;
    resident.away_until = until;
    let updated = state.registry().update(&filter, &id, resident).await?;
    tracing::info!(by = %p.username, resident = %id, site = %updated.site_id,
        until = ?updated.away_until, "away until set");
    Ok(Json(updated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn away_until_must_be_ahead_but_within_a_year_and_null_clears() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap();
        assert_eq!(check_away_until(None, now).unwrap(), None);
        let tomorrow = now + Duration::days(1);
        assert_eq!(
            check_away_until(Some(tomorrow), now).unwrap(),
            Some(tomorrow)
        );
        let year = Utc.with_ymd_and_hms(2027, 11, 30, 8, 0, 0).unwrap();
        assert_eq!(check_away_until(Some(year), now).unwrap(), Some(year));
        for bad in [now, now - Duration::seconds(1), year + Duration::seconds(1)] {
            assert!(
                matches!(check_away_until(Some(bad), now), Err(ApiError::Invalid { ref field, .. }) if field == "until"),
                "{bad}"
            );
        }
    }

    #[test]
    fn alert_ids_are_positive_integers_that_fit_the_store() {
        assert_eq!(alert_id("42").unwrap(), AlertId(42));
        for junk in ["", "-1", "x", "1.5", "9223372036854775808"] {
            assert!(alert_id(junk).is_err(), "{junk:?}");
        }
    }
}
