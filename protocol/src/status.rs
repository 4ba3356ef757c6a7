//! Liveness and health: a board's online state (its MQTT will), a gateway's status report,
//! and an acknowledgement given on a gateway's local console.

use crate::cbor::{self, required, Reader, Seen};
use crate::error::{DecodeError, EncodeError};
use crate::ids::{DeviceId, GatewayId, SiteId, StaffName};
use crate::limits::{MAX_BATCH_BYTES, MAX_FRAME_BYTES, MAX_STATUS_BOARDS};
use crate::PROTOCOL_VERSION;

/// Published retained on `vigil/v1/dev/{id}/state`: `online: true` after connecting, and
/// `online: false` as the board's MQTT will, so a dead board is seen at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub device_id: DeviceId,
    pub online: bool,
    pub boot_id: u32,
}

impl DeviceState {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = cbor::writer(buf);
        w.map(4)?;
        w.u8(0)?.u8(PROTOCOL_VERSION)?;
        w.u8(1)?.str(self.device_id.as_str())?;
        w.u8(2)?.bool(self.online)?;
        w.u8(3)?.u32(self.boot_id)?;
        cbor::finish(w, MAX_FRAME_BYTES)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_FRAME_BYTES)?;
        let mut r = Reader::new(bytes);
        let n = cbor::open_versioned(&mut r, "device state map")?;
        let mut seen = Seen::default();
        let (mut device_id, mut online, mut boot_id) = (None, None, None);
        for _ in 1..n {
            let key = r.key()?;
            match key {
                0 => return Err(DecodeError::DuplicateField { field: "version" }),
                1 => {
                    seen.mark(key, "device_id")?;
                    device_id = Some(DeviceId::decode_field(r.str("device_id")?, "device_id")?);
                }
                2 => {
                    seen.mark(key, "online")?;
                    online = Some(r.bool("online")?);
                }
                3 => {
                    seen.mark(key, "boot_id")?;
                    boot_id = Some(r.u32("boot_id")?);
                }
                _ => r.skip()?,
            }
        }
        r.finish()?;
        Ok(DeviceState {
            device_id: required(device_id, "device_id")?,
            online: required(online, "online")?,
            boot_id: required(boot_id, "boot_id")?,
        })
    }
}

/// One board as its gateway last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardStatus {
    pub device_id: DeviceId,
    /// Unix time in milliseconds of the last frame from the board.
    pub last_seen_ms: u64,
    pub battery_mv: Option<u16>,
    pub rssi_dbm: Option<i8>,
}

/// A gateway's periodic health report on `vigil/v1/site/{site}/gw/{gw}/status`.
/// A site with more than [`MAX_STATUS_BOARDS`] boards sends several reports, each listing
/// some boards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatus {
    pub gateway_id: GatewayId,
    pub site_id: SiteId,
    /// Unix time in milliseconds at which the report was made.
    pub sent_ms: u64,
    pub uplink_connected: bool,
    /// Frames in the durable spool not yet acknowledged upstream.
    pub spool_frames: u64,
    pub spool_bytes: u64,
    /// Age in seconds of the oldest unsent frame (0 when the spool is empty).
    pub oldest_unsent_s: u32,
    pub boards: heapless::Vec<BoardStatus, MAX_STATUS_BOARDS>,
}

impl GatewayStatus {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = cbor::writer(buf);
        w.map(9)?;
        w.u8(0)?.u8(PROTOCOL_VERSION)?;
        w.u8(1)?.str(self.gateway_id.as_str())?;
        w.u8(2)?.str(self.site_id.as_str())?;
        w.u8(3)?.u64(self.sent_ms)?;
        w.u8(4)?.bool(self.uplink_connected)?;
        w.u8(5)?.u64(self.spool_frames)?;
        w.u8(6)?.u64(self.spool_bytes)?;
        w.u8(7)?.u32(self.oldest_unsent_s)?;
        w.u8(8)?.array(self.boards.len() as u64)?;
        for b in &self.boards {
            w.map(2 + u64::from(b.battery_mv.is_some()) + u64::from(b.rssi_dbm.is_some()))?;
            w.u8(0)?.str(b.device_id.as_str())?;
            w.u8(1)?.u64(b.last_seen_ms)?;
            if let Some(v) = b.battery_mv {
                w.u8(2)?.u16(v)?;
            }
            if let Some(v) = b.rssi_dbm {
                w.u8(3)?.i8(v)?;
            }
        }
        cbor::finish(w, MAX_BATCH_BYTES)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_BATCH_BYTES)?;
        let mut r = Reader::new(bytes);
        let n = cbor::open_versioned(&mut r, "gateway status map")?;
        let mut seen = Seen::default();
        let (mut gateway_id, mut site_id, mut sent_ms, mut connected) = (None, None, None, None);
        let (mut spool_frames, mut spool_bytes, mut oldest) = (None, None, None);
        let mut boards = heapless::Vec::new();
        for _ in 1..n {
            let key = r.key()?;
            match key {
                0 => return Err(DecodeError::DuplicateField { field: "version" }),
                1 => {
                    seen.mark(key, "gateway_id")?;
                    gateway_id = Some(GatewayId::decode_field(r.str("gateway_id")?, "gateway_id")?);
                }
                2 => {
                    seen.mark(key, "site_id")?;
                    site_id = Some(SiteId::decode_field(r.str("site_id")?, "site_id")?);
                }
                3 => {
                    seen.mark(key, "sent_ms")?;
                    sent_ms = Some(r.u64("sent_ms")?);
                }
                4 => {
                    seen.mark(key, "uplink_connected")?;
                    connected = Some(r.bool("uplink_connected")?);
                }
                5 => {
                    seen.mark(key, "spool_frames")?;
                    spool_frames = Some(r.u64("spool_frames")?);
                }
                6 => {
                    seen.mark(key, "spool_bytes")?;
                    spool_bytes = Some(r.u64("spool_bytes")?);
                }
                7 => {
                    seen.mark(key, "oldest_unsent_s")?;
                    oldest = Some(r.u32("oldest_unsent_s")?);
                }
                8 => {
                    seen.mark(key, "boards")?;
                    let len = r.array("boards")?;
                    if len > MAX_STATUS_BOARDS as u64 {
                        return Err(DecodeError::TooMany {
                            field: "boards",
                            max: MAX_STATUS_BOARDS,
                        });
                    }
                    for _ in 0..len {
                        let _ = boards.push(decode_board(&mut r)?);
                    }
                }
                _ => r.skip()?,
            }
        }
        r.finish()?;
        Ok(GatewayStatus {
            gateway_id: required(gateway_id, "gateway_id")?,
            site_id: required(site_id, "site_id")?,
            sent_ms: required(sent_ms, "sent_ms")?,
            uplink_connected: required(connected, "uplink_connected")?,
            spool_frames: required(spool_frames, "spool_frames")?,
            spool_bytes: required(spool_bytes, "spool_bytes")?,
            oldest_unsent_s: required(oldest, "oldest_unsent_s")?,
            boards,
        })
    }
}

