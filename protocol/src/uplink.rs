//! Frames a board sends: one [`UplinkFrame`] per MQTT message on its `…/up` topic.

use crate::cbor::{self, required, Reader, Seen, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::ids::{DeviceId, FirmwareVersion, ZoneId};
use crate::limits::{MAX_FRAME_BYTES, MAX_METER_SLOTS};
use crate::PROTOCOL_VERSION;

/// One frame from a board. `(device_id, boot_id, seq)` identifies it everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkFrame {
    pub device_id: DeviceId,
    /// Increments on every boot of the board; persisted on the board.
    pub boot_id: u32,
    /// Starts at 1 after each boot and increments with every frame.
    pub seq: u32,
    /// Milliseconds since this boot, when the frame was made.
    pub uptime_ms: u64,
    /// Unix time in milliseconds, when the board knows it.
    pub wall_ms: Option<u64>,
    pub body: UplinkBody,
}

/// What a frame reports.
// A meter reading carries its per-minute slots inline: there is no allocator to box it, and
// a frame is built and encoded once, so the size difference costs nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkBody {
    Meter(MeterReading),
    Button(ButtonEvent),
    Fall(FallEvent),
    Fire(FireReport),
    Heartbeat(Heartbeat),
}

impl UplinkBody {
    fn code(&self) -> u8 {
        match self {
            Self::Meter(_) => 1,
            Self::Button(_) => 2,
            Self::Fall(_) => 3,
            Self::Fire(_) => 4,
            Self::Heartbeat(_) => 5,
        }
    }

    /// The body's name as used in logs, the store and the docs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Meter(_) => "meter",
            Self::Button(_) => "button",
            Self::Fall(_) => "fall",
            Self::Fire(_) => "fire",
            Self::Heartbeat(_) => "heartbeat",
        }
    }
}

/// A water-meter reading.
///
/// Volumes are integers of **millilitres**: a household meter resolves 1 L pulses at best,
/// and a `u64` of millilitres never wraps in a meter's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterReading {
    /// Cumulative volume since the meter was installed, in millilitres.
    pub total_ml: u64,
    /// Current flow rate, in millilitres per minute.
    pub flow_ml_per_min: u32,
    /// Battery voltage, in millivolts.
    pub battery_mv: u16,
    /// A magnet or an opened case was detected.
    pub tamper: bool,
    /// The board's own continuous-flow check fired.
    pub leak: bool,
    /// Length of each slot in `slots_ml`, in seconds (1..=3600; default 60).
    pub slot_s: u16,
    /// Volume used in each slot since the previous report, oldest first, in millilitres.
    /// The last slot ends at the frame's `uptime_ms`.
    pub slots_ml: heapless::Vec<u32, MAX_METER_SLOTS>,
}

/// What the resident did with the call button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonKind {
    /// A short press: a call for help.
    Press,
    /// A long press while no call or fall was pending (e.g. "I'm fine").
    LongPress,
    /// The resident cancelled a pending call or fall with a long press.
    Cancel,
}

impl ButtonKind {
    fn code(self) -> u8 {
        match self {
            Self::Press => 0,
            Self::LongPress => 1,
            Self::Cancel => 2,
        }
    }

    fn from_code(code: u64) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(Self::Press),
            1 => Ok(Self::LongPress),
            2 => Ok(Self::Cancel),
            code => Err(DecodeError::UnknownCode {
                field: "button.kind",
                code,
            }),
        }
    }
}

/// A button event from a pendant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonEvent {
    pub kind: ButtonKind,
    /// For a cancel: the `seq` of the call or fall frame it cancels.
    pub cancels_seq: Option<u32>,
}

/// A fall detected by the pendant, reported after its cancel window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallEvent {
    /// How long the total acceleration stayed low before the impact, in milliseconds.
    pub free_fall_ms: u32,
    /// Peak total acceleration of the impact, in milli-g (at most 200 000).
    pub peak_mg: u32,
    /// How long the wearer lay still after the impact, in milliseconds.
    pub stillness_ms: u32,
    /// Angle between the posture before and after the fall, in degrees (0..=180).
    pub orientation_change_deg: u16,
    /// The wearer cancelled within the cancel window (reported for the record).
    pub cancelled: bool,
}

