//! The query strings of the alert listing and the KPIs: repeatable, comma-separated filters
//! that serde's flat query decoding cannot express, each bad value a 400 naming its parameter.

use chrono::{DateTime, Utc};

use super::error::ApiError;
use crate::alert_store::query::MAX_PAGE;
use crate::alerts::lifecycle::AlertState;
use crate::alerts::{AlertKind, Severity};
use crate::ids::SiteId;

/// Default page size of the alert listing.
pub const DEFAULT_ALERT_PAGE: u32 = 50;
/// Largest offset of the alert listing (deeper pages: narrow the filter instead).
pub const MAX_OFFSET: u64 = 1_000_000;
/// Most sites one request may name.
pub const MAX_NAMED_SITES: usize = 1000;

/// `state=active`: every state that still needs somebody (open, acknowledged, dispatched,
/// on scene). `state=closed`: resolved, cancelled, false alarm.
pub const STATE_ACTIVE: &str = "active";
pub const STATE_CLOSED: &str = "closed";

pub(super) fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: message.into(),
        field: Some(field.into()),
    }
}

/// The decoded `key=value` pairs of a query string, in order.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Every comma-separated item of a repeatable parameter; empty items are refused.
fn items<'a>(field: &str, value: &'a str) -> Result<impl Iterator<Item = &'a str>, ApiError> {
    if value.split(',').any(|v| v.trim().is_empty()) {
        return Err(bad(field, format!("empty value in {field}={value:?}")));
    }
    Ok(value.split(',').map(str::trim))
}

fn once<T>(slot: &mut Option<T>, field: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(bad(field, format!("{field} given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn time(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    // An unencoded `+08:00` offset arrives as ` 08:00` (a `+` in a query string is a space).
    let mut value = value.to_owned();
    if value.len() > 6 && value.as_bytes()[value.len() - 6] == b' ' {
        let at = value.len() - 6;
        value.replace_range(at..=at, "+");
    }
    let value = value.as_str();
    let t = DateTime::parse_from_rfc3339(value)
        .map_err(|e| {
            bad(
                field,
                format!("{field}: expected an RFC 3339 time such as 2026-11-30T08:00:00Z, found {value:?} ({e})"),
            )
        })?
        .with_timezone(&Utc);
    if t.timestamp_millis() < 0 {
        return Err(bad(field, format!("{field}: must not be before 1970")));
    }
    Ok(t)
}

fn sites(value: &str, into: &mut Vec<SiteId>) -> Result<(), ApiError> {
    for s in items("site", value)? {
        let id = SiteId::new(s).map_err(|_| {
            bad(
                "site",
                format!("invalid site id {s:?}: expected 1 to 32 characters of A-Z a-z 0-9 . _ -"),
            )
        })?;
        if !into.contains(&id) {
            into.push(id);
        }
    }
    if into.len() > MAX_NAMED_SITES {
        return Err(bad(
            "site",
            format!("at most {MAX_NAMED_SITES} sites per request"),
        ));
    }
    Ok(())
}

fn names<T: PartialEq + Copy>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<Vec<T>>,
    expected: &str,
    into: &mut Vec<T>,
) -> Result<(), ApiError> {
    for item in items(field, value)? {
        let parsed = parse(item).ok_or_else(|| {
            bad(
                field,
                format!("unknown {field} {item:?}: expected one of {expected}"),
            )
        })?;
        for v in parsed {
            if !into.contains(&v) {
                into.push(v);
            }
        }
    }
    Ok(())
}

fn one<T>(v: Option<T>) -> Option<Vec<T>> {
    v.map(|v| vec![v])
}

fn state_names() -> String {
    let mut all: Vec<&str> = AlertState::ALL.iter().map(|s| s.as_str()).collect();
    all.extend([STATE_ACTIVE, STATE_CLOSED]);
    all.join(", ")
}

fn parse_state(s: &str) -> Option<Vec<AlertState>> {
    match s {
        STATE_ACTIVE => Some(
            AlertState::ALL
                .into_iter()
                .filter(|s| !s.is_closed())
                .collect(),
        ),
        STATE_CLOSED => Some(
            AlertState::ALL
                .into_iter()
                .filter(|s| s.is_closed())
                .collect(),
        ),
        other => one(AlertState::parse(other)),
    }
}

/// `?site=&kind=&state=&severity=&from=&to=&limit=&offset=` of `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertListQuery {
    pub sites: Vec<SiteId>,
    pub kinds: Vec<AlertKind>,
    pub states: Vec<AlertState>,
    pub severities: Vec<Severity>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u64,
}

impl AlertListQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        let (mut limit, mut offset) = (None, None);
        for (key, value) in pairs(raw) {
            match key.as_str() {
                "site" => sites(&value, &mut q.sites)?,
                "kind" => {
                    let expected = AlertKind::ALL.map(|k| k.as_str()).join(", ");
                    names(
                        "kind",
                        &value,
                        |s| one(AlertKind::parse(s)),
                        &expected,
                        &mut q.kinds,
                    )?
                }
                "state" => names("state", &value, parse_state, &state_names(), &mut q.states)?,
                "severity" => names(
                    "severity",
                    &value,
                    |s| one(Severity::parse(s)),
                    "critical, major, minor, warning",
                    &mut q.severities,
                )?,
                "from" => once(&mut q.from, "from", time("from", &value)?)?,
                "to" => once(&mut q.to, "to", time("to", &value)?)?,
                "limit" => {
                    let n = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad(
                                "limit",
                                format!("limit must be 1 to {MAX_PAGE}, found {value:?}"),
                            )
                        })?;
                    once(&mut limit, "limit", n)?
                }
                "offset" => {
                    let n = value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n <= MAX_OFFSET)
                        .ok_or_else(|| {
                            bad(
                                "offset",
                                format!("offset must be 0 to {MAX_OFFSET}, found {value:?}"),
                            )
                        })?;
                    once(&mut offset, "offset", n)?
                }
                other => {
                    return Err(unknown(
                        other,
                        "site, kind, state, severity, from, to, limit, offset",
                    ))
                }
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to) {
            if to <= from {
                return Err(bad("to", "to must be after from"));
            }
        }
        q.limit = limit.unwrap_or(DEFAULT_ALERT_PAGE);
        q.offset = offset.unwrap_or(0);
        Ok(q)
    }
}

