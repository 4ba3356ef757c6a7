//! Cost of the non-water detectors and the alert book at district scale: time per input and
//! memory per monitored subject with 100 000 subjects.
//!
//! `cargo run --release -p vigil-server --example alerts_bench [subjects]`
// A benchmark measures wall time: it is a driver, not a core.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use vigil_protocol::{ButtonEvent, ButtonKind, FirmwareVersion, Heartbeat};
use vigil_server::alerts::audit::Actor;
use vigil_server::alerts::book::AlertBook;
use vigil_server::alerts::lifecycle::{AlertPolicy, OperatorAction};
use vigil_server::alerts::Timestamp;
use vigil_server::detection::action::{FrameContext, FrameRef};
use vigil_server::detection::call::{CallConfig, CallDetector};
use vigil_server::detection::health::{BoardKind, HealthConfig, HealthDetector};
use vigil_server::ids::{DeviceId, GatewayId, ResidentId, SiteId};

/// Resident set size of this process, in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn ctx(i: usize, seq: u32, at: Timestamp) -> FrameContext {
    FrameContext {
        site: SiteId::new(&format!("home-{i}")).unwrap(),
        resident: Some(ResidentId::new(&format!("res-{i}")).unwrap()),
        frame: FrameRef {
            device: DeviceId::new(&format!("pendant-{i}")).unwrap(),
            boot_id: 1,
            seq,
        },
        occurred_at: at,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let t0 = Timestamp::from_unix_s(1_700_000_000);
    let contexts: Vec<FrameContext> = (0..n).map(|i| ctx(i, 1, t0)).collect();

    // Call detectors, one per resident, each fed one press.
    let before = rss_bytes();
    let mut calls: Vec<CallDetector> = (0..n)
        .map(|_| CallDetector::new(CallConfig::default()))
        .collect();
    let press = ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    };
    let start = Instant::now();
    for (d, c) in calls.iter_mut().zip(&contexts) {
        d.handle_button(c, &press, t0);
        while let Some(a) = d.poll_action() {
            black_box(a);
        }
    }
    let per_press = start.elapsed().as_nanos() as f64 / n as f64;
    let after = rss_bytes();
    let json: usize = calls
        .iter()
        .map(|d| serde_json::to_string(d.state()).unwrap().len())
        .sum();
    println!(
        "call detector: {per_press:.0} ns per press; {} B stored state per resident (JSON)",
        json / n
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "call detector: {} B resident memory per resident after one incident ({} residents)",
            a.saturating_sub(b) / n as u64,
            n
        );
    }

    // Health detectors, one per household with a gateway, a meter and a pendant.
    let before = rss_bytes();
    let mut health: Vec<HealthDetector> = (0..n)
        .map(|i| {
            let site = SiteId::new(&format!("home-{i}")).unwrap();
            let gw = GatewayId::new(&format!("gw-{i}")).unwrap();
            let mut d = HealthDetector::new(HealthConfig::default(), site);
            d.register_gateway(gw.clone(), t0);
            d.register_device(
                DeviceId::new(&format!("meter-{i}")).unwrap(),
                BoardKind::Meter,
                Some(gw.clone()),
                t0,
            );
            d.register_device(
                DeviceId::new(&format!("pendant-{i}")).unwrap(),
                BoardKind::Pendant,
                Some(gw),
                t0,
            );
            d
        })
        .collect();
    let after = rss_bytes();
    let hb = Heartbeat {
        battery_mv: 3900,
        rssi_dbm: -70,
        firmware: FirmwareVersion::new("1.0.0").unwrap(),
    };
    let devices: Vec<DeviceId> = (0..n)
        .map(|i| DeviceId::new(&format!("pendant-{i}")).unwrap())
        .collect();
    let start = Instant::now();
    for round in 1..=10u64 {
        let now = Timestamp::from_unix_s(1_700_000_000 + round * 60);
        for (d, dev) in health.iter_mut().zip(&devices) {
            d.handle_heartbeat(dev, &hb, now, now);
            black_box(d.poll_action());
        }
    }
    let per_hb = start.elapsed().as_nanos() as f64 / (10 * n) as f64;
    let json: usize = health
        .iter()
        .map(|d| serde_json::to_string(d.state()).unwrap().len())
        .sum();
    println!(
        "health detector: {per_hb:.0} ns per heartbeat; {} B stored state per household of 2 boards + gateway (JSON)",
        json / n
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "health detector: {} B resident memory per household",
            a.saturating_sub(b) / n as u64
        );
    }

    // The alert book: raise and acknowledge one call per resident.
    let actions: Vec<_> = contexts
        .iter()
        .flat_map(|c| {
            let mut d = CallDetector::new(CallConfig::default());
            d.handle_button(c, &press, t0);
            std::iter::from_fn(move || d.poll_action())
        })
        .collect();
    let mut book = AlertBook::with_ids(AlertPolicy::default(), 1..1_000_000);
    let start = Instant::now();
    for a in actions {
        book.handle_detection(a, t0);
    }
    let ids: Vec<_> = book.open_alerts().map(|a| a.id).collect();
    for id in ids {
        book.handle_operator(
            id,
            &OperatorAction::Acknowledge,
            Actor::User("op".into()),
            None,
            t0,
        )
        .unwrap();
    }
    let mut events = 0usize;
    while book.poll_event().is_some() {
        events += 1;
    }
    let per_alert = start.elapsed().as_nanos() as f64 / n as f64;
    println!("alert book: {per_alert:.0} ns per alert raised and acknowledged ({events} events)");
}
