extern crate std;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

use mqttrs::{
    decode_slice, encode_slice, Connack, ConnectReturnCode, Packet, Pid, Publish, QoS, QosPid,
    Suback, SubscribeReturnCodes,
};
use vigil_protocol::{
    ButtonEvent, ButtonKind, DeviceId, DeviceState, DurableReceipt, FirmwareVersion, Heartbeat,
    HelpComing, UplinkBody,
};

use super::wire::packet_length;
use super::*;

/// What the broker side sees of the client's packets.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Connect {
        keep_alive: u16,
        clean_session: bool,
        will_topic: StdString,
        will: DeviceState,
    },
    Publish {
        topic: StdString,
        pid: Option<u16>,
        dup: bool,
        payload: StdVec<u8>,
    },
    Subscribe {
        pid: u16,
        topic: StdString,
    },
    Puback(u16),
    Pingreq,
}

fn drain(c: &mut MqttClient<8>, now: Millis) -> StdVec<Seen> {
    let bytes = c.transmit_buffer().to_vec();
    c.mark_transmitted(bytes.len(), now);
    let mut out = StdVec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (h, r) = packet_length(rest).unwrap().unwrap();
        let raw = &rest[..h + r];
        out.push(match decode_slice(raw).unwrap().unwrap() {
            Packet::Connect(c) => {
                let w = c.last_will.unwrap();
                Seen::Connect {
                    keep_alive: c.keep_alive,
                    clean_session: c.clean_session,
                    will_topic: w.topic.to_string(),
                    will: DeviceState::decode(w.message).unwrap(),
                }
            }
            Packet::Publish(p) => Seen::Publish {
                topic: p.topic_name.to_string(),
                pid: p.qospid.pid().map(|p| p.get()),
                dup: p.dup,
                payload: p.payload.to_vec(),
            },
            Packet::Subscribe(s) => Seen::Subscribe {
                pid: s.pid.get(),
                topic: s.topics[0].topic_path.as_str().to_string(),
            },
            Packet::Puback(p) => Seen::Puback(p.get()),
            Packet::Pingreq => Seen::Pingreq,
            other => panic!("client sent {other:?}"),
        });
        rest = &rest[h + r..];
    }
    // Whatever mark_transmitted refilled goes out on the next drain.
    out
}

fn to_client(c: &mut MqttClient<8>, packet: &Packet<'_>, now: Millis) {
    let mut buf = [0u8; 1024];
    let n = encode_slice(packet, &mut buf).unwrap();
    c.handle_bytes(&buf[..n], now);
}

fn events(c: &mut MqttClient<8>) -> StdVec<MqttEvent> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

fn device() -> DeviceId {
    DeviceId::new("p-1").unwrap()
}

fn client() -> MqttClient<8> {
    MqttClient::new(MqttConfig::default(), &device(), 4, 0xDEAD_BEEF, 0)
}

fn frame(seq: u32, urgent: bool) -> UplinkFrame {
    let body = if urgent {
        UplinkBody::Button(ButtonEvent {
            kind: ButtonKind::Press,
            cancels_seq: None,
        })
    } else {
        UplinkBody::Heartbeat(Heartbeat {
            battery_mv: 2900,
            rssi_dbm: -70,
            firmware: FirmwareVersion::new("0.1.0").unwrap(),
        })
    };
    UplinkFrame {
        device_id: device(),
        boot_id: 4,
        seq,
        uptime_ms: 1,
        wall_ms: None,
        body,
    }
}

fn downlink(body: DownlinkBody) -> StdVec<u8> {
    let mut buf = [0u8; 512];
    let n = DownlinkFrame {
        device_id: device(),
        body,
    }
    .encode(&mut buf)
    .unwrap();
    buf[..n].to_vec()
}

fn publish_down(c: &mut MqttClient<8>, pid: u16, payload: &[u8], now: Millis) {
    to_client(
        c,
        &Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(Pid::try_from(pid).unwrap()),
            retain: false,
            topic_name: "vigil/v1/dev/p-1/down",
            payload,
        }),
        now,
    );
}