/// The kind of a fire-safety sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorKind {
    Smoke,
    Heat,
    Gas,
    ResidualCurrent,
    CableTemperature,
    HydrantPressure,
    DoorContact,
    ManualCallPoint,
    SprinklerValve,
}

impl SensorKind {
    /// Every kind, in code order.
    pub const ALL: [SensorKind; 9] = [
        Self::Smoke,
        Self::Heat,
        Self::Gas,
        Self::ResidualCurrent,
        Self::CableTemperature,
        Self::HydrantPressure,
        Self::DoorContact,
        Self::ManualCallPoint,
        Self::SprinklerValve,
    ];

    pub fn code(self) -> u8 {
        match self {
            Self::Smoke => 0,
            Self::Heat => 1,
            Self::Gas => 2,
            Self::ResidualCurrent => 3,
            Self::CableTemperature => 4,
            Self::HydrantPressure => 5,
            Self::DoorContact => 6,
            Self::ManualCallPoint => 7,
            Self::SprinklerValve => 8,
        }
    }

    pub fn from_code(code: u64) -> Result<Self, DecodeError> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| u64::from(k.code()) == code)
            .ok_or(DecodeError::UnknownCode {
                field: "fire.sensor",
                code,
            })
    }

    /// The unit every value of this kind is expressed in.
    pub fn unit(self) -> Unit {
        match self {
            Self::Smoke => Unit::CentiPercentPerMetre,
            Self::Heat | Self::CableTemperature => Unit::DeciCelsius,
            Self::Gas => Unit::PartsPerMillion,
            Self::ResidualCurrent => Unit::MilliAmpere,
            Self::HydrantPressure => Unit::Kilopascal,
            Self::DoorContact | Self::ManualCallPoint | Self::SprinklerValve => Unit::State,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Smoke => "smoke",
            Self::Heat => "heat",
            Self::Gas => "gas",
            Self::ResidualCurrent => "residual_current",
            Self::CableTemperature => "cable_temperature",
            Self::HydrantPressure => "hydrant_pressure",
            Self::DoorContact => "door_contact",
            Self::ManualCallPoint => "manual_call_point",
            Self::SprinklerValve => "sprinkler_valve",
        }
    }
}

/// The unit of a fire-sensor value; each sensor kind has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Smoke obscuration in hundredths of a percent per metre.
    CentiPercentPerMetre,
    /// Temperature in tenths of a degree Celsius.
    DeciCelsius,
    /// Gas concentration in parts per million.
    PartsPerMillion,
    /// Current in milliamperes.
    MilliAmpere,
    /// Pressure in kilopascals.
    Kilopascal,
    /// A contact or switch: 0 normal (closed valve = 1 for a sprinkler valve, open door = 1,
    /// operated call point = 1).
    State,
}

impl Unit {
    pub fn code(self) -> u8 {
        match self {
            Self::CentiPercentPerMetre => 0,
            Self::DeciCelsius => 1,
            Self::PartsPerMillion => 2,
            Self::MilliAmpere => 3,
            Self::Kilopascal => 4,
            Self::State => 5,
        }
    }

    pub fn from_code(code: u64) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(Self::CentiPercentPerMetre),
            1 => Ok(Self::DeciCelsius),
            2 => Ok(Self::PartsPerMillion),
            3 => Ok(Self::MilliAmpere),
            4 => Ok(Self::Kilopascal),
            5 => Ok(Self::State),
            code => Err(DecodeError::UnknownCode {
                field: "fire.unit",
                code,
            }),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::CentiPercentPerMetre => "0.01%/m",
            Self::DeciCelsius => "0.1°C",
            Self::PartsPerMillion => "ppm",
            Self::MilliAmpere => "mA",
            Self::Kilopascal => "kPa",
            Self::State => "state",
        }
    }
}

