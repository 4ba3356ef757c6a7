//! The part of a commit both backends share: deciding, from the stored replay windows and
//! latest states, which frames are new and what the windows and latest states become.

use std::collections::HashMap;

use vigil_protocol::UplinkBody;

use super::model::{DeviceLatest, IncomingFrame};
use crate::dedup::{Admission, ReplayWindow};

/// `(device_id, boot_id)` of a replay window.
pub(crate) type WindowKey = (String, u32);

/// The outcome of planning one commit.
pub(crate) struct Plan {
    pub admissions: Vec<Admission>,
    /// Indices of the frames to insert.
    pub stored: Vec<usize>,
    /// Replay windows to write back (only those that changed).
    pub windows: Vec<(WindowKey, Vec<u8>)>,
    /// Latest states to write back (only devices with a stored frame).
    pub latest: Vec<DeviceLatest>,
}

/// The windows a commit touches, sorted (so that concurrent writers lock rows in one order).
pub(crate) fn window_keys(frames: &[IncomingFrame]) -> Vec<WindowKey> {
    let mut keys: Vec<WindowKey> = frames
        .iter()
        .map(|f| (f.frame.device_id.as_str().to_owned(), f.frame.boot_id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The devices a commit touches, sorted.
pub(crate) fn device_ids(frames: &[IncomingFrame]) -> Vec<String> {
    let mut ids: Vec<String> = frames
        .iter()
        .map(|f| f.frame.device_id.as_str().to_owned())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Decides every frame against the stored windows and merges the stored ones into the
/// latest states.
pub(crate) fn plan(
    frames: &[IncomingFrame],
    stored_windows: HashMap<WindowKey, Vec<u8>>,
    mut latest: HashMap<String, DeviceLatest>,
) -> Plan {
    let mut windows: HashMap<WindowKey, (ReplayWindow, bool)> = HashMap::new();
    let mut admissions = Vec::with_capacity(frames.len());
    let mut stored = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let key = (f.frame.device_id.as_str().to_owned(), f.frame.boot_id);
        let (window, dirty) = windows.entry(key).or_insert_with_key(|key| {
            let window = match stored_windows.get(key) {
                // Absent, or the placeholder row a backend inserts to lock a new window.
                None => ReplayWindow::new(),
                Some(bytes) if bytes.is_empty() => ReplayWindow::new(),
                Some(bytes) => ReplayWindow::from_bytes(bytes).unwrap_or_else(|e| {
                    // Starting afresh may store a redelivered frame twice; refusing would
                    // stop the device's ingest for good. Counted, logged, and kept going.
                    tracing::error!(device = %key.0, boot = key.1, error = %e,
                        "replay window unreadable; starting a new one");
                    metrics::counter!("vigil_dedup_window_corrupt_total").increment(1);
                    ReplayWindow::new()
                }),
            };
            (window, false)
        });
        let admission = window.admit(f.frame.seq);
        admissions.push(admission);
        if admission.is_stored() {
            *dirty = true;
            stored.push(i);
            merge_latest(&mut latest, f);
        }
    }
    let mut windows: Vec<(WindowKey, Vec<u8>)> = windows
        .into_iter()
        .filter(|(_, (_, dirty))| *dirty)
        .map(|(key, (w, _))| (key, w.to_bytes()))
        .collect();
    windows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let touched: std::collections::HashSet<&str> = stored
        .iter()
        .map(|&i| frames[i].frame.device_id.as_str())
        .collect();
    let mut latest: Vec<DeviceLatest> = latest
        .into_values()
        .filter(|l| touched.contains(l.device_id.as_str()))
        .collect();
    latest.sort_unstable_by(|a, b| a.device_id.cmp(&b.device_id));
    Plan {
        admissions,
        stored,
        windows,
        latest,
    }
}

fn merge_latest(latest: &mut HashMap<String, DeviceLatest>, f: &IncomingFrame) {
    let ts = f.event_ms();
    let columns = f.columns();
    let l = latest
        .entry(f.frame.device_id.as_str().to_owned())
        .or_insert_with(|| DeviceLatest {
            device_id: f.frame.device_id.as_str().to_owned(),
            site_id: None,
            gateway_id: None,
            last_seen_ms: i64::MIN,
            last_ts_ms: i64::MIN,
            boot_id: 0,
            last_seq: 0,
            last_kind: String::new(),
            last_summary: String::new(),
            battery_mv: None,
            battery_ms: None,
            rssi_dbm: None,
            firmware: None,
            readings_stored: 0,
        });
    l.readings_stored += 1;
    l.last_seen_ms = l.last_seen_ms.max(f.server_received_ms);
    if let Some((site, gateway)) = &f.via {
        l.site_id = Some(site.as_str().to_owned());
        l.gateway_id = Some(gateway.as_str().to_owned());
    }
    // A late frame (gateway backlog, overtaken routine reading) must not hide a newer one.
    let newer = (ts, f.frame.boot_id, f.frame.seq) >= (l.last_ts_ms, l.boot_id, l.last_seq);
    if newer {
        l.last_ts_ms = ts;
        l.boot_id = f.frame.boot_id;
        l.last_seq = f.frame.seq;
        l.last_kind = columns.kind.to_owned();
        l.last_summary = columns.summary();
    }
    if let Some(mv) = columns.battery_mv {
        if l.battery_ms.is_none_or(|at| ts >= at) {
            l.battery_mv = Some(mv);
            l.battery_ms = Some(ts);
            if let UplinkBody::Heartbeat(h) = &f.frame.body {
                l.rssi_dbm = Some(i32::from(h.rssi_dbm));
                l.firmware = Some(h.firmware.as_str().to_owned());
            }
        }
    }
}
