//! Sample frames and their readable JSON meaning, shared by the vector and property tests.
#![allow(dead_code)]

use serde_json::{json, Value};
use vigil_protocol::*;

pub fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

pub fn uplink_json(f: &UplinkFrame) -> Value {
    let body = match &f.body {
        UplinkBody::Meter(m) => json!({"meter": {
            "total_ml": m.total_ml, "flow_ml_per_min": m.flow_ml_per_min, "battery_mv": m.battery_mv,
            "tamper": m.tamper, "leak": m.leak, "slot_s": m.slot_s, "slots_ml": m.slots_ml.as_slice()}}),
        UplinkBody::Button(b) => json!({"button": {
            "kind": format!("{:?}", b.kind), "cancels_seq": b.cancels_seq}}),
        UplinkBody::Fall(x) => json!({"fall": {
            "free_fall_ms": x.free_fall_ms, "peak_mg": x.peak_mg, "stillness_ms": x.stillness_ms,
            "orientation_change_deg": x.orientation_change_deg, "cancelled": x.cancelled}}),
        UplinkBody::Fire(x) => json!({"fire": {
            "sensor": x.sensor.name(), "value": x.value, "unit": x.unit.symbol(),
            "signal": x.signal.name(), "zone": x.zone.as_str(), "self_test": x.self_test}}),
        UplinkBody::Heartbeat(h) => json!({"heartbeat": {
            "battery_mv": h.battery_mv, "rssi_dbm": h.rssi_dbm, "firmware": h.firmware.as_str()}}),
    };
    json!({"device_id": f.device_id.as_str(), "boot_id": f.boot_id, "seq": f.seq,
           "uptime_ms": f.uptime_ms, "wall_ms": f.wall_ms, "body": body})
}

pub fn downlink_json(f: &DownlinkFrame) -> Value {
    let body = match &f.body {
        DownlinkBody::Receipt(r) => json!({"receipt": {
            "boot_id": r.boot_id, "held_through": r.held_through, "also_held": r.also_held.as_slice()}}),
        DownlinkBody::HelpComing(h) => json!({"help_coming": {
            "boot_id": h.boot_id, "seq": h.seq, "alert_id": h.alert_id}}),
        DownlinkBody::Config(c) => json!({"config": {
            "report_interval_s": c.report_interval_s, "heartbeat_interval_s": c.heartbeat_interval_s,
            "fall_cancel_window_s": c.fall_cancel_window_s, "pulses_per_litre": c.pulses_per_litre,
            "leak_flow_minutes": c.leak_flow_minutes}}),
    };
    json!({"device_id": f.device_id.as_str(), "body": body})
}

pub fn batch_json(b: &Batch<'_>) -> Value {
    let entries: Vec<Value> = b
        .entries()
        .map(|e| json!({"received_ms": e.received_ms, "frame": uplink_json(&e.decode_frame().unwrap())}))
        .collect();
    json!({"gateway_id": b.header.gateway_id.as_str(), "site_id": b.header.site_id.as_str(),
           "batch_seq": b.header.batch_seq, "entries": entries})
}

pub fn status_json(s: &GatewayStatus) -> Value {
    let boards: Vec<Value> = s
        .boards
        .iter()
        .map(|b| {
            json!({"device_id": b.device_id.as_str(), "last_seen_ms": b.last_seen_ms,
                        "battery_mv": b.battery_mv, "rssi_dbm": b.rssi_dbm})
        })
        .collect();
    json!({"gateway_id": s.gateway_id.as_str(), "site_id": s.site_id.as_str(), "sent_ms": s.sent_ms,
           "uplink_connected": s.uplink_connected, "spool_frames": s.spool_frames,
           "spool_bytes": s.spool_bytes, "oldest_unsent_s": s.oldest_unsent_s, "boards": boards})
}

pub fn state_json(s: &DeviceState) -> Value {
    json!({"device_id": s.device_id.as_str(), "online": s.online, "boot_id": s.boot_id})
}

pub fn ack_json(a: &LocalAck) -> Value {
    json!({"gateway_id": a.gateway_id.as_str(), "device_id": a.device_id.as_str(), "boot_id": a.boot_id,
           "seq": a.seq, "acked_ms": a.acked_ms, "by": a.by.as_str()})
}

fn frame(device: &str, seq: u32, wall_ms: Option<u64>, body: UplinkBody) -> UplinkFrame {
    UplinkFrame {
        device_id: dev(device),
        boot_id: 3,
        seq,
        uptime_ms: 900_000 + u64::from(seq),
        wall_ms,
        body,
    }
}

