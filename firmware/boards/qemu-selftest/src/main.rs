//! Self-test of Vigil's board logic on an emulated Cortex-M3 (QEMU `lm3s6965evb`).
//!
//! Replays recorded sensor traces (`vigil_firmware::traces`) through the real pendant and meter state
//! machines and the real MQTT client and spool, with the gateway's side emulated in
//! [`gateway`], on a virtual clock. Each check prints `ok` or `FAIL`; the program exits through
//! semihosting with status 0 only when every check passed.
#![no_std]
#![no_main]

mod gateway;
mod stack;

/// Traces embedded by `build.rs` from the shared data set (or the synthetic fallbacks).
mod recorded {
    include!(concat!(env!("OUT_DIR"), "/recorded.rs"));
}

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use vigil_firmware::fall::AccelMg;
use vigil_firmware::frame::FrameStamper;
use vigil_firmware::meter::{Meter, MeterConfig, ReportReason};
use vigil_firmware::mqtt::{MqttClient, MqttConfig, MqttEvent};
use vigil_firmware::pendant::{self, Pendant, PendantConfig, PendantMode};
use vigil_firmware::traces;
use vigil_protocol::{ButtonKind, DeviceId, DownlinkBody, HelpComing, UplinkBody, UplinkFrame};

use gateway::Gateway;

