//! The board's uplink against a real Mosquitto: frames arrive on the device's `up` topic in
//! urgent-first order, downlinks reach the board through its subscription, and the will
//! message fires when the link dies without a DISCONNECT.
//!
//! Needs a broker at `VIGIL_TEST_MQTT_URL` (default `mqtt://127.0.0.1:1883`); `scripts/test`
//! starts one when none is running. The board side runs the real sans-IO client over
//! `std::net::TcpStream` wrapped as an `embedded-io` stream; the observer is `rumqttc`.

// This test is the driver: it owns the sockets and the real clock the core never reads.
#![allow(clippy::disallowed_methods)]
use std::io::{ErrorKind as StdErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use vigil_firmware::link::service;
use vigil_firmware::mqtt::{MqttClient, MqttConfig, MqttEvent};
use vigil_protocol::{
    ButtonEvent, ButtonKind, DeviceId, DeviceState, DownlinkBody, DownlinkFrame, DurableReceipt,
    FirmwareVersion, Heartbeat, HelpComing, UplinkBody, UplinkFrame,
};

/// How long any one expected event may take before the test fails.
const GUARD: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct IoError(std::io::Error);

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for IoError {}
impl embedded_io::Error for IoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// `TcpStream` as an `embedded-io` stream; `read_ready` peeks without blocking.
struct Tcp(TcpStream);

impl embedded_io::ErrorType for Tcp {
    type Error = IoError;
}
impl embedded_io::Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.0.read(buf).map_err(IoError)
    }
}
impl embedded_io::Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.0.write(buf).map_err(IoError)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().map_err(IoError)
    }
}
impl embedded_io::ReadReady for Tcp {
    fn read_ready(&mut self) -> Result<bool, IoError> {
        self.0.set_nonblocking(true).map_err(IoError)?;
        let mut b = [0u8; 1];
        let r = self.0.peek(&mut b);
        self.0.set_nonblocking(false).map_err(IoError)?;
        match r {
            Ok(_) => Ok(true), // data, or 0 = closed, which `read` then reports
            Err(e) if e.kind() == StdErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(IoError(e)),
        }
    }
}

fn broker() -> (String, u16) {
    let url = std::env::var("VIGIL_TEST_MQTT_URL").unwrap_or("mqtt://127.0.0.1:1883".into());
    let rest = url
        .strip_prefix("mqtt://")
        .expect("VIGIL_TEST_MQTT_URL is mqtt://host:port");
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (
        host.to_string(),
        port.trim_end_matches('/').parse().expect("port"),
    )
}

fn unique_id(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("it-{tag}-{}-{nanos}", std::process::id())
}

/// The board: the real client plus the TCP transport it asks for.
struct Board {
    client: MqttClient<8>,
    stream: Option<Tcp>,
    addr: (String, u16),
    start: Instant,
    downlinks: Vec<DownlinkBody>,
}

impl Board {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// One pass of the board's main loop; waits at most 20 ms for input.
    fn step(&mut self) {
        let now = self.now();
        self.client.handle_timeout(now);
        while let Some(event) = self.client.poll_event() {
            match event {
                MqttEvent::OpenTransport => {
                    match TcpStream::connect((self.addr.0.as_str(), self.addr.1)) {
                        Ok(s) => {
                            s.set_nodelay(true).unwrap();
                            self.stream = Some(Tcp(s));
                            self.client.handle_transport_open(now);
                        }
                        Err(_) => self.client.handle_transport_closed(now),
                    }
                }
                MqttEvent::CloseTransport => self.stream = None,
                MqttEvent::Downlink(body) => self.downlinks.push(body),
                MqttEvent::Connected | MqttEvent::Disconnected => {}
            }
        }
        if let Some(s) = self.stream.as_mut() {
            if service(&mut self.client, s, now).is_err() {
                self.stream = None;
                return;
            }
            // Wait for input, bounded so timers still run.
            s.0.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let _ = s.0.peek(&mut [0u8; 1]);
        } else {
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Runs the board until `done` says so, failing after the guard time.
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + GUARD;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.step();
        }
    }
}

