//! Which detectors a committed frame goes to, and with what context (sans-IO).
//!
//! - button and fall → the resident's call detector (the pendant itself when it has no
//!   resident);
//! - fire reports → the site's fire detector (the zone comes from the report);
//! - meter readings → the household's water detector (per-minute volumes, in the site's
//!   timezone, with the resident's "away until"), and the site's health detector (battery,
//!   tamper);
//! - every frame → the site's health detector (`handle_uplink`: the board is alive).
//!
//! The site is the registry's, not the one a gateway claims: a board moved to another site
//! is judged where it is registered now.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use vigil_protocol::{MeterReading, UplinkBody};

use super::directory::EngineDirectory;
use crate::alerts::{Subject, Timestamp};
use crate::detection::action::{FrameContext, FrameRef};
use crate::ids::{DeviceId, GatewayId, SiteId};
use crate::registry::DeviceKind;
use crate::store::IncomingFrame;

/// A frame the engine cannot place. Counted, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("device {0} is not in the registry")]
    UnknownDevice(DeviceId),
    #[error("device {device} names site {site}, which is not in the registry")]
    UnknownSite { device: DeviceId, site: SiteId },
}

impl RouteError {
    /// A short, stable name for counters.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownDevice(_) => "unknown_device",
            Self::UnknownSite { .. } => "unknown_site",
        }
    }
}

/// Where a meter's readings go.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterRoute {
    /// The household's meter: one water detector per meter.
    pub meter: DeviceId,
    /// Who the water alerts are about: the resident, else the site.
    pub subject: Subject,
    pub timezone: Tz,
    pub away_until: Option<DateTime<Utc>>,
    /// Litres used per UTC minute, oldest first.
    pub minutes: Vec<(DateTime<Utc>, f64)>,
}

/// A frame placed: its context and the detectors that get it (health always does).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedFrame {
    pub ctx: FrameContext,
    pub device_kind: DeviceKind,
    /// The subject of the call detector, for button and fall frames.
    pub call: Option<Subject>,
    /// Fire reports go to the site's fire detector.
    pub fire: bool,
    pub water: Option<WaterRoute>,
    /// The gateway that forwarded it: downlinks to this board go back through it.
    pub via: Option<(SiteId, GatewayId)>,
}

/// Places one committed frame.
pub fn route(frame: &IncomingFrame, dir: &dyn EngineDirectory) -> Result<RoutedFrame, RouteError> {
    let uplink = &frame.frame;
    let device = dir
        .device(&uplink.device_id)
        .ok_or_else(|| RouteError::UnknownDevice(uplink.device_id.clone()))?;
    let site = dir
        .site(&device.site_id)
        .ok_or_else(|| RouteError::UnknownSite {
            device: device.id.clone(),
            site: device.site_id.clone(),
        })?;
    let occurred_at = Timestamp::from_unix_ms(u64::try_from(frame.event_ms()).unwrap_or(0));
    let ctx = FrameContext {
        site: site.id.clone(),
        resident: device.resident_id.clone(),
        frame: FrameRef {
            device: device.id.clone(),
            boot_id: uplink.boot_id,
            seq: uplink.seq,
        },
        occurred_at,
    };
    let subject = match &device.resident_id {
        Some(r) => Subject::Resident(r.clone()),
        None => Subject::Device(device.id.clone()),
    };
    let mut routed = RoutedFrame {
        ctx,
        device_kind: device.kind,
        call: None,
        fire: false,
        water: None,
        via: frame.via.clone(),
    };
    match &uplink.body {
        UplinkBody::Button(_) | UplinkBody::Fall(_) => routed.call = Some(subject),
        UplinkBody::Fire(_) => routed.fire = true,
        UplinkBody::Meter(m) => {
            let away_until = device
                .resident_id
                .as_ref()
                .and_then(|r| dir.resident(r))
                .and_then(|r| r.away_until);
            let subject = match &device.resident_id {
                Some(r) => Subject::Resident(r.clone()),
                None => Subject::Site(site.id.clone()),
            };
            routed.water = Some(WaterRoute {
                meter: device.id.clone(),
                subject,
                timezone: site.timezone,
                away_until,
                minutes: meter_minutes(m, occurred_at),
            });
        }
        UplinkBody::Heartbeat(_) => {}
    }
    Ok(routed)
}