/// Brings a client up to a subscribed session at `now`; returns the SUBSCRIBE's packet id.
fn connect(c: &mut MqttClient<8>, now: Millis) -> u16 {
    c.handle_timeout(now);
    assert_eq!(c.poll_event(), Some(MqttEvent::OpenTransport));
    c.handle_transport_open(now);
    drain(c, now);
    to_client(
        c,
        &Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }),
        now,
    );
    let sent = drain(c, now);
    let pid = sent
        .iter()
        .find_map(|s| match s {
            Seen::Subscribe { pid, .. } => Some(*pid),
            _ => None,
        })
        .expect("subscribe after connack");
    let codes = [SubscribeReturnCodes::Success(QoS::AtLeastOnce)]
        .into_iter()
        .collect();
    to_client(
        c,
        &Packet::Suback(Suback {
            pid: Pid::try_from(pid).unwrap(),
            return_codes: codes,
        }),
        now,
    );
    assert!(events(c).contains(&MqttEvent::Connected));
    pid
}

fn published_seqs(sent: &[Seen]) -> StdVec<(u32, u16, bool)> {
    sent.iter()
        .filter_map(|s| match s {
            Seen::Publish {
                topic,
                pid: Some(pid),
                dup,
                payload,
            } if topic.ends_with("/up") => {
                Some((UplinkFrame::decode(payload).unwrap().seq, *pid, *dup))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn connect_asks_for_a_kept_session_and_carries_a_retained_offline_will() {
    let mut c = client();
    assert_eq!(c.next_deadline(), Some(0));
    c.handle_timeout(0);
    assert_eq!(c.poll_event(), Some(MqttEvent::OpenTransport));
    c.handle_transport_open(0);
    let sent = drain(&mut c, 0);
    assert_eq!(
        sent,
        [Seen::Connect {
            keep_alive: 60,
            clean_session: false,
            will_topic: "vigil/v1/dev/p-1/state".into(),
            will: DeviceState {
                device_id: device(),
                online: false,
                boot_id: 4
            },
        }]
    );
}

#[test]
fn after_connack_the_board_says_online_and_subscribes_to_its_down_topic() {
    let mut c = client();
    c.handle_timeout(0);
    c.poll_event();
    c.handle_transport_open(0);
    drain(&mut c, 0);
    to_client(
        &mut c,
        &Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }),
        5,
    );
    let sent = drain(&mut c, 5);
    assert!(
        matches!(&sent[0], Seen::Publish { topic, pid: None, payload, .. }
        if topic == "vigil/v1/dev/p-1/state" && DeviceState::decode(payload).unwrap().online)
    );
    assert!(matches!(&sent[1], Seen::Subscribe { topic, .. } if topic == "vigil/v1/dev/p-1/down"));
}

#[test]
fn frames_wait_for_the_subscription_then_go_urgent_first_at_qos_1() {
    let mut c = client();
    c.submit(&frame(1, false), 0).unwrap();
    c.submit(&frame(2, false), 0).unwrap();
    c.submit(&frame(3, true), 0).unwrap();
    connect(&mut c, 10);
    let sent = drain(&mut c, 10);
    let seqs: StdVec<u32> = published_seqs(&sent).iter().map(|p| p.0).collect();
    assert_eq!(seqs, [3, 1, 2]);
}

#[test]
fn a_frame_leaves_the_spool_only_when_the_durable_receipt_covers_it() {
    let mut c = client();
    connect(&mut c, 0);
    c.submit(&frame(1, false), 0).unwrap();
    let (seq, pid, _) = published_seqs(&drain(&mut c, 0))[0];
    assert_eq!(seq, 1);
    to_client(&mut c, &Packet::Puback(Pid::try_from(pid).unwrap()), 20);
    assert_eq!(
        c.spool().len(),
        1,
        "a PUBACK alone does not release the frame"
    );
    let receipt = downlink(DownlinkBody::Receipt(DurableReceipt {
        boot_id: 4,
        held_through: 1,
        also_held: heapless::Vec::new(),
    }));
    publish_down(&mut c, 9, &receipt, 30);
    assert!(c.spool().is_empty());
    assert_eq!(drain(&mut c, 30), [Seen::Puback(9)]);
}

#[test]
fn an_unacknowledged_publish_is_retried_with_dup_and_then_the_link_is_declared_dead() {
    let mut c = client();
    connect(&mut c, 0);
    c.submit(&frame(1, true), 0).unwrap();
    let first = published_seqs(&drain(&mut c, 0));
    assert_eq!(first, [(1, first[0].1, false)]);
    assert_eq!(c.next_deadline(), Some(5_000));
    for attempt in 1..=3u64 {
        c.handle_timeout(5_000 * attempt);
        let again = published_seqs(&drain(&mut c, 5_000 * attempt));
        assert_eq!(again, [(1, first[0].1, true)], "retry {attempt}");
    }
    c.handle_timeout(20_000);
    assert_eq!(
        events(&mut c),
        [MqttEvent::Disconnected, MqttEvent::CloseTransport]
    );
    assert!(matches!(c.state(), SessionState::Down { .. }));
    assert_eq!(c.spool().len(), 1, "the frame stays spooled");
}

#[test]
fn bytes_still_waiting_for_a_slow_link_are_not_retried_or_counted_as_unanswered() {
    let mut c = client();
    connect(&mut c, 0);
    c.submit(&frame(1, true), 0).unwrap();
    // The driver cannot write anything for 30 s (a congested modem).
    for t in (5_000..=30_000).step_by(5_000) {
        c.handle_timeout(t);
    }
    assert!(c.is_up());
    assert_eq!(c.counters().publish_retries, 0);
    let sent = published_seqs(&drain(&mut c, 30_000));
    assert_eq!(sent.len(), 1, "one PUBLISH, not a pile of duplicates");
}

#[test]
fn a_frame_is_published_again_after_a_reconnect() {
    let mut c = client();
    connect(&mut c, 0);
    c.submit(&frame(1, false), 0).unwrap();
    let (_, pid, _) = published_seqs(&drain(&mut c, 0))[0];
    to_client(&mut c, &Packet::Puback(Pid::try_from(pid).unwrap()), 10);
    c.handle_transport_closed(100);
    let SessionState::Down { reconnect_at } = c.state() else {
        panic!("not down");
    };
    events(&mut c);
    connect(&mut c, reconnect_at);
    let again = published_seqs(&drain(&mut c, reconnect_at));
    assert_eq!(again.iter().map(|p| p.0).collect::<StdVec<_>>(), [1]);
}

#[test]
fn a_published_frame_without_a_receipt_is_published_again_after_the_receipt_timeout() {
    let mut c = client();
    connect(&mut c, 0);
    c.submit(&frame(1, false), 0).unwrap();
    let (_, pid, _) = published_seqs(&drain(&mut c, 0))[0];
    to_client(&mut c, &Packet::Puback(Pid::try_from(pid).unwrap()), 10);
    // The keepalive ping is answered so only the receipt timer matters.
    c.handle_timeout(60_000);
    let sent = drain(&mut c, 60_000);
    assert!(sent.contains(&Seen::Pingreq));
    to_client(&mut c, &Packet::Pingresp, 60_001);
    c.handle_timeout(60_010);
    let again = published_seqs(&drain(&mut c, 60_010));
    assert_eq!(again.iter().map(|p| p.0).collect::<StdVec<_>>(), [1]);
}

#[test]
fn reconnect_backoff_doubles_with_jitter_up_to_the_cap() {
    let mut c = client();
    let mut now = 0;
    let mut delays = StdVec::new();
    for _ in 0..12 {
        c.handle_timeout(now);
        assert_eq!(c.poll_event(), Some(MqttEvent::OpenTransport));
        c.handle_transport_closed(now);
        let SessionState::Down { reconnect_at } = c.state() else {
            panic!("not down");
        };
        delays.push(reconnect_at - now);
        now = reconnect_at;
    }
    for (i, d) in delays.iter().enumerate() {
        let cap = (1_000u64 << i).min(300_000);
        assert!(
            *d >= cap / 2 && *d <= cap,
            "attempt {i}: {d} ms not in [{}, {cap}]",
            cap / 2
        );
    }
    assert!(delays[11] >= 150_000);
    let mut other = MqttClient::<8>::new(MqttConfig::default(), &device(), 4, 12345, 0);
    let mut other_delays = StdVec::new();
    let mut now = 0;
    for _ in 0..12 {
        other.handle_timeout(now);
        other.handle_transport_closed(now);
        let SessionState::Down { reconnect_at } = other.state() else {
            panic!("not down");
        };
        other_delays.push(reconnect_at - now);
        now = reconnect_at;
    }
    assert_ne!(delays, other_delays, "different seeds spread reconnections");
}

#[test]
fn a_successful_connection_resets_the_backoff() {
    let mut c = client();
    for _ in 0..5 {
        let now = match c.state() {
            SessionState::Down { reconnect_at } => reconnect_at,
            _ => unreachable!(),
        };
        c.handle_timeout(now);
        c.poll_event();
        c.handle_transport_closed(now);
    }
    let SessionState::Down { reconnect_at } = c.state() else {
        panic!()
    };
    connect(&mut c, reconnect_at);
    c.handle_transport_closed(reconnect_at + 1);
    let SessionState::Down { reconnect_at: next } = c.state() else {
        panic!()
    };
    assert!(next - (reconnect_at + 1) <= 1_000);
}

#[test]
fn a_silent_broker_is_detected_by_the_keepalive_ping() {
    let mut c = client();
    connect(&mut c, 0);
    assert_eq!(c.next_deadline(), Some(60_000));
    c.handle_timeout(60_000);
    assert_eq!(drain(&mut c, 60_000), [Seen::Pingreq]);
    assert_eq!(c.next_deadline(), Some(70_000));
    c.handle_timeout(70_000);
    assert!(events(&mut c).contains(&MqttEvent::CloseTransport));
}

#[test]
fn a_missing_connack_times_out() {
    let mut c = client();
    c.handle_timeout(0);
    c.poll_event();
    c.handle_transport_open(0);
    c.handle_timeout(9_999);
    assert!(events(&mut c).is_empty());
    c.handle_timeout(10_000);
    assert_eq!(events(&mut c), [MqttEvent::CloseTransport]);
}

#[test]
fn a_refused_connection_backs_off_and_is_counted() {
    let mut c = client();
    c.handle_timeout(0);
    c.poll_event();
    c.handle_transport_open(0);
    to_client(
        &mut c,
        &Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized,
        }),
        1,
    );
    assert_eq!(c.counters().connect_refusals, 1);
    assert_eq!(events(&mut c), [MqttEvent::CloseTransport]);
}