fn frame(device: &DeviceId, seq: u32, body: UplinkBody) -> UplinkFrame {
    UplinkFrame {
        device_id: device.clone(),
        boot_id: 9,
        seq,
        uptime_ms: u64::from(seq) * 100,
        wall_ms: None,
        body,
    }
}

fn heartbeat() -> UplinkBody {
    UplinkBody::Heartbeat(Heartbeat {
        battery_mv: 3_000,
        rssi_dbm: -60,
        firmware: FirmwareVersion::new("0.1.0").unwrap(),
    })
}

fn encode_down(device: &DeviceId, body: DownlinkBody) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = DownlinkFrame {
        device_id: device.clone(),
        body,
    }
    .encode(&mut buf)
    .unwrap();
    buf[..n].to_vec()
}

type Messages = mpsc::Receiver<(String, Vec<u8>)>;

/// A plain MQTT client subscribed to every topic of device `id`, ready when this returns.
fn observe(host: &str, port: u16, id: &str) -> (Client, Messages) {
    let mut opts = MqttOptions::new(unique_id("obs"), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (observer, mut connection) = Client::new(opts, 16);
    observer
        .subscribe(format!("vigil/v1/dev/{id}/+"), QoS::AtLeastOnce)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            let msg = match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => Some((String::new(), Vec::new())),
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    Some((p.topic.clone(), p.payload.to_vec()))
                }
                Ok(_) => None,
                Err(_) => break,
            };
            if let Some(m) = msg {
                if tx.send(m).is_err() {
                    break;
                }
            }
        }
    });
    let (t, _) = rx.recv_timeout(GUARD).expect("observer subscribed");
    assert!(t.is_empty(), "first event is the SUBACK");
    (observer, rx)
}

fn new_board(device: &DeviceId, host: String, port: u16) -> Board {
    Board {
        client: MqttClient::new(MqttConfig::default(), device, 9, 0x5EED_1234, 0),
        stream: None,
        addr: (host, port),
        start: Instant::now(),
        downlinks: Vec::new(),
    }
}

/// Runs the board until a frame with `seq` arrives on the `up` topic.
fn await_seq(board: &mut Board, rx: &Messages, up: &str, seq: u32) {
    let mut seen = false;
    board.run_until("the frame on the up topic", |_| {
        while let Ok((topic, payload)) = rx.try_recv() {
            if topic == up && UplinkFrame::decode(&payload).map(|f| f.seq) == Ok(seq) {
                seen = true;
            }
        }
        seen
    });
}

#[test]
fn after_a_dropped_link_the_board_reconnects_sends_what_it_made_and_gets_what_it_missed() {
    let (host, port) = broker();
    let id = unique_id("re");
    let device = DeviceId::new(&id).unwrap();
    let up = format!("vigil/v1/dev/{id}/up");
    let (observer, rx) = observe(&host, port, &id);
    let mut board = new_board(&device, host, port);
    board
        .client
        .submit(&frame(&device, 1, heartbeat()), 0)
        .unwrap();
    await_seq(&mut board, &rx, &up, 1);

    // The modem drops the connection; the driver notices and tells the client.
    let stream = board.stream.take().expect("connected");
    stream.0.shutdown(Shutdown::Both).unwrap();
    let now = board.now();
    board.client.handle_transport_closed(now);
    assert!(!board.client.is_up());
    let call = UplinkBody::Button(ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    });
    board.client.submit(&frame(&device, 2, call), now).unwrap();

    // Once the broker has seen the board go (its will), the centre answers an earlier call.
    let state = format!("vigil/v1/dev/{id}/state");
    let deadline = Instant::now() + GUARD;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (topic, payload) = rx.recv_timeout(left).expect("the will message");
        if topic == state && !DeviceState::decode(&payload).unwrap().online {
            break;
        }
    }
    let help = HelpComing {
        boot_id: 9,
        seq: 1,
        alert_id: 5,
    };
    let down = format!("vigil/v1/dev/{id}/down");
    observer
        .publish(
            down,
            QoS::AtLeastOnce,
            false,
            encode_down(&device, DownlinkBody::HelpComing(help)),
        )
        .unwrap();

    // After the backoff (at most 1 s for a first failure) the board reconnects by itself and
    // publishes the call, and frame 1 again since no durable receipt covered it; the broker
    // kept the session and delivers the answer sent while the board was away.
    await_seq(&mut board, &rx, &up, 2);
    assert_eq!(board.client.counters().connects, 2);
    assert_eq!(board.client.spool().len(), 2);
    board.run_until("the downlink queued while offline", |b| {
        b.downlinks.contains(&DownlinkBody::HelpComing(help))
    });
    observer
        .publish(state, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .unwrap();
}

