//! What flows back to a board: durable receipts, "help is coming", configuration.

use crate::cbor::{self, required, Reader, Seen, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::ids::DeviceId;
use crate::limits::{MAX_FRAME_BYTES, MAX_RECEIPT_EXTRA};
use crate::PROTOCOL_VERSION;

/// One downlink for one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkFrame {
    pub device_id: DeviceId,
    pub body: DownlinkBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownlinkBody {
    Receipt(DurableReceipt),
    HelpComing(HelpComing),
    Config(ConfigUpdate),
}

/// The gateway holds durably every frame of `boot_id` with `seq <= held_through`, and also
/// each seq in `also_held` (frames that overtook others). A board may drop those from its spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableReceipt {
    pub boot_id: u32,
    /// 0 when no contiguous run from seq 1 is held yet.
    pub held_through: u32,
    /// Seqs above `held_through` that are held too, ascending.
    pub also_held: heapless::Vec<u32, MAX_RECEIPT_EXTRA>,
}

impl DurableReceipt {
    /// Whether this receipt covers frame `(boot_id, seq)`.
    pub fn covers(&self, boot_id: u32, seq: u32) -> bool {
        boot_id == self.boot_id && (seq <= self.held_through || self.also_held.contains(&seq))
    }
}

/// A person has acknowledged the call or fall in frame `(boot_id, seq)`: help is coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelpComing {
    pub boot_id: u32,
    pub seq: u32,
    /// The server's alert id, for the record.
    pub alert_id: u64,
}

/// Settings a board applies; absent fields keep their current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigUpdate {
    /// Seconds between routine uplinks (60..=86400).
    pub report_interval_s: Option<u32>,
    /// Seconds between heartbeats (60..=86400).
    pub heartbeat_interval_s: Option<u32>,
    /// Seconds a pendant waits for the wearer to cancel a fall (5..=120).
    pub fall_cancel_window_s: Option<u16>,
    /// Meter pulses per litre (1..=10000).
    pub pulses_per_litre: Option<u16>,
    /// Minutes of uninterrupted flow before a meter raises its on-board leak flag (10..=1440).
    pub leak_flow_minutes: Option<u16>,
}

const INTERVAL_S: (u32, u32) = (60, 86_400);
const CANCEL_WINDOW_S: (u16, u16) = (5, 120);
const PULSES_PER_LITRE: (u16, u16) = (1, 10_000);
const LEAK_FLOW_MINUTES: (u16, u16) = (10, 1_440);

impl DownlinkBody {
    fn code(&self) -> u8 {
        match self {
            Self::Receipt(_) => 1,
            Self::HelpComing(_) => 2,
            Self::Config(_) => 3,
        }
    }
}

impl DownlinkFrame {
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = cbor::writer(buf);
        w.map(4)?;
        w.u8(0)?.u8(PROTOCOL_VERSION)?;
        w.u8(1)?.str(self.device_id.as_str())?;
        w.u8(2)?.u8(self.body.code())?;
        w.u8(3)?;
        match &self.body {
            DownlinkBody::Receipt(r) => {
                w.map(3)?;
                w.u8(0)?.u32(r.boot_id)?;
                w.u8(1)?.u32(r.held_through)?;
                w.u8(2)?.array(r.also_held.len() as u64)?;
                for s in &r.also_held {
                    w.u32(*s)?;
                }
            }
            DownlinkBody::HelpComing(h) => {
                w.map(3)?;
                w.u8(0)?.u32(h.boot_id)?;
                w.u8(1)?.u32(h.seq)?;
                w.u8(2)?.u64(h.alert_id)?;
            }
            DownlinkBody::Config(c) => encode_config(&mut w, c)?,
        }
        cbor::finish(w, MAX_FRAME_BYTES)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_FRAME_BYTES)?;
        let mut r = Reader::new(bytes);
        let n = cbor::open_versioned(&mut r, "downlink frame map")?;
        let mut seen = Seen::default();
        let (mut device_id, mut code, mut body) = (None, None, None);
        for _ in 1..n {
            let key = r.key()?;
            match key {
                0 => return Err(DecodeError::DuplicateField { field: "version" }),
                1 => {
                    seen.mark(key, "device_id")?;
                    device_id = Some(DeviceId::decode_field(r.str("device_id")?, "device_id")?);
                }
                2 => {
                    seen.mark(key, "body_kind")?;
                    let c = r.u64("body_kind")?;
                    if !(1..=3).contains(&c) {
                        return Err(DecodeError::UnknownCode {
                            field: "body_kind",
                            code: c,
                        });
                    }
                    code = Some(c);
                }
                3 => {
                    seen.mark(key, "body")?;
                    body = Some(match required(code, "body_kind")? {
                        1 => DownlinkBody::Receipt(decode_receipt(&mut r)?),
                        2 => DownlinkBody::HelpComing(decode_help(&mut r)?),
                        _ => DownlinkBody::Config(decode_config(&mut r)?),
                    });
                }
                _ => r.skip()?,
            }
        }
        r.finish()?;
        Ok(DownlinkFrame {
            device_id: required(device_id, "device_id")?,
            body: required(body, "body")?,
        })
    }
}

