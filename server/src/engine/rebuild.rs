//! Water detectors after a restart: replayed from the meter readings in the telemetry store
//! (their state is the household's history, which the readings already hold).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vigil_protocol::UplinkBody;

use super::core::EngineCore;
use super::detectors::DetectionConfig;
use super::directory::EngineDirectory;
use super::router::meter_minutes;
use crate::alerts::{Subject, Timestamp};
use crate::detection::water::WaterDetector;
use crate::registry::DeviceKind;
use crate::store::{ReadingsQuery, SharedStore, MAX_PAGE};

/// Rebuilds the water detector of every registered meter from its readings of the last
/// `days` days. A meter whose readings cannot be read starts empty (logged).
pub async fn rebuild_water(
    core: &mut EngineCore,
    telemetry: &SharedStore,
    dir: &dyn EngineDirectory,
    config: &DetectionConfig,
    days: u32,
    now: Timestamp,
) {
    if days == 0 {
        return;
    }
    let now_ms = i64::try_from(now.unix_ms()).unwrap_or(i64::MAX);
    let from_ms = now_ms - i64::from(days) * 86_400_000;
    let mut rebuilt = 0usize;
    for device in dir.devices() {
        if device.kind != DeviceKind::Meter {
            continue;
        }
        let Some(site) = dir.site(&device.site_id) else {
            continue;
        };
        let mut minutes: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
        let mut after = None;
        loop {
            let query = ReadingsQuery {
                device: device.id.clone(),
                from_ms,
                to_ms: now_ms + 1,
                after,
                limit: MAX_PAGE,
            };
            let page = match telemetry.readings(query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(device = %device.id, error = %e,
                        "meter readings not readable; its water detector starts without history");
                    break;
                }
            };
            for r in &page.readings {
                let Ok(frame) = r.decode() else { continue };
                if let UplinkBody::Meter(m) = &frame.body {
                    let end = Timestamp::from_unix_ms(u64::try_from(r.ts_ms).unwrap_or(0));
                    for (minute, litres) in meter_minutes(m, end) {
                        *minutes.entry(minute).or_insert(0.0) += litres;
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if minutes.is_empty() {
            continue;
        }
        let away = device
            .resident_id
            .as_ref()
            .and_then(|r| dir.resident(r))
            .and_then(|r| r.away_until);
        let subject = match &device.resident_id {
            Some(r) => Subject::Resident(r.clone()),
            None => Subject::Site(site.id.clone()),
        };
        let now_dt = DateTime::from_timestamp_millis(now_ms).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let detector =
            WaterDetector::rebuild(config.water.clone(), site.timezone, away, minutes, now_dt);
        core.detectors()
            .insert_water(device.id.clone(), site.id.clone(), subject, away, detector);
        rebuilt += 1;
    }
    tracing::info!(
        meters = rebuilt,
        days,
        "water detectors rebuilt from stored readings"
    );
}
