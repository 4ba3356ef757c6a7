//! Firmware in the loop over a real broker: simulated boards run `vigil-firmware` and
//! publish through its own MQTT client and link driver, on their own TCP sockets, to
//! Mosquitto; an observer sees the frames the firmware made from the simulated hardware.
//!
//! Needs a broker at `VIGIL_TEST_MQTT_URL` (default `mqtt://127.0.0.1:1883`).

// The test is a driver: it reads the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use vigil_protocol::{ButtonKind, SignalClass, UplinkBody, UplinkFrame};
use vigil_sim::board::boards_for;
use vigil_sim::board::rack::{spawn_rack, RackCommand, RackSlot};
use vigil_sim::clock::RunClock;
use vigil_sim::scenario::{Scenario, WallTime};
use vigil_sim::timeline::{Cadence, Timeline};

const GUARD: Duration = Duration::from_secs(30);

fn broker() -> SocketAddr {
    let url = std::env::var("VIGIL_TEST_MQTT_URL").unwrap_or("mqtt://127.0.0.1:1883".into());
    let rest = url.strip_prefix("mqtt://").expect("mqtt://host:port");
    rest.trim_end_matches('/')
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

fn tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{}", std::process::id() % 10_000, nanos % 100_000)
}

#[test]
fn a_call_and_a_smoke_alarm_made_by_the_firmware_reach_the_broker_on_the_boards_own_links() {
    let t = tag();
    let (pendant, smoke) = (format!("pd-{t}"), format!("sm-{t}"));
    let text = format!(
        r#"
name = "boards-on-a-broker"
duration = "2m"
[[site]]
id = "h-{t}"
kind = "household"
gateway = "g-{t}"
[[site]]
id = "c-{t}"
kind = "facility"
gateway = "gc-{t}"
[[site.floor]]
level = 1
[[site.floor.zone]]
id = "f1"
rooms = ["101"]
[[resident]]
id = "r-{t}"
site = "h-{t}"
[[device]]
id = "{pendant}"
site = "h-{t}"
kind = "pendant"
resident = "r-{t}"
[[device]]
id = "{smoke}"
site = "c-{t}"
kind = "fire"
sensor = "smoke"
room = "101"
[[incident]]
kind = "call"
at = "4s"
resident = "r-{t}"
[[incident]]
kind = "smoke"
at = "4s"
site = "c-{t}"
room = "101"
[[expect]]
alert = "call"
subject = "resident:r-{t}"
within = "10s"
"#
    );
    let scenario = Arc::new(Scenario::parse(&text, "boards.toml").unwrap());

    let addr = broker();
    let mut opts = MqttOptions::new(format!("obs-{t}"), addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 64);
    for d in [&pendant, &smoke] {
        client
            .subscribe(format!("vigil/v1/dev/{d}/up"), QoS::AtLeastOnce)
            .unwrap();
    }
    // Wait for both subscriptions before the boards start.
    let mut subacks = 0;
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = event {
            subacks += 1;
            if subacks == 2 {
                break;
            }
        }
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let start = WallTime {
        unix_s: now.as_secs() as i64,
        utc_offset_min: 0,
    };
    let timeline = Timeline::build(&scenario, start, Cadence::default());
    let slots = boards_for(&scenario, &timeline, |_| None)
        .into_iter()
        .map(|board| RackSlot {
            board,
            broker: addr,
        })
        .collect();
    let clock = RunClock {
        time_offset: Duration::ZERO,
        acceleration: 1.0,
    };
    let rack = spawn_rack(slots, clock, Instant::now(), scenario.duration).unwrap();

    let deadline = Instant::now() + GUARD;
    let (mut call, mut alarm) = (None, None);
    while call.is_none() || alarm.is_none() {
        assert!(Instant::now() < deadline, "call {call:?}, alarm {alarm:?}");
        let Ok(event) = connection.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            let frame = UplinkFrame::decode(&p.payload).expect("the firmware's frames decode");
            match &frame.body {
                UplinkBody::Button(b) if b.kind == ButtonKind::Press => call = Some(frame),
                UplinkBody::Fire(r) if r.signal == SignalClass::Alarm => alarm = Some(frame),
                _ => {}
            }
        }
    }
    let call = call.unwrap();
    assert_eq!(call.device_id.as_str(), pendant);
    assert_eq!(
        (call.boot_id, call.seq),
        (1, 1),
        "the first frame of the first boot"
    );
    assert!(
        (4_000..5_000).contains(&call.uptime_ms),
        "made when the button was released: {}",
        call.uptime_ms
    );
    let alarm = alarm.unwrap();
    assert_eq!(alarm.device_id.as_str(), smoke);
    assert!(
        (4_000..7_000).contains(&alarm.uptime_ms),
        "{}",
        alarm.uptime_ms
    );

    // Cutting the power: the board is off, its RAM spool gone.
    let status = rack.status();
    assert!(
        status
            .boards
            .iter()
            .all(|b| b.connected && b.counters.boots == 1),
        "{status:?}"
    );
    rack.send(RackCommand::PowerOff(call.device_id.clone()));
    let deadline = Instant::now() + GUARD;
    while rack
        .status()
        .boards
        .iter()
        .any(|b| b.device == call.device_id && b.powered)
    {
        assert!(Instant::now() < deadline, "the board never lost power");
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = rack.stop();
    let p = last
        .boards
        .iter()
        .find(|b| b.device.as_str() == pendant)
        .unwrap();
    assert!(!p.powered && p.counters.frames_made >= 1, "{p:?}");
}