/// One or more examples of every uplink body.
pub fn sample_uplinks() -> Vec<(&'static str, UplinkFrame)> {
    let mut slots = heapless::Vec::new();
    for v in [0u32, 0, 1000, 6000, 6000, 2000, 0, 0, 0, 0, 0, 0, 0, 0, 0] {
        slots.push(v).unwrap();
    }
    vec![
        (
            "meter reading with 15 one-minute slots",
            frame(
                "meter-0042",
                17,
                Some(1_764_460_800_000),
                UplinkBody::Meter(MeterReading {
                    total_ml: 123_456_000,
                    flow_ml_per_min: 0,
                    battery_mv: 3600,
                    tamper: false,
                    leak: false,
                    slot_s: 60,
                    slots_ml: slots,
                }),
            ),
        ),
        (
            "meter tamper, no slots, no wall time",
            frame(
                "meter-0042",
                18,
                None,
                UplinkBody::Meter(MeterReading {
                    total_ml: 123_457_000,
                    flow_ml_per_min: 0,
                    battery_mv: 3590,
                    tamper: true,
                    leak: false,
                    slot_s: 60,
                    slots_ml: heapless::Vec::new(),
                }),
            ),
        ),
        (
            "call button press",
            frame(
                "pendant-7",
                5,
                Some(1_764_460_900_000),
                UplinkBody::Button(ButtonEvent {
                    kind: ButtonKind::Press,
                    cancels_seq: None,
                }),
            ),
        ),
        (
            "resident cancels call 5",
            frame(
                "pendant-7",
                6,
                None,
                UplinkBody::Button(ButtonEvent {
                    kind: ButtonKind::Cancel,
                    cancels_seq: Some(5),
                }),
            ),
        ),
        (
            "long press with nothing pending",
            frame(
                "pendant-7",
                7,
                None,
                UplinkBody::Button(ButtonEvent {
                    kind: ButtonKind::LongPress,
                    cancels_seq: None,
                }),
            ),
        ),
        (
            "fall reported after the cancel window",
            frame(
                "pendant-7",
                8,
                None,
                UplinkBody::Fall(FallEvent {
                    free_fall_ms: 320,
                    peak_mg: 4100,
                    stillness_ms: 30_000,
                    orientation_change_deg: 85,
                    cancelled: false,
                }),
            ),
        ),
        (
            "smoke alarm in zone f2-east",
            frame(
                "fire-201",
                40,
                Some(1_764_461_000_000),
                UplinkBody::Fire(FireReport {
                    sensor: SensorKind::Smoke,
                    value: 1250,
                    unit: Unit::CentiPercentPerMetre,
                    signal: SignalClass::Alarm,
                    zone: ZoneId::new("f2-east").unwrap(),
                    self_test: false,
                }),
            ),
        ),
        (
            "residual current self-test",
            frame(
                "fire-305",
                41,
                None,
                UplinkBody::Fire(FireReport {
                    sensor: SensorKind::ResidualCurrent,
                    value: 12,
                    unit: Unit::MilliAmpere,
                    signal: SignalClass::Normal,
                    zone: ZoneId::new("f3-panel").unwrap(),
                    self_test: true,
                }),
            ),
        ),
        (
            "hydrant pressure low (supervisory, negative value allowed)",
            frame(
                "fire-900",
                2,
                None,
                UplinkBody::Fire(FireReport {
                    sensor: SensorKind::HydrantPressure,
                    value: -5,
                    unit: Unit::Kilopascal,
                    signal: SignalClass::Supervisory,
                    zone: ZoneId::new("pump-room").unwrap(),
                    self_test: false,
                }),
            ),
        ),
        (
            "heartbeat",
            frame(
                "meter-0042",
                19,
                None,
                UplinkBody::Heartbeat(Heartbeat {
                    battery_mv: 3580,
                    rssi_dbm: -71,
                    firmware: FirmwareVersion::new("0.1.0").unwrap(),
                }),
            ),
        ),
    ]
}

pub fn sample_downlinks() -> Vec<(&'static str, DownlinkFrame)> {
    let mut also = heapless::Vec::new();
    also.push(12).unwrap();
    also.push(14).unwrap();
    vec![
        (
            "durable receipt: through 9, and 12 and 14 that overtook",
            DownlinkFrame {
                device_id: dev("pendant-7"),
                body: DownlinkBody::Receipt(DurableReceipt {
                    boot_id: 3,
                    held_through: 9,
                    also_held: also,
                }),
            },
        ),
        (
            "help is coming for call 5",
            DownlinkFrame {
                device_id: dev("pendant-7"),
                body: DownlinkBody::HelpComing(HelpComing {
                    boot_id: 3,
                    seq: 5,
                    alert_id: 90_001,
                }),
            },
        ),
        (
            "configuration: report every 10 minutes, 20 s cancel window",
            DownlinkFrame {
                device_id: dev("meter-0042"),
                body: DownlinkBody::Config(ConfigUpdate {
                    report_interval_s: Some(600),
                    fall_cancel_window_s: Some(20),
                    ..ConfigUpdate::default()
                }),
            },
        ),
    ]
}

pub fn sample_status() -> GatewayStatus {
    let mut boards = heapless::Vec::new();
    boards
        .push(BoardStatus {
            device_id: dev("meter-0042"),
            last_seen_ms: 1_764_460_800_000,
            battery_mv: Some(3580),
            rssi_dbm: Some(-71),
        })
        .unwrap();
    boards
        .push(BoardStatus {
            device_id: dev("pendant-7"),
            last_seen_ms: 1_764_460_700_000,
            battery_mv: None,
            rssi_dbm: None,
        })
        .unwrap();
    GatewayStatus {
        gateway_id: GatewayId::new("gw-1").unwrap(),
        site_id: SiteId::new("home-12").unwrap(),
        sent_ms: 1_764_460_810_000,
        uplink_connected: false,
        spool_frames: 42,
        spool_bytes: 4096,
        oldest_unsent_s: 600,
        boards,
    }
}

pub fn sample_state() -> DeviceState {
    DeviceState {
        device_id: dev("pendant-7"),
        online: false,
        boot_id: 3,
    }
}

pub fn sample_ack() -> LocalAck {
    LocalAck {
        gateway_id: GatewayId::new("gw-1").unwrap(),
        device_id: dev("pendant-7"),
        boot_id: 3,
        seq: 5,
        acked_ms: 1_764_460_930_000,
        by: StaffName::new("Nurse Li").unwrap(),
    }
}

pub fn batch_header() -> BatchHeader {
    BatchHeader {
        gateway_id: GatewayId::new("gw-1").unwrap(),
        site_id: SiteId::new("home-12").unwrap(),
        batch_seq: 77,
    }
}

pub fn encode<F: FnOnce(&mut [u8]) -> Result<usize, EncodeError>>(f: F) -> Vec<u8> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = f(&mut buf).unwrap();
    buf.truncate(n);
    buf
}