/// The litres of a meter report per UTC minute. The report's last slot ends at `end`. A
/// slot goes whole to the minute its middle falls in (slots longer than a minute are first cut
/// into minute-long parts, a 15-minute slot into 15), so consecutive reports of contiguous
/// slots fill consecutive minutes even when reports are not aligned to the minute.
pub fn meter_minutes(m: &MeterReading, end: Timestamp) -> Vec<(DateTime<Utc>, f64)> {
    let slot_ms = u64::from(m.slot_s.max(1)) * 1000;
    let parts = (slot_ms / 60_000).max(1);
    let part_ms = slot_ms / parts;
    let n = m.slots_ml.len() as u64;
    let mut per_minute: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, &ml) in m.slots_ml.iter().enumerate() {
        let back = (n - 1 - i as u64).saturating_mul(slot_ms);
        let slot_start = end.unix_ms().saturating_sub(back).saturating_sub(slot_ms);
        let litres = f64::from(ml) / 1000.0 / parts as f64;
        for k in 0..parts {
            let mid_ms = slot_start + k * part_ms + part_ms / 2;
            let minute = i64::try_from(mid_ms / 60_000).unwrap_or(i64::MAX);
            *per_minute.entry(minute).or_insert(0.0) += litres;
        }
    }
    per_minute
        .into_iter()
        .filter_map(|(minute, litres)| {
            DateTime::from_timestamp(minute.saturating_mul(60), 0).map(|t| (t, litres))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{directory, frame, meter, pendant, T0};
    use vigil_protocol::{ButtonEvent, ButtonKind, Heartbeat};

    #[test]
    fn a_button_press_goes_to_its_residents_call_detector_with_the_registry_site() {
        let dir = directory();
        let press = UplinkBody::Button(ButtonEvent {
            kind: ButtonKind::Press,
            cancels_seq: None,
        });
        let r = route(&frame(pendant(), 7, T0, press), &dir).unwrap();
        assert_eq!(r.call, Some(Subject::Resident("mrs-li".parse().unwrap())));
        assert_eq!(r.ctx.site.as_str(), "home-1");
        assert_eq!(r.ctx.frame.seq, 7);
        assert_eq!(r.ctx.occurred_at, Timestamp::from_unix_ms(T0 as u64));
        assert!(!r.fire && r.water.is_none());
    }

    #[test]
    fn an_unregistered_device_is_an_error_not_a_panic() {
        let dir = directory();
        let hb = UplinkBody::Heartbeat(Heartbeat {
            battery_mv: 3600,
            rssi_dbm: -60,
            firmware: vigil_protocol::ids::FirmwareVersion::new("1.0.0").unwrap(),
        });
        let err = route(&frame("stranger".parse().unwrap(), 1, T0, hb), &dir).unwrap_err();
        assert_eq!(err.code(), "unknown_device");
    }

    #[test]
    fn meter_slots_become_consecutive_minutes_across_reports() {
        let reading = |ml: &[u32]| MeterReading {
            total_ml: 0,
            flow_ml_per_min: 0,
            battery_mv: 3600,
            tamper: false,
            leak: false,
            slot_s: 60,
            slots_ml: ml.iter().copied().collect(),
        };
        // A report at 10:05:30 with three minute slots, then the next at 10:08:30.
        let end = Timestamp::from_unix_ms(1_700_000_000_000 + 330_000);
        let a = meter_minutes(&reading(&[1000, 0, 2500]), end);
        let b = meter_minutes(
            &reading(&[500, 500, 500]),
            end + std::time::Duration::from_secs(180),
        );
        let minutes: Vec<i64> = a
            .iter()
            .chain(&b)
            .map(|(t, _)| t.timestamp() / 60)
            .collect();
        for w in minutes.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{minutes:?}");
        }
        let litres: f64 = a.iter().chain(&b).map(|(_, l)| l).sum();
        assert!((litres - 5.0).abs() < 1e-9, "{litres}");
        let _ = meter();
    }

    #[test]
    fn a_quarter_hour_slot_is_spread_over_its_fifteen_minutes() {
        let m = MeterReading {
            total_ml: 0,
            flow_ml_per_min: 0,
            battery_mv: 3600,
            tamper: false,
            leak: false,
            slot_s: 900,
            slots_ml: [15_000].into_iter().collect(),
        };
        let end = Timestamp::from_unix_s(1_700_000_400); // a minute boundary
        let minutes = meter_minutes(&m, end);
        assert_eq!(minutes.len(), 15);
        assert!(minutes.iter().all(|(_, l)| (l - 1.0).abs() < 1e-9));
    }
}
