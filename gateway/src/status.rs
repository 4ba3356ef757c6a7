//! Board liveness and the gateway's own health report (sans-IO), and the counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use vigil_protocol::limits::MAX_STATUS_BOARDS;
use vigil_protocol::{
    BoardStatus, DeviceId, GatewayId, GatewayStatus, SiteId, UplinkBody, UplinkFrame,
};

/// One board as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardSeen {
    pub last_seen_ms: u64,
    pub battery_mv: Option<u16>,
    pub rssi_dbm: Option<i8>,
    /// From the board's state topic: `false` once its will was published.
    pub online: bool,
}

/// What the gateway knows of each board's liveness.
#[derive(Debug, Default)]
pub struct BoardLiveness {
    boards: BTreeMap<DeviceId, BoardSeen>,
}

impl BoardLiveness {
    /// A frame from a board arrived at `now_ms`.
    pub fn observe_frame(&mut self, frame: &UplinkFrame, now_ms: u64) {
        let b = self.entry(&frame.device_id, now_ms);
        b.online = true;
        match &frame.body {
            UplinkBody::Heartbeat(h) => {
                b.battery_mv = Some(h.battery_mv);
                b.rssi_dbm = Some(h.rssi_dbm);
            }
            UplinkBody::Meter(m) => b.battery_mv = Some(m.battery_mv),
            UplinkBody::Button(_) | UplinkBody::Fall(_) | UplinkBody::Fire(_) => {}
        }
    }

    /// A board's state message (online, or its will) arrived at `now_ms`.
    /// A will (`online == false`) is published by the broker for a dead board, so it does not
    /// count as the board being seen.
    pub fn observe_state(&mut self, device: &DeviceId, online: bool, now_ms: u64) {
        if online {
            self.entry(device, now_ms).online = true;
        } else if let Some(b) = self.boards.get_mut(device) {
            b.online = false;
        }
    }

    fn entry(&mut self, device: &DeviceId, now_ms: u64) -> &mut BoardSeen {
        let b = self.boards.entry(device.clone()).or_insert(BoardSeen {
            last_seen_ms: now_ms,
            battery_mv: None,
            rssi_dbm: None,
            online: true,
        });
        b.last_seen_ms = b.last_seen_ms.max(now_ms);
        b
    }

    pub fn boards(&self) -> &BTreeMap<DeviceId, BoardSeen> {
        &self.boards
    }

    /// The status reports to publish: one per [`MAX_STATUS_BOARDS`] boards (at least one).
    pub fn reports(&self, head: &StatusHead) -> Vec<GatewayStatus> {
        let boards: Vec<BoardStatus> = self
            .boards
            .iter()
            .map(|(id, b)| BoardStatus {
                device_id: id.clone(),
                last_seen_ms: b.last_seen_ms,
                battery_mv: b.battery_mv,
                rssi_dbm: b.rssi_dbm,
            })
            .collect();
        let mut out = Vec::new();
        let mut chunks = boards.chunks(MAX_STATUS_BOARDS).peekable();
        if chunks.peek().is_none() {
            out.push(head.report(&[]));
        }
        for chunk in chunks {
            out.push(head.report(chunk));
        }
        out
    }
}

/// The gateway-wide part of a status report.
#[derive(Debug, Clone)]
pub struct StatusHead {
    pub gateway_id: GatewayId,
    pub site_id: SiteId,
    pub now_ms: u64,
    pub uplink_connected: bool,
    pub spool_frames: u64,
    pub spool_bytes: u64,
    pub oldest_received_ms: Option<u64>,
}

impl StatusHead {
    fn report(&self, boards: &[BoardStatus]) -> GatewayStatus {
        let mut list = heapless::Vec::new();
        for b in boards {
            let _ = list.push(b.clone());
        }
        GatewayStatus {
            gateway_id: self.gateway_id.clone(),
            site_id: self.site_id.clone(),
            sent_ms: self.now_ms,
            uplink_connected: self.uplink_connected,
            spool_frames: self.spool_frames,
            spool_bytes: self.spool_bytes,
            oldest_unsent_s: self.oldest_received_ms.map_or(0, |t| {
                (self.now_ms.saturating_sub(t) / 1000).min(u64::from(u32::MAX)) as u32
            }),
            boards: list,
        }
    }
}

