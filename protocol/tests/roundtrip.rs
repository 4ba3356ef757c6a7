//! Property tests: any valid frame survives encode → decode unchanged, and no input makes a
//! decoder panic.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use vigil_protocol::limits::{MAX_METER_SLOTS, MAX_RECEIPT_EXTRA};
use vigil_protocol::*;

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,32}"
}

fn body() -> impl Strategy<Value = UplinkBody> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u32>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            1u16..=3600,
            vec(any::<u32>(), 0..=MAX_METER_SLOTS)
        )
            .prop_map(
                |(total_ml, flow, battery_mv, tamper, leak, slot_s, slots)| UplinkBody::Meter(
                    MeterReading {
                        total_ml,
                        flow_ml_per_min: flow,
                        battery_mv,
                        tamper,
                        leak,
                        slot_s,
                        slots_ml: heapless::Vec::from_slice(&slots).unwrap(),
                    }
                )
            ),
        (
            prop_oneof![
                Just(ButtonKind::Press),
                Just(ButtonKind::LongPress),
                Just(ButtonKind::Cancel)
            ],
            any::<Option<u32>>()
        )
            .prop_map(|(kind, cancels_seq)| UplinkBody::Button(ButtonEvent { kind, cancels_seq })),
        (
            any::<u32>(),
            0u32..=200_000,
            any::<u32>(),
            0u16..=180,
            any::<bool>()
        )
            .prop_map(|(a, b, c, d, e)| UplinkBody::Fall(FallEvent {
                free_fall_ms: a,
                peak_mg: b,
                stillness_ms: c,
                orientation_change_deg: d,
                cancelled: e
            })),
        (
            0usize..SensorKind::ALL.len(),
            any::<i32>(),
            0u8..4,
            id(),
            any::<bool>()
        )
            .prop_map(|(k, value, s, zone, self_test)| {
                let sensor = SensorKind::ALL[k];
                let signal = [
                    SignalClass::Normal,
                    SignalClass::Alarm,
                    SignalClass::Supervisory,
                    SignalClass::Trouble,
                ][s as usize];
                UplinkBody::Fire(FireReport {
                    sensor,
                    value,
                    unit: sensor.unit(),
                    signal,
                    zone: ZoneId::new(&zone).unwrap(),
                    self_test,
                })
            }),
        (any::<u16>(), -128i8..=20, "[ -~]{1,24}").prop_map(|(battery_mv, rssi_dbm, fw)| {
            UplinkBody::Heartbeat(Heartbeat {
                battery_mv,
                rssi_dbm,
                firmware: FirmwareVersion::new(&fw).unwrap(),
            })
        }),
    ]
}

fn uplink() -> impl Strategy<Value = UplinkFrame> {
    (
        id(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<Option<u64>>(),
        body(),
    )
        .prop_map(|(d, boot_id, seq, uptime_ms, wall_ms, body)| UplinkFrame {
            device_id: DeviceId::new(&d).unwrap(),
            boot_id,
            seq,
            uptime_ms,
            wall_ms,
            body,
        })
}

fn downlink() -> impl Strategy<Value = DownlinkFrame> {
    let body = prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            vec(any::<u32>(), 0..=MAX_RECEIPT_EXTRA)
        )
            .prop_map(|(boot_id, held_through, extra)| {
                DownlinkBody::Receipt(DurableReceipt {
                    boot_id,
                    held_through,
                    also_held: heapless::Vec::from_slice(&extra).unwrap(),
                })
            }),
        (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(boot_id, seq, alert_id)| {
            DownlinkBody::HelpComing(HelpComing {
                boot_id,
                seq,
                alert_id,
            })
        }),
        (
            proptest::option::of(60u32..=86_400),
            proptest::option::of(60u32..=86_400),
            proptest::option::of(5u16..=120),
            proptest::option::of(1u16..=10_000),
            proptest::option::of(10u16..=1_440)
        )
            .prop_map(|(a, b, c, d, e)| DownlinkBody::Config(ConfigUpdate {
                report_interval_s: a,
                heartbeat_interval_s: b,
                fall_cancel_window_s: c,
                pulses_per_litre: d,
                leak_flow_minutes: e
            })),
    ];
    (id(), body).prop_map(|(d, body)| DownlinkFrame {
        device_id: DeviceId::new(&d).unwrap(),
        body,
    })
}

proptest! {
    #[test]
    fn any_uplink_frame_round_trips(frame in uplink()) {
        let bytes = common::encode(|b| frame.encode(b));
        prop_assert!(bytes.len() <= limits::MAX_FRAME_BYTES);
        prop_assert_eq!(UplinkFrame::decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn any_downlink_frame_round_trips(frame in downlink()) {
        let bytes = common::encode(|b| frame.encode(b));
        prop_assert_eq!(DownlinkFrame::decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn any_batch_round_trips_with_its_frames_in_order(frames in vec(uplink(), 0..40), seq in any::<u64>()) {
        let encoded: Vec<Vec<u8>> = frames.iter().map(|f| common::encode(|b| f.encode(b))).collect();
        let entries: Vec<BatchEntry<'_>> = encoded.iter().enumerate()
            .map(|(i, f)| BatchEntry { received_ms: i as u64 * 7, frame: f }).collect();
        let header = BatchHeader { batch_seq: seq, ..common::batch_header() };
        let bytes = common::encode(|b| encode_batch(&header, &entries, b));
        let batch = Batch::decode(&bytes).unwrap();
        prop_assert_eq!(&batch.header, &header);
        let back: Vec<UplinkFrame> = batch.entries().map(|e| e.decode_frame().unwrap()).collect();
        prop_assert_eq!(back, frames);
    }

    #[test]
    fn decoders_return_errors_and_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        let _ = UplinkFrame::decode(&bytes);
        let _ = DownlinkFrame::decode(&bytes);
        let _ = DeviceState::decode(&bytes);
        let _ = GatewayStatus::decode(&bytes);
        let _ = LocalAck::decode(&bytes);
        if let Ok(b) = Batch::decode(&bytes) {
            for e in b.entries() { let _ = e.decode_frame(); }
        }
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_rejected(frame in uplink()) {
        let bytes = common::encode(|b| frame.encode(b));
        for cut in 0..bytes.len() {
            prop_assert!(UplinkFrame::decode(&bytes[..cut]).is_err());
        }
    }
}

#[test]
fn encoding_into_a_small_buffer_fails_cleanly() {
    let (_, frame) = common::sample_uplinks().remove(0);
    let mut buf = [0u8; 16];
    assert_eq!(frame.encode(&mut buf), Err(EncodeError::BufferTooSmall));
}

#[test]
fn urgent_frames_are_calls_falls_fire_alarms_and_tampers() {
    let urgent: Vec<bool> = common::sample_uplinks()
        .iter()
        .map(|(_, f)| f.is_urgent())
        .collect();
    // meter, meter tamper, press, cancel, long press, fall, smoke alarm, self-test, supervisory, heartbeat
    assert_eq!(
        urgent,
        [false, true, true, true, true, true, true, false, false, false]
    );
}

#[test]
fn a_receipt_covers_its_contiguous_run_and_its_extras_only_for_its_boot() {
    let r = DurableReceipt {
        boot_id: 3,
        held_through: 9,
        also_held: heapless::Vec::from_slice(&[12, 14]).unwrap(),
    };
    assert!(r.covers(3, 1) && r.covers(3, 9) && r.covers(3, 12) && r.covers(3, 14));
    assert!(!r.covers(3, 10) && !r.covers(3, 13) && !r.covers(4, 1));
}