#[test]
fn help_coming_arrives_as_an_event_and_is_acknowledged() {
    let mut c = client();
    connect(&mut c, 0);
    let help = HelpComing {
        boot_id: 4,
        seq: 3,
        alert_id: 99,
    };
    publish_down(&mut c, 7, &downlink(DownlinkBody::HelpComing(help)), 10);
    assert_eq!(
        events(&mut c),
        [MqttEvent::Downlink(DownlinkBody::HelpComing(help))]
    );
    assert_eq!(drain(&mut c, 10), [Seen::Puback(7)]);
}

#[test]
fn a_garbled_downlink_is_counted_acknowledged_and_ignored() {
    let mut c = client();
    connect(&mut c, 0);
    publish_down(&mut c, 7, &[0xff, 0x00, 0x13], 10);
    assert_eq!(c.counters().bad_downlinks, 1);
    assert!(events(&mut c).is_empty());
    assert!(c.is_up());
    assert_eq!(drain(&mut c, 10), [Seen::Puback(7)]);
}

#[test]
fn a_downlink_for_another_device_is_ignored() {
    let mut c = client();
    connect(&mut c, 0);
    let mut buf = [0u8; 256];
    let n = DownlinkFrame {
        device_id: DeviceId::new("p-2").unwrap(),
        body: DownlinkBody::Receipt(DurableReceipt {
            boot_id: 4,
            held_through: 100,
            also_held: heapless::Vec::new(),
        }),
    }
    .encode(&mut buf)
    .unwrap();
    c.submit(&frame(1, false), 0).unwrap();
    publish_down(&mut c, 7, &buf[..n], 10);
    assert_eq!(c.counters().foreign_downlinks, 1);
    assert_eq!(c.spool().len(), 1);
}