/// Counters, readable by the console and logs. Each is documented in `docs/gateway.md`.
#[derive(Debug, Default)]
pub struct Counters {
    pub frames_received: AtomicU64,
    pub frames_spooled: AtomicU64,
    pub frames_duplicate: AtomicU64,
    pub frames_refused_spool_full: AtomicU64,
    pub frames_sent_upstream: AtomicU64,
    pub frames_acked_upstream: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batches_acked: AtomicU64,
    pub receipts_sent: AtomicU64,
    pub uplink_connects: AtomicU64,
    pub uplink_disconnects: AtomicU64,
    pub auth_refused: AtomicU64,
    pub downlinks_relayed: AtomicU64,
    pub downlinks_refused: AtomicU64,
    pub local_acks: AtomicU64,
    pub spool_errors: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a refused message under its reason.
    pub fn refuse(&self, reason: &'static str) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Refused messages by reason.
    pub fn refused(&self, reason: &str) -> u64 {
        self.refused
            .lock()
            .map(|m| m.get(reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Every counter by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut m: BTreeMap<String, u64> = [
            ("frames_received", g(&self.frames_received)),
            ("frames_spooled", g(&self.frames_spooled)),
            ("frames_duplicate", g(&self.frames_duplicate)),
            (
                "frames_refused_spool_full",
                g(&self.frames_refused_spool_full),
            ),
            ("frames_sent_upstream", g(&self.frames_sent_upstream)),
            ("frames_acked_upstream", g(&self.frames_acked_upstream)),
            ("batches_sent", g(&self.batches_sent)),
            ("batches_acked", g(&self.batches_acked)),
            ("receipts_sent", g(&self.receipts_sent)),
            ("uplink_connects", g(&self.uplink_connects)),
            ("uplink_disconnects", g(&self.uplink_disconnects)),
            ("auth_refused", g(&self.auth_refused)),
            ("downlinks_relayed", g(&self.downlinks_relayed)),
            ("downlinks_refused", g(&self.downlinks_refused)),
            ("local_acks", g(&self.local_acks)),
            ("spool_errors", g(&self.spool_errors)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for reason in crate::validate::Refusal::REASONS {
            m.insert(format!("refused_{reason}"), self.refused(reason));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::{FirmwareVersion, Heartbeat};

    fn heartbeat(dev: &str, mv: u16) -> UplinkFrame {
        UplinkFrame {
            device_id: DeviceId::new(dev).unwrap(),
            boot_id: 1,
            seq: 1,
            uptime_ms: 0,
            wall_ms: None,
            body: UplinkBody::Heartbeat(Heartbeat {
                battery_mv: mv,
                rssi_dbm: -61,
                firmware: FirmwareVersion::new("1").unwrap(),
            }),
        }
    }

    fn head(now_ms: u64) -> StatusHead {
        StatusHead {
            gateway_id: GatewayId::new("gw").unwrap(),
            site_id: SiteId::new("s").unwrap(),
            now_ms,
            uplink_connected: false,
            spool_frames: 3,
            spool_bytes: 300,
            oldest_received_ms: Some(1_000),
        }
    }

    #[test]
    fn a_heartbeat_updates_last_seen_battery_and_rssi() {
        let mut l = BoardLiveness::default();
        l.observe_frame(&heartbeat("a", 2900), 5_000);
        let r = l.reports(&head(61_000));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].oldest_unsent_s, 60);
        let b = &r[0].boards[0];
        assert_eq!(
            (b.last_seen_ms, b.battery_mv, b.rssi_dbm),
            (5_000, Some(2900), Some(-61))
        );
    }

    #[test]
    fn a_large_site_is_reported_in_several_messages() {
        let mut l = BoardLiveness::default();
        for i in 0..150 {
            l.observe_frame(&heartbeat(&format!("b{i}"), 3000), 1);
        }
        let r = l.reports(&head(2));
        assert_eq!(
            r.iter().map(|s| s.boards.len()).collect::<Vec<_>>(),
            vec![64, 64, 22]
        );
        assert!(!l.reports(&head(2)).is_empty());
        assert_eq!(BoardLiveness::default().reports(&head(2)).len(), 1);
    }

    #[test]
    fn a_will_marks_the_board_offline() {
        let mut l = BoardLiveness::default();
        let d = DeviceId::new("a").unwrap();
        l.observe_frame(&heartbeat("a", 2900), 5);
        l.observe_state(&d, false, 9);
        assert!(!l.boards()[&d].online);
        assert_eq!(l.boards()[&d].last_seen_ms, 5);
    }
}
