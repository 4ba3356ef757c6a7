//! Validation of `[[site]]` entries and of the scenario's wall-clock start.

use std::collections::HashSet;

use toml::Spanned;
use vigil_protocol::{GatewayId, SiteId, ZoneId};

use super::raw::{RawSite, Text};
use super::validate::Ctx;
use super::{ScenarioError, Site, SiteKind, WallTime};
use crate::civil::days_from_civil;
use crate::facility::{Facility, Floor, Zone};

pub(super) fn wall_time(
    cx: &Ctx<'_>,
    s: &Spanned<toml::value::Datetime>,
) -> Result<WallTime, ScenarioError> {
    let dt = s.get_ref();
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        return Err(cx.err(
            s,
            "start",
            format!("expected a date, time and offset like 2026-03-02T07:00:00+01:00, found {dt}"),
        ));
    };
    let offset_min = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i32::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    );
    let local = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second);
    Ok(WallTime {
        unix_s: local - i64::from(offset_min) * 60,
        utc_offset_min: offset_min,
    })
}

fn utc_offset(cx: &Ctx<'_>, t: &Text) -> Result<i32, ScenarioError> {
    let s = t.get_ref();
    let parsed = (|| {
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let (h, m) = rest.split_once(':')?;
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
    })();
    parsed.ok_or_else(|| {
        cx.err(
            t,
            "site.utc_offset",
            format!("expected an offset like \"+01:00\", found {s:?}"),
        )
    })
}

pub(super) fn site(cx: &Ctx<'_>, s: &RawSite) -> Result<Site, ScenarioError> {
    let kind = match s.kind.get_ref().as_str() {
        "household" => SiteKind::Household,
        "facility" => SiteKind::Facility,
        other => {
            return Err(cx.err(
                &s.kind,
                "site.kind",
                format!("expected \"household\" or \"facility\", found {other:?}"),
            ))
        }
    };
    let mut floors = Vec::new();
    let mut rooms = HashSet::new();
    for f in &s.floors {
        let mut zones = Vec::new();
        for z in &f.zones {
            for r in &z.rooms {
                if !rooms.insert(r.get_ref().clone()) {
                    return Err(cx.err(
                        r,
                        "site.floor.zone.rooms",
                        format!("room {:?} is listed twice", r.get_ref()),
                    ));
                }
            }
            zones.push(Zone {
                id: cx.id(&z.id, "site.floor.zone.id", ZoneId::new)?,
                rooms: z.rooms.iter().map(|r| r.get_ref().clone()).collect(),
            });
        }
        floors.push(Floor {
            level: f.level,
            zones,
        });
    }
    let facility = match super::layout::generated_facility(cx, s, kind)? {
        Some(generated) => generated,
        None => Facility { floors },
    };
    if kind == SiteKind::Household && !facility.floors.is_empty() {
        return Err(cx.err(
            &s.kind,
            "site.floor",
            "only a facility has floors and fire zones".into(),
        ));
    }
    Ok(Site {
        id: cx.id(&s.id, "site.id", SiteId::new)?,
        kind,
        gateway: cx.id(&s.gateway, "site.gateway", GatewayId::new)?,
        utc_offset_min: s
            .utc_offset
            .as_ref()
            .map(|t| utc_offset(cx, t))
            .transpose()?
            .unwrap_or(0),
        facility,
    })
}