#[test]
fn frames_arrive_at_the_broker_downlinks_reach_the_board_and_the_will_fires_when_the_link_dies() {
    let (host, port) = broker();
    let id = unique_id("up");
    let device = DeviceId::new(&id).unwrap();
    let up = format!("vigil/v1/dev/{id}/up");
    let state = format!("vigil/v1/dev/{id}/state");
    let down = format!("vigil/v1/dev/{id}/down");

    let (observer, rx) = observe(&host, port, &id);

    let mut board = new_board(&device, host, port);
    // Two routine frames are spooled before the link is up, then a call.
    board
        .client
        .submit(&frame(&device, 1, heartbeat()), 0)
        .unwrap();
    board
        .client
        .submit(&frame(&device, 2, heartbeat()), 0)
        .unwrap();
    let call = UplinkBody::Button(ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    });
    board.client.submit(&frame(&device, 3, call), 0).unwrap();

    let mut seqs = Vec::new();
    let mut online = None;
    board.run_until("three frames on the up topic", |_| {
        while let Ok((topic, payload)) = rx.try_recv() {
            if topic == up {
                let f = UplinkFrame::decode(&payload).expect("a valid uplink frame");
                assert_eq!(f.device_id, device);
                seqs.push(f.seq);
            } else if topic == state {
                online = Some(DeviceState::decode(&payload).unwrap().online);
            }
        }
        seqs.len() >= 3
    });
    assert_eq!(seqs, [3, 1, 2], "the call overtakes the routine frames");
    assert_eq!(online, Some(true), "the board announced itself online");
    assert_eq!(
        board.client.spool().len(),
        3,
        "kept until the durable receipt"
    );

    // The gateway's durable receipt and a "help is coming" reach the board.
    let receipt = DownlinkBody::Receipt(DurableReceipt {
        boot_id: 9,
        held_through: 3,
        also_held: heapless::Vec::new(),
    });
    observer
        .publish(
            down.clone(),
            QoS::AtLeastOnce,
            false,
            encode_down(&device, receipt),
        )
        .unwrap();
    let help = HelpComing {
        boot_id: 9,
        seq: 3,
        alert_id: 77,
    };
    observer
        .publish(
            down,
            QoS::AtLeastOnce,
            false,
            encode_down(&device, DownlinkBody::HelpComing(help)),
        )
        .unwrap();
    board.run_until("the downlinks", |b| b.downlinks.len() >= 2);
    assert!(board.client.spool().is_empty());
    assert!(board.downlinks.contains(&DownlinkBody::HelpComing(help)));

    // The link dies without a DISCONNECT: the broker publishes the will.
    let stream = board.stream.take().expect("connected");
    stream.0.shutdown(Shutdown::Both).unwrap();
    drop(stream);
    let deadline = Instant::now() + GUARD;
    let will = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (topic, payload) = rx.recv_timeout(left).expect("the will message");
        if topic == state {
            let s = DeviceState::decode(&payload).unwrap();
            if !s.online {
                break s;
            }
        }
    };
    assert_eq!(
        will,
        DeviceState {
            device_id: device,
            online: false,
            boot_id: 9
        }
    );
    // Leave no retained state behind on the shared broker.
    observer
        .publish(state, QoS::AtLeastOnce, true, Vec::<u8>::new())
        .unwrap();
    let _ = rx.recv_timeout(Duration::from_secs(2));
}