fn decode_board(r: &mut Reader<'_>) -> Result<BoardStatus, DecodeError> {
    let n = r.map("board status map")?;
    let mut seen = Seen::default();
    let (mut device_id, mut last_seen) = (None, None);
    let (mut battery_mv, mut rssi_dbm) = (None, None);
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "board.device_id")?;
                device_id = Some(DeviceId::decode_field(
                    r.str("board.device_id")?,
                    "board.device_id",
                )?);
            }
            1 => {
                seen.mark(key, "board.last_seen_ms")?;
                last_seen = Some(r.u64("board.last_seen_ms")?);
            }
            2 => {
                seen.mark(key, "board.battery_mv")?;
                battery_mv = Some(r.u16_in("board.battery_mv", 0, u16::MAX)?);
            }
            3 => {
                seen.mark(key, "board.rssi_dbm")?;
                rssi_dbm = Some(r.int("board.rssi_dbm", -128, 20)? as i8);
            }
            _ => r.skip()?,
        }
    }
    Ok(BoardStatus {
        device_id: required(device_id, "board.device_id")?,
        last_seen_ms: required(last_seen, "board.last_seen_ms")?,
        battery_mv,
        rssi_dbm,
    })
}

/// Staff acknowledged an alarm on the gateway's local console; sent upstream on
/// `vigil/v1/site/{site}/gw/{gw}/ack` so the server records it on the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAck {
    pub gateway_id: GatewayId,
    /// The board whose frame `(boot_id, seq)` raised the alarm.
    pub device_id: DeviceId,
    pub boot_id: u32,
    pub seq: u32,
    /// Unix time in milliseconds of the acknowledgement.
    pub acked_ms: u64,
    pub by: StaffName,
}

impl LocalAck {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = cbor::writer(buf);
        w.map(7)?;
        w.u8(0)?.u8(PROTOCOL_VERSION)?;
        w.u8(1)?.str(self.gateway_id.as_str())?;
        w.u8(2)?.str(self.device_id.as_str())?;
        w.u8(3)?.u32(self.boot_id)?;
        w.u8(4)?.u32(self.seq)?;
        w.u8(5)?.u64(self.acked_ms)?;
        w.u8(6)?.str(self.by.as_str())?;
        cbor::finish(w, MAX_FRAME_BYTES)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_FRAME_BYTES)?;
        let mut r = Reader::new(bytes);
        let n = cbor::open_versioned(&mut r, "local ack map")?;
        let mut seen = Seen::default();
        let (mut gateway_id, mut device_id, mut boot_id, mut seq) = (None, None, None, None);
        let (mut acked_ms, mut by) = (None, None);
        for _ in 1..n {
            let key = r.key()?;
            match key {
                0 => return Err(DecodeError::DuplicateField { field: "version" }),
                1 => {
                    seen.mark(key, "gateway_id")?;
                    gateway_id = Some(GatewayId::decode_field(r.str("gateway_id")?, "gateway_id")?);
                }
                2 => {
                    seen.mark(key, "device_id")?;
                    device_id = Some(DeviceId::decode_field(r.str("device_id")?, "device_id")?);
                }
                3 => {
                    seen.mark(key, "boot_id")?;
                    boot_id = Some(r.u32("boot_id")?);
                }
                4 => {
                    seen.mark(key, "seq")?;
                    seq = Some(r.u32("seq")?);
                }
                5 => {
                    seen.mark(key, "acked_ms")?;
                    acked_ms = Some(r.u64("acked_ms")?);
                }
                6 => {
                    seen.mark(key, "by")?;
                    by = Some(StaffName::decode_field(r.str("by")?, "by")?);
                }
                _ => r.skip()?,
            }
        }
        r.finish()?;
        Ok(LocalAck {
            gateway_id: required(gateway_id, "gateway_id")?,
            device_id: required(device_id, "device_id")?,
            boot_id: required(boot_id, "boot_id")?,
            seq: required(seq, "seq")?,
            acked_ms: required(acked_ms, "acked_ms")?,
            by: required(by, "by")?,
        })
    }
}