#[test]
fn malformed_packets_fail_the_link_without_panicking() {
    let inputs: [&[u8]; 6] = [
        &[0x40, 0x00],                   // PUBACK without a packet id
        &[0x90, 0x02, 0x00, 0x01],       // SUBACK without return codes
        &[0x32, 0x03, 0x00, 0x05, b'a'], // PUBLISH whose topic overruns the packet
        &[0x10, 0x00],                   // CONNECT sent to a client
        &[0xF0, 0xFF, 0xFF, 0xFF, 0xFF], // five length bytes
        &[0x30, 0xFF, 0x7F],             // longer than any packet a board accepts
    ];
    for input in inputs {
        let mut c = client();
        connect(&mut c, 0);
        c.handle_bytes(input, 1);
        assert!(!c.is_up(), "accepted {input:02x?}");
        assert!(events(&mut c).contains(&MqttEvent::CloseTransport));
    }
}

#[test]
fn bytes_split_at_any_point_make_the_same_packets() {
    let mut c = client();
    connect(&mut c, 0);
    let help = downlink(DownlinkBody::HelpComing(HelpComing {
        boot_id: 4,
        seq: 1,
        alert_id: 5,
    }));
    let mut buf = [0u8; 600];
    let n = encode_slice(
        &Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(Pid::try_from(3).unwrap()),
            retain: false,
            topic_name: "vigil/v1/dev/p-1/down",
            payload: &help,
        }),
        &mut buf,
    )
    .unwrap();
    for b in &buf[..n] {
        c.handle_bytes(core::slice::from_ref(b), 5);
    }
    assert_eq!(events(&mut c).len(), 1);
}