/// The signal classes of fire-alarm monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalClass {
    Normal,
    /// Smoke, heat, gas or a manual call point: a possible fire.
    Alarm,
    /// A fire-protection system is impaired: valve closed, pressure low, door held open.
    Supervisory,
    /// The sensor itself is faulty, disconnected, stuck, tampered or low on battery.
    Trouble,
}

impl SignalClass {
    pub fn code(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Alarm => 1,
            Self::Supervisory => 2,
            Self::Trouble => 3,
        }
    }

    pub fn from_code(code: u64) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(Self::Normal),
            1 => Ok(Self::Alarm),
            2 => Ok(Self::Supervisory),
            3 => Ok(Self::Trouble),
            code => Err(DecodeError::UnknownCode {
                field: "fire.signal",
                code,
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Alarm => "alarm",
            Self::Supervisory => "supervisory",
            Self::Trouble => "trouble",
        }
    }
}

/// A fire-safety sensor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireReport {
    pub sensor: SensorKind,
    /// The measured value, in `unit`.
    pub value: i32,
    /// Always `sensor.unit()`; carried so a consumer needs no table to read the value.
    pub unit: Unit,
    pub signal: SignalClass,
    pub zone: ZoneId,
    /// This report is the node's periodic self-test.
    pub self_test: bool,
}

/// A board's periodic sign of life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub battery_mv: u16,
    /// Received signal strength, in dBm (-128..=20).
    pub rssi_dbm: i8,
    pub firmware: FirmwareVersion,
}

impl UplinkFrame {
    /// Whether the frame must travel ahead of routine readings: a call or cancel, a fall,
    /// a fire alarm, a tamper or on-board leak signal.
    pub fn is_urgent(&self) -> bool {
        match &self.body {
            UplinkBody::Button(_) | UplinkBody::Fall(_) => true,
            UplinkBody::Fire(f) => match f.signal {
                SignalClass::Alarm => true,
                SignalClass::Normal | SignalClass::Supervisory | SignalClass::Trouble => false,
            },
            UplinkBody::Meter(m) => m.tamper || m.leak,
            UplinkBody::Heartbeat(_) => false,
        }
    }

    /// Encodes the frame into `buf` and returns the number of bytes written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = cbor::writer(buf);
        let entries = 7 + u64::from(self.wall_ms.is_some());
        w.map(entries)?;
        w.u8(0)?.u8(PROTOCOL_VERSION)?;
        w.u8(1)?.str(self.device_id.as_str())?;
        w.u8(2)?.u32(self.boot_id)?;
        w.u8(3)?.u32(self.seq)?;
        w.u8(4)?.u64(self.uptime_ms)?;
        if let Some(wall) = self.wall_ms {
            w.u8(5)?.u64(wall)?;
        }
        w.u8(6)?.u8(self.body.code())?;
        w.u8(7)?;
        match &self.body {
            UplinkBody::Meter(m) => encode_meter(&mut w, m)?,
            UplinkBody::Button(b) => encode_button(&mut w, b)?,
            UplinkBody::Fall(f) => encode_fall(&mut w, f)?,
            UplinkBody::Fire(f) => encode_fire(&mut w, f)?,
            UplinkBody::Heartbeat(h) => encode_heartbeat(&mut w, h)?,
        }
        cbor::finish(w, MAX_FRAME_BYTES)
    }

    /// Decodes one frame; the whole input must be exactly one frame.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_FRAME_BYTES)?;
        let mut r = Reader::new(bytes);
        let frame = decode_frame(&mut r)?;
        r.finish()?;
        Ok(frame)
    }
}