const PENDANT_BOOT: u32 = 12;
const METER_BOOT: u32 = 40;
const METER_INSTALLED_ML: u64 = 123_456_000;
/// Spool slot size shared by both scenarios, so the client code is in flash once. A board
/// sizes it from `pendant::MAX_FRAME_BYTES` or `meter::MAX_REPORT_BYTES`; this is larger than
/// the former and holds the self-test's quarter-hour meter reports (15 slots).
const SLOT_BYTES: usize = 192;
const _: () = assert!(SLOT_BYTES >= pendant::MAX_FRAME_BYTES);

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
            hprintln!("ok   {}", name);
        } else {
            self.failed += 1;
            hprintln!("FAIL {}", name);
        }
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    let mut checks = Checks {
        passed: 0,
        failed: 0,
    };
    hprintln!("vigil self-test on lm3s6965evb");
    hprintln!("fall trace:   {}", recorded::FALL_SOURCE);
    hprintln!("walk trace:   {}", recorded::WALK_SOURCE);
    hprintln!("water trace:  {}", recorded::SHOWER_SOURCE);
    // One client and one emulated gateway serve both scenarios in turn, to keep static RAM in
    // budget; each scenario starts them afresh.
    let pendant_id = DeviceId::new("pendant-qemu").unwrap_or_else(|_| fail("device id"));
    let meter_id = DeviceId::new("meter-qemu").unwrap_or_else(|_| fail("device id"));
    let gw = cortex_m::singleton!(: Gateway = Gateway::new(pendant_id.clone()))
        .unwrap_or_else(|| fail("gateway"));
    let client = cortex_m::singleton!(: MqttClient<8, SLOT_BYTES> =
        MqttClient::new(MqttConfig::default(), &pendant_id, PENDANT_BOOT, 0x1234_5678, 0))
    .unwrap_or_else(|| fail("client"));
    pendant_scenario(pendant_id, client, gw, &mut checks);
    *gw = Gateway::new(meter_id.clone());
    *client = MqttClient::new(MqttConfig::default(), &meter_id, METER_BOOT, 0x0BAD_F00D, 0);
    meter_scenario(meter_id, client, gw, &mut checks);
    let used = stack::high_water();
    hprintln!(
        "stack high-water: {} bytes of {} reserved",
        used,
        stack::reserved()
    );
    checks.check("stack stays within its reserve", used < stack::reserved());
    hprintln!("{} passed, {} failed", checks.passed, checks.failed);
    debug::exit(if checks.failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Runs the client and the emulated gateway until no more bytes move; returns the downlinks.
#[inline(never)]
fn pump<const N: usize, const B: usize>(
    client: &mut MqttClient<N, B>,
    gw: &mut Gateway,
    now: u64,
) -> heapless::Vec<DownlinkBody, 4> {
    let mut downlinks = heapless::Vec::new();
    client.handle_timeout(now);
    for _ in 0..8 {
        while let Some(event) = client.poll_event() {
            match event {
                MqttEvent::OpenTransport => {
                    gw.open();
                    client.handle_transport_open(now);
                }
                MqttEvent::CloseTransport => gw.close(),
                MqttEvent::Downlink(body) => {
                    let _ = downlinks.push(body);
                }
                MqttEvent::Connected | MqttEvent::Disconnected => {}
            }
        }
        if !gw.exchange(client, now) {
            break;
        }
    }
    downlinks
}

/// The level a button trace puts on the pin `t` ms after it started.
fn level(trace: &[(u64, bool)], t: u64) -> bool {
    trace
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .is_some_and(|(_, l)| *l)
}

#[inline(never)]
fn pendant_scenario(
    device: DeviceId,
    client: &mut MqttClient<8, SLOT_BYTES>,
    gw: &mut Gateway,
    checks: &mut Checks,
) {
    let pendant = cortex_m::singleton!(: Pendant = Pendant::new(
        PendantConfig::default(),
        FrameStamper::new(device.clone(), PENDANT_BOOT),
        0,
    ))
    .unwrap_or_else(|| fail("pendant"));

    const FALLS: [u64; 2] = [80_000, 190_000];
    const WALK_AT: u64 = 40_000;
    const PERIOD_MS: u64 = 1000 / traces::FALL_RATE_HZ;
    let fall_len = recorded::FALL.len() as u64 * PERIOD_MS;
    let walk_len = recorded::WALK.len() as u64 * PERIOD_MS;
    // After the recorded fall the wearer lies as the trace ended, for 20 s, then gets up.
    let lying = *recorded::FALL.last().unwrap_or(&traces::STANDING);
    let sample_at = |t: u64| -> AccelMg {
        if let Some(start) = FALLS
            .iter()
            .find(|s| t >= **s && t < **s + fall_len + 20_000)
        {
            return recorded::FALL
                .get(((t - start) / PERIOD_MS) as usize)
                .copied()
                .unwrap_or(lying);
        }
        if t >= WALK_AT && t < WALK_AT + walk_len {
            return recorded::WALK[((t - WALK_AT) / PERIOD_MS) as usize];
        }
        traces::STANDING
    };
    let short_press_at = 2_000;
    let mut long_press_at: Option<u64> = None;
    let mut help_led_on = false;
    let mut countdown_starts: heapless::Vec<u64, 4> = heapless::Vec::new();
    let mut countdown_beeps = 0u32;
    let mut submit_errors = 0u32;

    let mut t = 0u64;
    while t <= 260_000 {
        pendant.handle_timeout(t);
        let mut pressed = t >= short_press_at && level(&traces::SHORT_PRESS, t - short_press_at);
        if let Some(at) = long_press_at {
            pressed |= t >= at && level(&traces::LONG_PRESS, t - at);
        }
        pendant.handle_button(pressed, t);
        if t.is_multiple_of(PERIOD_MS) {
            pendant.handle_accel(sample_at(t), t);
        }
        while let Some(frame) = pendant.poll_frame() {
            if client.submit(&frame, t).is_err() {
                submit_errors += 1;
            }
        }
        for body in pump(client, gw, t) {
            if let DownlinkBody::HelpComing(h) = body {
                pendant.handle_help_coming(h, t);
            }
        }
        pendant.handle_link(client.is_up());
        // The gateway confirms what it holds and the centre answers calls and falls.
        while gw.seen < gw.received.len() {
            let f = &gw.received[gw.seen];
            let answer = match &f.body {
                UplinkBody::Button(b) => b.kind == ButtonKind::Press,
                UplinkBody::Fall(fall) => !fall.cancelled,
                _ => false,
            };
            let help = HelpComing {
                boot_id: f.boot_id,
                seq: f.seq,
                alert_id: 1_000 + u64::from(f.seq),
            };
            gw.seen += 1;
            gw.queue_receipt(PENDANT_BOOT);
            if answer {
                gw.queue_downlink(DownlinkBody::HelpComing(help));
            }
        }
        let mode = pendant.mode();
        if let PendantMode::FallCountdown { started, .. } = mode {
            if countdown_starts.last() != Some(&started) {
                let _ = countdown_starts.push(started);
                // The wearer hears the second countdown and cancels it five seconds in.
                if countdown_starts.len() == 2 {
                    long_press_at = Some(started + 5_000);
                }
            }
            if t.is_multiple_of(100) && pendant.indication(t).buzzer {
                countdown_beeps += 1;
            }
        }
        if t == 10_000 {
            help_led_on =
                matches!(mode, PendantMode::HelpComing { .. }) && pendant.indication(t).led;
        }
        t += 10;
    }

    let frames = &gw.received;
    checks.check(
        "pendant connects with an offline will on its state topic",
        gw.will
            .as_ref()
            .is_some_and(|w| !w.online && w.boot_id == PENDANT_BOOT && w.device_id == device)
            && gw.online == Some(true),
    );
    checks.check(
        "pendant frames are all accepted by the spool",
        submit_errors == 0,
    );
    checks.check(
        "a bouncing short press sends one call, seq 1, urgent",
        frames.first().is_some_and(|f| {
            f.seq == 1
                && f.is_urgent()
                && matches!(&f.body, UplinkBody::Button(b) if b.kind == ButtonKind::Press)
                && f.uptime_ms >= 2_260
                && f.uptime_ms < 2_400
        }),
    );
    checks.check("help is coming lights the LED", help_led_on);
    checks.check(
        "both recorded falls start a countdown",
        countdown_starts.len() == 2
            && countdown_starts[0] > FALLS[0]
            && countdown_starts[0] < FALLS[0] + fall_len + 20_000
            && countdown_starts[1] > FALLS[1],
    );
    if recorded::WALK.is_empty() {
        hprintln!("skip a recorded walk raises no fall: recorded data not found");
    } else {
        checks.check(
            "a recorded slow walk of a person over 60 raises no fall",
            countdown_starts.iter().all(|s| *s >= FALLS[0]),
        );
    }
    checks.check("the countdown beeps", countdown_beeps >= 3);
    let fall_report = frames.get(1);
    checks.check(
        "the uncancelled fall is reported when the 30 s window ends, with its features",
        fall_report.is_some_and(|f| match &f.body {
            UplinkBody::Fall(e) => {
                f.uptime_ms == countdown_starts.first().copied().unwrap_or(0) + 30_000
                    && !e.cancelled
                    && e.peak_mg > 2_500
                    && e.orientation_change_deg >= 45
            }
            _ => false,
        }),
    );
    checks.check(
        "a long press during the second countdown reports that fall as cancelled",
        frames.get(2).is_some_and(|f| {
            matches!(&f.body, UplinkBody::Fall(e) if e.cancelled)
                && long_press_at
                    .is_some_and(|at| f.uptime_ms >= at + 3_000 && f.uptime_ms < at + 3_200)
        }) && frames.len() == 3,
    );
    checks.check(
        "every pendant frame left the spool once the gateway held it",
        client.spool().is_empty() && gw.protocol_errors == 0 && gw.connects == 1,
    );
    checks.check(
        "the pendant is idle again at the end",
        pendant.mode() == PendantMode::Idle,
    );
}

#[inline(never)]
fn meter_scenario(
    device: DeviceId,
    client: &mut MqttClient<8, SLOT_BYTES>,
    gw: &mut Gateway,
    checks: &mut Checks,
) {
    let meter = cortex_m::singleton!(: Meter = Meter::new(
        MeterConfig::default(),
        FrameStamper::new(device.clone(), METER_BOOT),
        METER_INSTALLED_ML,
        0,
    ))
    .unwrap_or_else(|| fail("meter"));
    let mut sent: heapless::Vec<(ReportReason, UplinkFrame), 4> = heapless::Vec::new();
    meter.handle_battery(3_550);

    // Pulse times: the recorded shower, or the synthetic quarter hour without the data.
    let mut synthetic: heapless::Vec<u32, 64> = heapless::Vec::new();
    for (start_s, n, every_s) in traces::WATER_USE {
        for k in 0..u64::from(n) {
            let _ = synthetic.push(((start_s + k * every_s) * 1000) as u32);
        }
    }
    let pulse_times: &[u32] = if recorded::SHOWER_PULSES_MS.is_empty() {
        &synthetic
    } else {
        recorded::SHOWER_PULSES_MS
    };
    // What the first report must say, counted here independently of the meter's logic.
    let mut expected_slots = [0u32; 15];
    for p in pulse_times {
        if let Some(slot) = expected_slots.get_mut((*p / 60_000) as usize) {
            *slot += 1_000;
        }
    }
    let expected_ml: u32 = expected_slots.iter().sum();

    let tamper_at = 950_000;
    let mut submit_errors = 0u32;
    let mut next_pulse = 0;
    let mut t = 0u64;
    while t <= 1_000_000 {
        // Each pulse holds the reed contact closed for 40 ms.
        while pulse_times
            .get(next_pulse)
            .is_some_and(|p| u64::from(*p) + 40 <= t)
        {
            next_pulse += 1;
        }
        let pulse = pulse_times
            .get(next_pulse)
            .is_some_and(|p| t >= u64::from(*p));
        meter.handle_pulse_input(pulse, t);
        meter.handle_tamper_input(t >= tamper_at, t);
        meter.handle_timeout(t);
        while let Some((reason, frame)) = meter.poll_frame() {
            if client.submit(&frame, t).is_err() {
                submit_errors += 1;
            }
            let _ = sent.push((reason, frame));
        }
        pump(client, gw, t);
        if gw.seen < gw.received.len() {
            gw.seen = gw.received.len();
            gw.queue_receipt(METER_BOOT);
        }
        t += 10;
    }

    let reading = |f: &UplinkFrame| match &f.body {
        UplinkBody::Meter(m) => Some(m.clone()),
        _ => None,
    };
    let routine = gw.received.first().and_then(reading);
    checks.check(
        "the quarter-hour report carries 15 one-minute slots with the trace's litres",
        expected_ml > 0
            && routine.as_ref().is_some_and(|m| {
                m.slots_ml.as_slice() == expected_slots
                    && m.slot_s == 60
                    && m.total_ml == METER_INSTALLED_ML + u64::from(expected_ml)
                    && m.battery_mv == 3_550
                    && !m.tamper
                    && !m.leak
            })
            && gw
                .received
                .first()
                .is_some_and(|f| f.uptime_ms == 900_000 && !f.is_urgent()),
    );
    checks.check(
        "a magnet on the tamper input is reported at once and urgently",
        gw.received.get(1).is_some_and(|f| {
            f.is_urgent()
                && f.uptime_ms == tamper_at + 200
                && reading(f).is_some_and(|m| m.tamper && m.slots_ml.iter().sum::<u32>() == 0)
        }),
    );
    checks.check(
        "the gateway decoded exactly the frames the meter made",
        sent.len() == 2
            && gw.received.len() == 2
            && sent
                .iter()
                .zip(gw.received.iter())
                .all(|((_, a), b)| a == b)
            && sent[0].0 == ReportReason::Schedule
            && sent[1].0 == ReportReason::Tamper,
    );
    checks.check(
        "every meter frame was spooled and left the spool once the gateway held it",
        submit_errors == 0 && client.spool().is_empty() && gw.protocol_errors == 0,
    );
}

fn fail(what: &str) -> ! {
    hprintln!("FAIL setting up {}", what);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("FAIL panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