mod robustness {
    //! Whatever a broker (or a corrupted link) sends, the client never panics: it either
    //! handles the packet or ends the session and counts it.
    use std::vec;

    use proptest::prelude::*;

    use super::*;

    /// A fixed header of a packet type a client may receive, a plausible remaining length,
    /// then arbitrary bytes.
    fn packet_like() -> impl Strategy<Value = StdVec<u8>> {
        (
            prop::sample::select(vec![
                0x20u8, 0x30, 0x31, 0x32, 0x3A, 0x34, 0x40, 0x90, 0xB0, 0xD0,
            ]),
            prop::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(header, body)| {
                let mut p = vec![header, body.len() as u8];
                p.extend(body);
                p
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_client(
            bytes in prop::collection::vec(any::<u8>(), 0..700),
            split in 1usize..64,
        ) {
            let mut c = client();
            connect(&mut c, 0);
            for chunk in bytes.chunks(split) {
                c.handle_bytes(chunk, 1);
            }
            c.handle_timeout(2);
        }

        #[test]
        fn packet_shaped_garbage_never_panics_the_client(
            packets in prop::collection::vec(packet_like(), 1..6),
        ) {
            let mut c = client();
            connect(&mut c, 0);
            for p in packets {
                c.handle_bytes(&p, 1);
                let _ = drain(&mut c, 1).len();
            }
        }
    }
}

#[test]
fn with_a_login_secret_connect_carries_the_device_id_as_user_and_the_secret() {
    let mut c = client();
    assert_eq!(
        c.set_login_secret(&[b's'; MAX_LOGIN_SECRET + 1]),
        Err(SecretTooLong(MAX_LOGIN_SECRET + 1))
    );
    c.set_login_secret(b"board secret").unwrap();
    c.handle_timeout(0);
    assert_eq!(c.poll_event(), Some(MqttEvent::OpenTransport));
    c.handle_transport_open(0);
    let raw = c.transmit_buffer().to_vec();
    match decode_slice(&raw) {
        Ok(Some(Packet::Connect(connect))) => {
            assert_eq!(connect.client_id, "p-1");
            assert_eq!(connect.username, Some("p-1"));
            assert_eq!(connect.password, Some(&b"board secret"[..]));
        }
        other => panic!("expected CONNECT, found {other:?}"),
    }
}

#[test]
fn without_a_login_secret_connect_carries_no_credentials() {
    let mut c = client();
    c.handle_timeout(0);
    c.poll_event();
    c.handle_transport_open(0);
    let raw = c.transmit_buffer().to_vec();
    match decode_slice(&raw) {
        Ok(Some(Packet::Connect(connect))) => {
            assert_eq!((connect.username, connect.password), (None, None));
        }
        other => panic!("expected CONNECT, found {other:?}"),
    }
}