fn decode_frame(r: &mut Reader<'_>) -> Result<UplinkFrame, DecodeError> {
    let n = cbor::open_versioned(r, "uplink frame map")?;
    let mut seen = Seen::default();
    let (mut device_id, mut boot_id, mut seq, mut uptime_ms, mut wall_ms) =
        (None, None, None, None, None);
    let mut body_code = None;
    let mut body = None;
    for _ in 1..n {
        let key = r.key()?;
        match key {
            0 => return Err(DecodeError::DuplicateField { field: "version" }),
            1 => {
                seen.mark(key, "device_id")?;
                device_id = Some(DeviceId::decode_field(r.str("device_id")?, "device_id")?);
            }
            2 => {
                seen.mark(key, "boot_id")?;
                boot_id = Some(r.u32("boot_id")?);
            }
            3 => {
                seen.mark(key, "seq")?;
                seq = Some(r.u32("seq")?);
            }
            4 => {
                seen.mark(key, "uptime_ms")?;
                uptime_ms = Some(r.u64("uptime_ms")?);
            }
            5 => {
                seen.mark(key, "wall_ms")?;
                wall_ms = Some(r.u64("wall_ms")?);
            }
            6 => {
                seen.mark(key, "body_kind")?;
                let code = r.u64("body_kind")?;
                if !(1..=5).contains(&code) {
                    return Err(DecodeError::UnknownCode {
                        field: "body_kind",
                        code,
                    });
                }
                body_code = Some(code);
            }
            7 => {
                seen.mark(key, "body")?;
                // The body's shape depends on the kind, which a sender writes first (key 6).
                let code = required(body_code, "body_kind")?;
                body = Some(match code {
                    1 => UplinkBody::Meter(decode_meter(r)?),
                    2 => UplinkBody::Button(decode_button(r)?),
                    3 => UplinkBody::Fall(decode_fall(r)?),
                    4 => UplinkBody::Fire(decode_fire(r)?),
                    _ => UplinkBody::Heartbeat(decode_heartbeat(r)?),
                });
            }
            _ => r.skip()?,
        }
    }
    Ok(UplinkFrame {
        device_id: required(device_id, "device_id")?,
        boot_id: required(boot_id, "boot_id")?,
        seq: required(seq, "seq")?,
        uptime_ms: required(uptime_ms, "uptime_ms")?,
        wall_ms,
        body: required(body, "body")?,
    })
}

fn encode_meter(w: &mut Writer<'_>, m: &MeterReading) -> Result<(), EncodeError> {
    if m.slot_s == 0 || m.slot_s > 3600 {
        return Err(EncodeError::OutOfRange {
            field: "meter.slot_s",
        });
    }
    w.map(7)?;
    w.u8(0)?.u64(m.total_ml)?;
    w.u8(1)?.u32(m.flow_ml_per_min)?;
    w.u8(2)?.u16(m.battery_mv)?;
    w.u8(3)?.bool(m.tamper)?;
    w.u8(4)?.bool(m.leak)?;
    w.u8(5)?.u16(m.slot_s)?;
    w.u8(6)?.array(m.slots_ml.len() as u64)?;
    for v in &m.slots_ml {
        w.u32(*v)?;
    }
    Ok(())
}

fn decode_meter(r: &mut Reader<'_>) -> Result<MeterReading, DecodeError> {
    let n = r.map("meter body map")?;
    let mut seen = Seen::default();
    let (mut total, mut flow, mut battery) = (None, None, None);
    let mut m = MeterReading {
        total_ml: 0,
        flow_ml_per_min: 0,
        battery_mv: 0,
        tamper: false,
        leak: false,
        slot_s: 60,
        slots_ml: heapless::Vec::new(),
    };
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "meter.total_ml")?;
                total = Some(r.u64("meter.total_ml")?);
            }
            1 => {
                seen.mark(key, "meter.flow_ml_per_min")?;
                flow = Some(r.u32("meter.flow_ml_per_min")?);
            }
            2 => {
                seen.mark(key, "meter.battery_mv")?;
                battery = Some(r.u16_in("meter.battery_mv", 0, u16::MAX)?);
            }
            3 => {
                seen.mark(key, "meter.tamper")?;
                m.tamper = r.bool("meter.tamper")?;
            }
            4 => {
                seen.mark(key, "meter.leak")?;
                m.leak = r.bool("meter.leak")?;
            }
            5 => {
                seen.mark(key, "meter.slot_s")?;
                m.slot_s = r.u16_in("meter.slot_s", 1, 3600)?;
            }
            6 => {
                seen.mark(key, "meter.slots_ml")?;
                let len = r.array("meter.slots_ml")?;
                if len > MAX_METER_SLOTS as u64 {
                    return Err(DecodeError::TooMany {
                        field: "meter.slots_ml",
                        max: MAX_METER_SLOTS,
                    });
                }
                for _ in 0..len {
                    let v = r.u32("meter.slots_ml")?;
                    // Cannot fail: the length was checked against the capacity above.
                    let _ = m.slots_ml.push(v);
                }
            }
            _ => r.skip()?,
        }
    }
    m.total_ml = required(total, "meter.total_ml")?;
    m.flow_ml_per_min = required(flow, "meter.flow_ml_per_min")?;
    m.battery_mv = required(battery, "meter.battery_mv")?;
    Ok(m)
}