fn decode_receipt(r: &mut Reader<'_>) -> Result<DurableReceipt, DecodeError> {
    let n = r.map("receipt body map")?;
    let mut seen = Seen::default();
    let (mut boot_id, mut held_through) = (None, None);
    let mut also_held = heapless::Vec::new();
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "receipt.boot_id")?;
                boot_id = Some(r.u32("receipt.boot_id")?);
            }
            1 => {
                seen.mark(key, "receipt.held_through")?;
                held_through = Some(r.u32("receipt.held_through")?);
            }
            2 => {
                seen.mark(key, "receipt.also_held")?;
                let len = r.array("receipt.also_held")?;
                if len > MAX_RECEIPT_EXTRA as u64 {
                    return Err(DecodeError::TooMany {
                        field: "receipt.also_held",
                        max: MAX_RECEIPT_EXTRA,
                    });
                }
                for _ in 0..len {
                    let _ = also_held.push(r.u32("receipt.also_held")?);
                }
            }
            _ => r.skip()?,
        }
    }
    Ok(DurableReceipt {
        boot_id: required(boot_id, "receipt.boot_id")?,
        held_through: required(held_through, "receipt.held_through")?,
        also_held,
    })
}

fn decode_help(r: &mut Reader<'_>) -> Result<HelpComing, DecodeError> {
    let n = r.map("help_coming body map")?;
    let mut seen = Seen::default();
    let (mut boot_id, mut seq, mut alert_id) = (None, None, None);
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "help_coming.boot_id")?;
                boot_id = Some(r.u32("help_coming.boot_id")?);
            }
            1 => {
                seen.mark(key, "help_coming.seq")?;
                seq = Some(r.u32("help_coming.seq")?);
            }
            2 => {
                seen.mark(key, "help_coming.alert_id")?;
                alert_id = Some(r.u64("help_coming.alert_id")?);
            }
            _ => r.skip()?,
        }
    }
    Ok(HelpComing {
        boot_id: required(boot_id, "help_coming.boot_id")?,
        seq: required(seq, "help_coming.seq")?,
        alert_id: required(alert_id, "help_coming.alert_id")?,
    })
}

fn encode_config(w: &mut Writer<'_>, c: &ConfigUpdate) -> Result<(), EncodeError> {
    fn check<T: PartialOrd>(
        v: Option<T>,
        (lo, hi): (T, T),
        field: &'static str,
    ) -> Result<(), EncodeError> {
        match v {
            Some(v) if v < lo || v > hi => Err(EncodeError::OutOfRange { field }),
            _ => Ok(()),
        }
    }
    check(c.report_interval_s, INTERVAL_S, "config.report_interval_s")?;
    check(
        c.heartbeat_interval_s,
        INTERVAL_S,
        "config.heartbeat_interval_s",
    )?;
    check(
        c.fall_cancel_window_s,
        CANCEL_WINDOW_S,
        "config.fall_cancel_window_s",
    )?;
    check(
        c.pulses_per_litre,
        PULSES_PER_LITRE,
        "config.pulses_per_litre",
    )?;
    check(
        c.leak_flow_minutes,
        LEAK_FLOW_MINUTES,
        "config.leak_flow_minutes",
    )?;
    let n = [
        c.report_interval_s.is_some(),
        c.heartbeat_interval_s.is_some(),
        c.fall_cancel_window_s.is_some(),
        c.pulses_per_litre.is_some(),
        c.leak_flow_minutes.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    w.map(n as u64)?;
    if let Some(v) = c.report_interval_s {
        w.u8(0)?.u32(v)?;
    }
    if let Some(v) = c.heartbeat_interval_s {
        w.u8(1)?.u32(v)?;
    }
    if let Some(v) = c.fall_cancel_window_s {
        w.u8(2)?.u16(v)?;
    }
    if let Some(v) = c.pulses_per_litre {
        w.u8(3)?.u16(v)?;
    }
    if let Some(v) = c.leak_flow_minutes {
        w.u8(4)?.u16(v)?;
    }
    Ok(())
}

fn decode_config(r: &mut Reader<'_>) -> Result<ConfigUpdate, DecodeError> {
    let n = r.map("config body map")?;
    let mut seen = Seen::default();
    let mut c = ConfigUpdate::default();
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "config.report_interval_s")?;
                c.report_interval_s =
                    Some(r.u32_in("config.report_interval_s", INTERVAL_S.0, INTERVAL_S.1)?);
            }
            1 => {
                seen.mark(key, "config.heartbeat_interval_s")?;
                c.heartbeat_interval_s =
                    Some(r.u32_in("config.heartbeat_interval_s", INTERVAL_S.0, INTERVAL_S.1)?);
            }
            2 => {
                seen.mark(key, "config.fall_cancel_window_s")?;
                c.fall_cancel_window_s = Some(r.u16_in(
                    "config.fall_cancel_window_s",
                    CANCEL_WINDOW_S.0,
                    CANCEL_WINDOW_S.1,
                )?);
            }
            3 => {
                seen.mark(key, "config.pulses_per_litre")?;
                c.pulses_per_litre = Some(r.u16_in(
                    "config.pulses_per_litre",
                    PULSES_PER_LITRE.0,
                    PULSES_PER_LITRE.1,
                )?);
            }
            4 => {
                seen.mark(key, "config.leak_flow_minutes")?;
                c.leak_flow_minutes = Some(r.u16_in(
                    "config.leak_flow_minutes",
                    LEAK_FLOW_MINUTES.0,
                    LEAK_FLOW_MINUTES.1,
                )?);
            }
            _ => r.skip()?,
        }
    }
    Ok(c)
}