fn unknown(key: &str, known: &str) -> ApiError {
    bad(
        key,
        format!("unknown query parameter {key:?}: expected {known}"),
    )
}

/// `?site=&from=&to=` of `GET /kpis`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KpiQuery {
    pub sites: Vec<SiteId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl KpiQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (key, value) in pairs(raw) {
            match key.as_str() {
                "site" => sites(&value, &mut q.sites)?,
                "from" => once(&mut q.from, "from", time("from", &value)?)?,
                "to" => once(&mut q.to, "to", time("to", &value)?)?,
                other => return Err(unknown(other, "site, from, to")),
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::BadRequest { field, .. } => field.unwrap_or_default(),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn filters_repeat_and_take_comma_lists_and_active_means_every_state_not_closed() {
        let q = AlertListQuery::parse(Some(
            "site=a,b&site=c&kind=call&kind=fall,call&state=active&severity=critical&limit=10&offset=20",
        ))
        .unwrap();
        assert_eq!(
            q.sites,
            ["a", "b", "c"].map(|s| SiteId::new(s).unwrap()).to_vec()
        );
        assert_eq!(q.kinds, vec![AlertKind::Call, AlertKind::Fall]);
        assert_eq!(
            q.states,
            vec![
                AlertState::Open,
                AlertState::Acknowledged,
                AlertState::Dispatched,
                AlertState::OnScene
            ]
        );
        assert_eq!(q.severities, vec![Severity::Critical]);
        assert_eq!((q.limit, q.offset), (10, 20));
        let q = AlertListQuery::parse(None).unwrap();
        assert_eq!((q.limit, q.offset), (DEFAULT_ALERT_PAGE, 0));
        let q = AlertListQuery::parse(Some("state=closed")).unwrap();
        assert!(q.states.iter().all(|s| s.is_closed()) && q.states.len() == 3);
    }

    #[test]
    fn every_bad_value_names_its_parameter() {
        for (query, expected) in [
            ("site=bad/id", "site"),
            ("site=a,,b", "site"),
            ("kind=meteor", "kind"),
            ("state=sleeping", "state"),
            ("severity=urgent", "severity"),
            ("from=yesterday", "from"),
            ("to=2026-13-01T00:00:00Z", "to"),
            ("from=1969-12-31T23:59:59Z", "from"),
            ("from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z", "to"),
            (
                "from=2026-11-30T10:00:00Z&from=2026-11-30T11:00:00Z",
                "from",
            ),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("offset=99999999999", "offset"),
            ("colour=red", "colour"),
        ] {
            let e = AlertListQuery::parse(Some(query)).expect_err(query);
            assert_eq!(field(e), expected, "{query}");
        }
        for (query, expected) in [
            ("site=", "site"),
            ("from=now", "from"),
            ("to=", "to"),
            ("kind=call", "kind"),
        ] {
            let e = KpiQuery::parse(Some(query)).expect_err(query);
            assert_eq!(field(e), expected, "{query}");
        }
    }

    #[test]
    fn percent_encoded_and_unencoded_offsets_decode() {
        let q = AlertListQuery::parse(Some("from=2026-11-30T08:00:00+08:00")).unwrap();
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
        let q = AlertListQuery::parse(Some("from=2026-11-30T08%3A00%3A00%2B08%3A00")).unwrap();
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
    }
}