fn encode_button(w: &mut Writer<'_>, b: &ButtonEvent) -> Result<(), EncodeError> {
    w.map(1 + u64::from(b.cancels_seq.is_some()))?;
    w.u8(0)?.u8(b.kind.code())?;
    if let Some(seq) = b.cancels_seq {
        w.u8(1)?.u32(seq)?;
    }
    Ok(())
}

fn decode_button(r: &mut Reader<'_>) -> Result<ButtonEvent, DecodeError> {
    let n = r.map("button body map")?;
    let mut seen = Seen::default();
    let (mut kind, mut cancels_seq) = (None, None);
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "button.kind")?;
                kind = Some(ButtonKind::from_code(r.u64("button.kind")?)?);
            }
            1 => {
                seen.mark(key, "button.cancels_seq")?;
                cancels_seq = Some(r.u32("button.cancels_seq")?);
            }
            _ => r.skip()?,
        }
    }
    Ok(ButtonEvent {
        kind: required(kind, "button.kind")?,
        cancels_seq,
    })
}

/// Largest plausible impact, in milli-g; beyond it a reading is a sensor fault.
const MAX_PEAK_MG: u32 = 200_000;

fn encode_fall(w: &mut Writer<'_>, f: &FallEvent) -> Result<(), EncodeError> {
    if f.orientation_change_deg > 180 {
        return Err(EncodeError::OutOfRange {
            field: "fall.orientation_change_deg",
        });
    }
    if f.peak_mg > MAX_PEAK_MG {
        return Err(EncodeError::OutOfRange {
            field: "fall.peak_mg",
        });
    }
    w.map(5)?;
    w.u8(0)?.u32(f.free_fall_ms)?;
    w.u8(1)?.u32(f.peak_mg)?;
    w.u8(2)?.u32(f.stillness_ms)?;
    w.u8(3)?.u16(f.orientation_change_deg)?;
    w.u8(4)?.bool(f.cancelled)?;
    Ok(())
}

fn decode_fall(r: &mut Reader<'_>) -> Result<FallEvent, DecodeError> {
    let n = r.map("fall body map")?;
    let mut seen = Seen::default();
    let (mut free_fall, mut peak, mut still, mut orient) = (None, None, None, None);
    let mut cancelled = false;
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "fall.free_fall_ms")?;
                free_fall = Some(r.u32("fall.free_fall_ms")?);
            }
            1 => {
                seen.mark(key, "fall.peak_mg")?;
                peak = Some(r.u32_in("fall.peak_mg", 0, MAX_PEAK_MG)?);
            }
            2 => {
                seen.mark(key, "fall.stillness_ms")?;
                still = Some(r.u32("fall.stillness_ms")?);
            }
            3 => {
                seen.mark(key, "fall.orientation_change_deg")?;
                orient = Some(r.u16_in("fall.orientation_change_deg", 0, 180)?);
            }
            4 => {
                seen.mark(key, "fall.cancelled")?;
                cancelled = r.bool("fall.cancelled")?;
            }
            _ => r.skip()?,
        }
    }
    Ok(FallEvent {
        free_fall_ms: required(free_fall, "fall.free_fall_ms")?,
        peak_mg: required(peak, "fall.peak_mg")?,
        stillness_ms: required(still, "fall.stillness_ms")?,
        orientation_change_deg: required(orient, "fall.orientation_change_deg")?,
        cancelled,
    })
}

fn encode_fire(w: &mut Writer<'_>, f: &FireReport) -> Result<(), EncodeError> {
    if f.unit != f.sensor.unit() {
        return Err(EncodeError::OutOfRange { field: "fire.unit" });
    }
    w.map(5 + u64::from(f.self_test))?;
    w.u8(0)?.u8(f.sensor.code())?;
    w.u8(1)?.i32(f.value)?;
    w.u8(2)?.u8(f.unit.code())?;
    w.u8(3)?.u8(f.signal.code())?;
    w.u8(4)?.str(f.zone.as_str())?;
    if f.self_test {
        w.u8(5)?.bool(true)?;
    }
    Ok(())
}

fn decode_fire(r: &mut Reader<'_>) -> Result<FireReport, DecodeError> {
    let n = r.map("fire body map")?;
    let mut seen = Seen::default();
    let (mut sensor, mut value, mut unit, mut signal, mut zone) = (None, None, None, None, None);
    let mut self_test = false;
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "fire.sensor")?;
                sensor = Some(SensorKind::from_code(r.u64("fire.sensor")?)?);
            }
            1 => {
                seen.mark(key, "fire.value")?;
                value = Some(r.int("fire.value", i32::MIN as i128, i32::MAX as i128)? as i32);
            }
            2 => {
                seen.mark(key, "fire.unit")?;
                unit = Some(Unit::from_code(r.u64("fire.unit")?)?);
            }
            3 => {
                seen.mark(key, "fire.signal")?;
                signal = Some(SignalClass::from_code(r.u64("fire.signal")?)?);
            }
            4 => {
                seen.mark(key, "fire.zone")?;
                zone = Some(ZoneId::decode_field(r.str("fire.zone")?, "fire.zone")?);
            }
            5 => {
                seen.mark(key, "fire.self_test")?;
                self_test = r.bool("fire.self_test")?;
            }
            _ => r.skip()?,
        }
    }
    let sensor = required(sensor, "fire.sensor")?;
    let unit = required(unit, "fire.unit")?;
    if unit != sensor.unit() {
        return Err(DecodeError::UnitMismatch);
    }
    Ok(FireReport {
        sensor,
        value: required(value, "fire.value")?,
        unit,
        signal: required(signal, "fire.signal")?,
        zone: required(zone, "fire.zone")?,
        self_test,
    })
}

fn encode_heartbeat(w: &mut Writer<'_>, h: &Heartbeat) -> Result<(), EncodeError> {
    if h.rssi_dbm > 20 {
        return Err(EncodeError::OutOfRange {
            field: "heartbeat.rssi_dbm",
        });
    }
    w.map(3)?;
    w.u8(0)?.u16(h.battery_mv)?;
    w.u8(1)?.i8(h.rssi_dbm)?;
    w.u8(2)?.str(h.firmware.as_str())?;
    Ok(())
}

fn decode_heartbeat(r: &mut Reader<'_>) -> Result<Heartbeat, DecodeError> {
    let n = r.map("heartbeat body map")?;
    let mut seen = Seen::default();
    let (mut battery, mut rssi, mut firmware) = (None, None, None);
    for _ in 0..n {
        let key = r.key()?;
        match key {
            0 => {
                seen.mark(key, "heartbeat.battery_mv")?;
                battery = Some(r.u16_in("heartbeat.battery_mv", 0, u16::MAX)?);
            }
            1 => {
                seen.mark(key, "heartbeat.rssi_dbm")?;
                rssi = Some(r.int("heartbeat.rssi_dbm", -128, 20)? as i8);
            }
            2 => {
                seen.mark(key, "heartbeat.firmware")?;
                firmware = Some(FirmwareVersion::decode_field(
                    r.str("heartbeat.firmware")?,
                    "heartbeat.firmware",
                )?);
            }
            _ => r.skip()?,
        }
    }
    Ok(Heartbeat {
        battery_mv: required(battery, "heartbeat.battery_mv")?,
        rssi_dbm: required(rssi, "heartbeat.rssi_dbm")?,
        firmware: required(firmware, "heartbeat.firmware")?,
    })
}
