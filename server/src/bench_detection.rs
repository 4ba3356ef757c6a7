//! `vigil bench detection`: detector state per monitored subject and detection CPU per
//! reading, next to the CPU per reading of the ingest path the detectors sit behind, measured
//! in one run on the same readings.
//!
//! # The population
//! `subjects` households, each a site with one resident, a water meter and a pendant: the
//! household's [`WaterDetector`] warmed with 28 days of a synthetic resident's water use, the
//! resident's [`CallDetector`], and the site's [`HealthDetector`] with both boards
//! registered. `facilities` care facilities (default one per thousand households), each with
//! fire nodes in zones: a [`FireDetector`] and a [`HealthDetector`]. Plus what routes a frame
//! to its detectors: a map from device id to subject. Warming 28 days minute by minute for
//! every household would take longer than the measurement, so [`TEMPLATES`] households are
//! warmed on distinct synthetic lives and every household gets a clone of one of them (a deep
//! copy: each owns its state, and the clone is what the allocator counts).
//!
//! # The stream
//! `hours` of traffic at the boards' real rates: a meter report every 15 minutes (fifteen
//! one-minute slots, continuing the household's synthetic life), a pendant heartbeat every
//! hour, a button press from one household in 2 000 per hour (half of them cancelled by a long
//! press), and per fire node a self-test report every 5 minutes (its sign of life, the
//! server's default fire-node heartbeat) plus an hourly heartbeat. Every
//! household's gateway sends its frames of a 15-minute step as one batch, a facility's gateway
//! its own.
//!
//! # What is measured
//! - **State per subject**: the heap bytes the building thread holds after building the
//!   population minus before, divided by the subjects (households, plus facilities), as
//!   counted by the allocator meter the binary passes in (`vigil` installs a counting global
//!   allocator); the detectors live in vectors, so their inline size is part of it. Per kind
//!   as well: water, call, health, fire, routing.
//! - **Ingest CPU per reading**: decode the gateway batches, deduplicate and commit them to a
//!   fresh SQLite store (`Store::commit`: replay windows, readings, latest state, in one
//!   transaction per step), the server's writer path without MQTT.
//! - **Detection CPU per reading**: the committed frames, fed to their detectors as the alert
//!   engine does (route, build the frame context, call the detectors, drain their actions).
//!
//! CPU time is the process's (user + system, from `/proc/self/stat`, 10 ms resolution), so
//! the SQLite worker thread counts for ingest; the phases alternate step by step and nothing
//! else runs meanwhile.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use vigil_protocol::uplink::{
    ButtonEvent, ButtonKind, FireReport, Heartbeat, SensorKind, SignalClass,
};
use vigil_protocol::{
    encode_batch, BatchEntry, BatchHeader, DeviceId, GatewayId, MeterReading, SiteId, UplinkBody,
    UplinkFrame, ZoneId,
};

use crate::alerts::AlertKind;
use crate::alerts::Timestamp;
use crate::detection::action::{DetectorAction, FrameContext, FrameRef};
use crate::detection::call::{CallConfig, CallDetector};
use crate::detection::fire::{FireConfig, FireDetector};
use crate::detection::health::{BoardKind, HealthConfig, HealthDetector};
use crate::detection::water::synthetic::{resident_at_home, SplitMix};
use crate::detection::water::{WaterAction, WaterDetector, WaterRules};
use crate::ids::ResidentId;
use crate::ingest::decode::{decode_message, DecodeLimits};
use crate::ingest::AcceptAllDevices;
use crate::store::{IncomingFrame, IngestBatch, Store};

/// Distinct warmed households the population is cloned from.
pub const TEMPLATES: usize = 16;
/// Days of history each household's water detector has learnt from.
pub const WARM_DAYS: i64 = 28;
const STEP_MINUTES: i64 = 15;
/// Fire zones of a facility: its nodes are spread over them in turn.
const ZONES_PER_FACILITY: u32 = 8;
/// Readings per transaction: the server's default `max_batch_readings`.
const MAX_TX_READINGS: usize = 40_000;
const TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Measures the heap held by the calling thread, when the binary can (`None` otherwise).
pub type HeapMeter = fn() -> Option<i64>;

#[derive(Debug, Clone)]
pub struct DetectionBenchOptions {
    /// Households (each: resident, meter, pendant).
    pub subjects: u32,
    /// Care facilities with fire nodes; `None`: one per thousand households, at least one.
    pub facilities: Option<u32>,
    pub fire_nodes_per_facility: u32,
    /// Length of the stream.
    pub hours: u32,
    /// Where the SQLite store of the ingest phase goes (a fresh file; removed afterwards).
    pub data_dir: std::path::PathBuf,
}

impl DetectionBenchOptions {
    pub fn facilities(&self) -> u32 {
        self.facilities.unwrap_or((self.subjects / 1000).max(1))
    }
}

/// Heap held per kind of state, in bytes (`None` without a heap meter).
#[derive(Debug, Clone, Default)]
pub struct StateBytes {
    pub water: Option<i64>,
    pub call: Option<i64>,
    pub household_health: Option<i64>,
    pub facilities: Option<i64>,
    pub routing: Option<i64>,
    pub total: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DetectionBenchReport {
    pub subjects: u32,
    pub facilities: u32,
    pub fire_nodes: u32,
    /// Fire zones per facility (nodes are spread over them).
    pub zones_per_facility: u32,
    pub state: StateBytes,
    /// `size_of` of each detector (its inline part; the heap part is in `state`).
    pub inline_water: usize,
    pub inline_call: usize,
    pub inline_health: usize,
    pub readings: u64,
    pub meter_readings: u64,
    pub water_minutes: u64,
    pub ingest_cpu: Duration,
    pub detection_cpu: Duration,
    pub actions: u64,
    /// Detector actions by what they did and to which kind of alert (`raise call`, …).
    pub actions_by_kind: std::collections::BTreeMap<String, u64>,
    pub duplicates: u64,
}

impl DetectionBenchReport {
    /// Households and facilities: everything that has detector state of its own.
    pub fn monitored(&self) -> u64 {
        u64::from(self.subjects) + u64::from(self.facilities)
    }

    pub fn bytes_per_subject(&self) -> Option<f64> {
        self.state
            .total
            .map(|b| b as f64 / self.monitored().max(1) as f64)
    }

    pub fn ingest_ns_per_reading(&self) -> f64 {
        self.ingest_cpu.as_nanos() as f64 / self.readings.max(1) as f64
    }

    pub fn detection_ns_per_reading(&self) -> f64 {
        self.detection_cpu.as_nanos() as f64 / self.readings.max(1) as f64
    }

    /// Detection CPU over ingest CPU, per reading (`None` when ingest measured no time).
    pub fn ratio(&self) -> Option<f64> {
        (!self.ingest_cpu.is_zero())
            .then(|| self.detection_cpu.as_secs_f64() / self.ingest_cpu.as_secs_f64())
    }
}

impl std::fmt::Display for DetectionBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = |b: Option<i64>, n: u64| match b {
            Some(b) => format!("{:.0} B", b as f64 / n.max(1) as f64),
            None => "not measured".to_owned(),
        };
        let households = u64::from(self.subjects);
        writeln!(
            f,
            "detection bench: {} households, {} facilities ({} fire nodes), {} readings \
             ({} meter reports = {} water minutes)",
            self.subjects,
            self.facilities,
            self.fire_nodes,
            self.readings,
            self.meter_readings,
            self.water_minutes
        )?;
        let zones = u64::from(self.facilities) * u64::from(self.zones_per_facility);
        writeln!(
            f,
            "  detector state per monitored subject (heap held, counting allocator) \
             [target <= 1024 B each]:"
        )?;
        writeln!(
            f,
            "    household meter (water) {}, resident (call) {}, household site (device health) {}, \
             facility zone (fire + device health of its {} nodes) {}",
            per(self.state.water, households),
            per(self.state.call, households),
            per(self.state.household_health, households),
            self.fire_nodes / (zones.max(1) as u32),
            per(self.state.facilities, zones),
        )?;
        let household = match (
            self.state.water,
            self.state.call,
            self.state.household_health,
        ) {
            (Some(w), Some(c), Some(h)) => Some(w + c + h),
            _ => None,
        };
        writeln!(
            f,
            "  one household's detectors together: {} (+ device routing {}); one facility: {}; \
             all state / (households + facilities): {}",
            per(household, households),
            per(self.state.routing, households),
            per(self.state.facilities, u64::from(self.facilities)),
            per(self.state.total, self.monitored()),
        )?;
        writeln!(
            f,
            "    inline sizes: WaterDetector {} B, CallDetector {} B, HealthDetector {} B",
            self.inline_water, self.inline_call, self.inline_health
        )?;
        writeln!(
            f,
            "  ingest CPU per reading (decode + dedup + SQLite commit): {:.0} ns",
            self.ingest_ns_per_reading()
        )?;
        writeln!(
            f,
            "  detection CPU per reading: {:.0} ns ({} detector actions, {} duplicates)",
            self.detection_ns_per_reading(),
            self.actions,
            self.duplicates
        )?;
        if !self.actions_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .actions_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(f, "    actions: {}", kinds.join(", "))?;
        }
        match self.ratio() {
            Some(r) => write!(
                f,
                "  detection / ingest: {:.1} % [target <= 10 %]",
                r * 100.0
            ),
            None => write!(f, "  detection / ingest: below the CPU clock's resolution"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectionBenchError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("encoding a frame: {0}")]
    Encode(#[from] vigil_protocol::EncodeError),
    #[error("reading the process CPU time: {0}")]
    CpuTime(String),
    #[error("invalid id {0:?}")]
    Id(String),
}

/// The process's CPU time so far (user + system), from `/proc/self/stat`.
pub fn process_cpu_time() -> Result<Duration, DetectionBenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| DetectionBenchError::CpuTime(e.to_string()))?;
    // The command name (field 2) may hold spaces; fields after its `)` are plain.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| DetectionBenchError::CpuTime("unexpected format".into()))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<u64, DetectionBenchError> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| DetectionBenchError::CpuTime(format!("field {} missing", i + 3)))
    };
    // Linux reports these in USER_HZ, 100 per second on every architecture it supports.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

fn id<T: std::str::FromStr>(s: &str) -> Result<T, DetectionBenchError> {
    s.parse().map_err(|_| DetectionBenchError::Id(s.to_owned()))
}

/// One household's detectors.
struct Household {
    water: WaterDetector,
    call: CallDetector,
    health: HealthDetector,
}

struct Facility {
    fire: FireDetector,
    health: HealthDetector,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Meter(u32),
    Pendant(u32),
    FireNode(u32),
}

/// Everything the detection side holds.
struct Population {
    households: Vec<Household>,
    facilities: Vec<Facility>,
    routes: HashMap<DeviceId, Route>,
    sites: Vec<SiteId>,
    residents: Vec<ResidentId>,
    facility_sites: Vec<SiteId>,
}

fn meter_id(i: u32) -> String {
    format!("m{i}")
}
fn pendant_id(i: u32) -> String {
    format!("p{i}")
}
fn node_id(f: u32, n: u32) -> String {
    format!("f{f}n{n}")
}

fn at_s(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// The synthetic lives: `TEMPLATES` series of `WARM_DAYS` + the stream's days.
fn lives(hours: u32) -> Vec<Vec<(i64, f64)>> {
    let days = WARM_DAYS + (i64::from(hours) + 23) / 24 + 1;
    (0..TEMPLATES)
        .map(|k| resident_at_home(days, 1000 + k as u64, TIMEZONE).minutes)
        .collect()
}

/// Index of the first minute of the stream in each life.
const STREAM_START: usize = (WARM_DAYS * 1440) as usize;

fn warmed(rules: &Arc<WaterRules>, life: &[(i64, f64)]) -> WaterDetector {
    let mut w = WaterDetector::new(rules.clone(), TIMEZONE);
    for &(s, litres) in &life[..STREAM_START] {
        let _ = w.handle_reading(at_s(s), litres, at_s(s + 60));
        while w.poll_action().is_some() {}
    }
    w
}

fn build(
    o: &DetectionBenchOptions,
    templates: &[WaterDetector],
    start: Timestamp,
    heap: HeapMeter,
    bytes: &mut StateBytes,
) -> Result<Population, DetectionBenchError> {
    let n = o.subjects;
    let measure = |from: Option<i64>| -> Option<i64> { Some(heap()? - from?) };
    let mut p = Population {
        households: Vec::new(),
        facilities: Vec::new(),
        routes: HashMap::new(),
        sites: Vec::new(),
        residents: Vec::new(),
        facility_sites: Vec::new(),
    };
    let total_from = heap();

    let from = heap();
    let mut water: Vec<WaterDetector> = Vec::with_capacity(n as usize);
    for i in 0..n {
        water.push(templates[i as usize % templates.len()].clone());
    }
    bytes.water = measure(from);

    let from = heap();
    let mut calls: Vec<CallDetector> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        calls.push(CallDetector::new(CallConfig::default()));
    }
    bytes.call = measure(from);

    let health_config = Arc::new(HealthConfig::default());
    let from = heap();
    let mut healths: Vec<HealthDetector> = Vec::with_capacity(n as usize);
    let mut sites = Vec::with_capacity(n as usize);
    let mut residents = Vec::with_capacity(n as usize);
    for i in 0..n {
        let site: SiteId = id(&format!("h{i}"))?;
        let mut h = HealthDetector::new(health_config.clone(), site.clone());
        h.register_device(id(&meter_id(i))?, BoardKind::Meter, None, start);
        h.register_device(id(&pendant_id(i))?, BoardKind::Pendant, None, start);
        healths.push(h);
        sites.push(site);
        residents.push(id(&format!("r{i}"))?);
    }
    bytes.household_health = measure(from);

    let from = heap();
    let mut routes = HashMap::with_capacity(2 * n as usize);
    for i in 0..n {
        routes.insert(id(&meter_id(i))?, Route::Meter(i));
        routes.insert(id(&pendant_id(i))?, Route::Pendant(i));
    }
    bytes.routing = measure(from);

    let from = heap();
    for f in 0..o.facilities() {
        let site: SiteId = id(&format!("fac{f}"))?;
        let mut health = HealthDetector::new(health_config.clone(), site.clone());
        for node in 0..o.fire_nodes_per_facility {
            let device: DeviceId = id(&node_id(f, node))?;
            health.register_device(device.clone(), BoardKind::FireNode, None, start);
            routes.insert(device, Route::FireNode(f));
        }
        p.facilities.push(Facility {
            fire: FireDetector::new(FireConfig::default(), site.clone()),
            health,
        });
        p.facility_sites.push(site);
    }
    bytes.facilities = measure(from);

    p.households = water
        .into_iter()
        .zip(calls)
        .zip(healths)
        .map(|((water, call), health)| Household {
            water,
            call,
            health,
        })
        .collect();
    p.routes = routes;
    p.sites = sites;
    p.residents = residents;
    bytes.total = measure(total_from);
    Ok(p)
}

/// The gateway batches of one 15-minute step ending at `end_s` (Unix seconds), with the
/// counts of readings and meter reports in them.
struct Step {
    /// Topic, payload, and when the server receives it (Unix ms).
    messages: Vec<(String, Bytes, i64)>,
    readings: u64,
    meter_readings: u64,
}

/// A heartbeat of a board with a healthy battery (above every board kind's low threshold).
fn heartbeat() -> Result<UplinkBody, DetectionBenchError> {
    Ok(UplinkBody::Heartbeat(Heartbeat {
        battery_mv: 3900,
        rssi_dbm: -70,
        firmware: vigil_protocol::ids::FirmwareVersion::new("1.4.2")
            .map_err(|_| DetectionBenchError::Id("1.4.2".into()))?,
    }))
}

fn make_step(
    o: &DetectionBenchOptions,
    lives: &[Vec<(i64, f64)>],
    step: usize,
    end_s: i64,
    seqs: &mut HashMap<String, u32>,
    rng: &mut SplitMix,
) -> Result<Step, DetectionBenchError> {
    let mut out = Step {
        messages: Vec::new(),
        readings: 0,
        meter_readings: 0,
    };
    let end_ms = (end_s * 1000) as u64;
    let mut fbuf = vec![0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    let mut bbuf = vec![0u8; vigil_protocol::limits::MAX_BATCH_BYTES];
    let mut encode = |device: &str,
                      at_ms: u64,
                      body: UplinkBody,
                      frames: &mut Vec<(u64, Vec<u8>)>|
     -> Result<(), DetectionBenchError> {
        let seq = seqs.entry(device.to_owned()).or_insert(0);
        *seq += 1;
        let frame = UplinkFrame {
            device_id: id(device)?,
            boot_id: 1,
            seq: *seq,
            uptime_ms: u64::from(*seq) * 60_000,
            wall_ms: Some(at_ms),
            body,
        };
        let len = frame.encode(&mut fbuf)?;
        frames.push((at_ms, fbuf[..len].to_vec()));
        Ok(())
    };
    let on_the_hour = step % 4 == 0;
    let first_minute = STREAM_START + step * STEP_MINUTES as usize;
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut batch = |site: &str,
                     gateway: &str,
                     batch_seq: u64,
                     frames: &mut Vec<(u64, Vec<u8>)>,
                     out: &mut Step|
     -> Result<(), DetectionBenchError> {
        let entries: Vec<BatchEntry<'_>> = frames
            .iter()
            .map(|(at, f)| BatchEntry {
                received_ms: *at,
                frame: f,
            })
            .collect();
        let header = BatchHeader {
            gateway_id: id::<GatewayId>(gateway)?,
            site_id: id::<SiteId>(site)?,
            batch_seq,
        };
        let len = encode_batch(&header, &entries, &mut bbuf)?;
        out.readings += frames.len() as u64;
        // Received just after its newest frame.
        let received_ms = frames.iter().map(|(at, _)| *at).max().unwrap_or(end_ms) as i64 + 500;
        out.messages.push((
            format!("vigil/v1/site/{site}/gw/{gateway}/batch"),
            Bytes::copy_from_slice(&bbuf[..len]),
            received_ms,
        ));
        frames.clear();
        Ok(())
    };
    for i in 0..o.subjects {
        let life = &lives[i as usize % lives.len()];
        let mut slots = heapless::Vec::new();
        let mut used_ml = 0u64;
        for m in 0..STEP_MINUTES as usize {
            let ml = life
                .get(first_minute + m)
                .map_or(0, |(_, l)| (l * 1000.0).round() as u32);
            used_ml += u64::from(ml);
            let _ = slots.push(ml);
        }
        encode(
            &meter_id(i),
            end_ms,
            UplinkBody::Meter(MeterReading {
                total_ml: step as u64 * 10_000 + used_ml,
                flow_ml_per_min: 0,
                battery_mv: 3600,
                tamper: false,
                leak: false,
                slot_s: 60,
                slots_ml: slots,
            }),
            &mut frames,
        )?;
        out.meter_readings += 1;
        // Hourly heartbeats, spread over the hour's four steps.
        if (i as usize + step) % 4 == 0 {
            encode(&pendant_id(i), end_ms, heartbeat()?, &mut frames)?;
        }
        if rng.chance(1.0 / 2000.0 / 4.0) {
            let press = UplinkBody::Button(ButtonEvent {
                kind: ButtonKind::Press,
                cancels_seq: None,
            });
            encode(&pendant_id(i), end_ms - 60_000, press, &mut frames)?;
            if rng.chance(0.5) {
                let cancel = UplinkBody::Button(ButtonEvent {
                    kind: ButtonKind::LongPress,
                    cancels_seq: None,
                });
                encode(&pendant_id(i), end_ms - 50_000, cancel, &mut frames)?;
            }
        }
        batch(
            &format!("h{i}"),
            &format!("g{i}"),
            step as u64,
            &mut frames,
            &mut out,
        )?;
    }
    // A facility's gateway forwards its nodes' self-test reports (every 5 minutes: a node's
    // sign of life) as they come, one batch per 5 minutes.
    for (k, ago_ms) in [600_000u64, 300_000, 0].into_iter().enumerate() {
        for f in 0..o.facilities() {
            for node in 0..o.fire_nodes_per_facility {
                let zone = ZoneId::new(&format!("z{}", node % ZONES_PER_FACILITY))
                    .map_err(|_| DetectionBenchError::Id(format!("z{node}")))?;
                let report = UplinkBody::Fire(FireReport {
                    sensor: SensorKind::Smoke,
                    value: 20 + (rng.next_u64() % 10) as i32,
                    unit: SensorKind::Smoke.unit(),
                    signal: SignalClass::Normal,
                    zone,
                    self_test: true,
                });
                encode(&node_id(f, node), end_ms - ago_ms, report, &mut frames)?;
                if on_the_hour && ago_ms == 0 {
                    encode(&node_id(f, node), end_ms, heartbeat()?, &mut frames)?;
                }
            }
            batch(
                &format!("fac{f}"),
                &format!("fg{f}"),
                step as u64 * 3 + k as u64,
                &mut frames,
                &mut out,
            )?;
        }
    }
    Ok(out)
}

/// Counts one detector action under what it did and its alert kind.
fn tally(kinds: &mut std::collections::BTreeMap<String, u64>, what: &str, kind: AlertKind) {
    *kinds
        .entry(format!("{what} {}", kind.as_str()))
        .or_insert(0) += 1;
}

fn tally_detector(kinds: &mut std::collections::BTreeMap<String, u64>, a: &DetectorAction) {
    match a {
        DetectorAction::Raise { key, .. } => tally(kinds, "raise", key.kind),
        DetectorAction::Clear { key, .. } => tally(kinds, "clear", key.kind),
    }
}

/// Feeds one committed frame to its detectors, as the engine does; returns the actions.
fn detect(
    p: &mut Population,
    f: &IncomingFrame,
    water_minutes: &mut u64,
    kinds: &mut std::collections::BTreeMap<String, u64>,
) -> u64 {
    let Some(route) = p.routes.get(&f.frame.device_id).copied() else {
        return 0;
    };
    let occurred_ms = f.event_ms();
    let occurred = Timestamp::from_unix_ms(u64::try_from(occurred_ms).unwrap_or(0));
    let now = Timestamp::from_unix_ms(u64::try_from(f.server_received_ms).unwrap_or(0));
    let frame = FrameRef {
        device: f.frame.device_id.clone(),
        boot_id: f.frame.boot_id,
        seq: f.frame.seq,
    };
    let mut actions = 0;
    match route {
        Route::Meter(i) | Route::Pendant(i) => {
            let i = i as usize;
            let ctx = FrameContext {
                site: p.sites[i].clone(),
                resident: Some(p.residents[i].clone()),
                frame,
                occurred_at: occurred,
            };
            let h = &mut p.households[i];
            h.health.handle_uplink(&ctx, &f.frame.body, now);
            match &f.frame.body {
                UplinkBody::Meter(m) => {
                    let now_dt =
                        DateTime::from_timestamp_millis(f.server_received_ms).unwrap_or_default();
                    let n = m.slots_ml.len() as i64;
                    let slot = i64::from(m.slot_s.max(1));
                    for (k, ml) in m.slots_ml.iter().enumerate() {
                        let start_ms = occurred_ms - (n - k as i64) * slot * 1000;
                        let start = DateTime::from_timestamp_millis(start_ms).unwrap_or_default();
                        let _ = h
                            .water
                            .handle_reading(start, f64::from(*ml) / 1000.0, now_dt);
                        *water_minutes += 1;
                    }
                    while let Some(a) = h.water.poll_action() {
                        actions += 1;
                        match a {
                            WaterAction::Raise { kind, .. } => tally(kinds, "raise", kind),
                            WaterAction::Clear { kind, .. } => tally(kinds, "clear", kind),
                            WaterAction::Suppressed { kind, .. } => {
                                tally(kinds, "suppressed", kind)
                            }
                        }
                    }
                }
                UplinkBody::Button(b) => h.call.handle_button(&ctx, b, now),
                UplinkBody::Fall(e) => h.call.handle_fall(&ctx, e, now),
                UplinkBody::Heartbeat(_) | UplinkBody::Fire(_) => {}
            }
            while let Some(a) = h.call.poll_action() {
                actions += 1;
                tally_detector(kinds, &a);
            }
            while let Some(a) = h.health.poll_action() {
                actions += 1;
                tally_detector(kinds, &a);
            }
        }
        Route::FireNode(fi) => {
            let fi = fi as usize;
            let ctx = FrameContext {
                site: p.facility_sites[fi].clone(),
                resident: None,
                frame,
                occurred_at: occurred,
            };
            let fac = &mut p.facilities[fi];
            fac.health.handle_uplink(&ctx, &f.frame.body, now);
            if let UplinkBody::Fire(r) = &f.frame.body {
                fac.fire.handle_report(&ctx, r, now);
            }
            while let Some(a) = fac.fire.poll_action() {
                actions += 1;
                tally_detector(kinds, &a);
            }
            while let Some(a) = fac.health.poll_action() {
                actions += 1;
                tally_detector(kinds, &a);
            }
        }
    }
    actions
}

/// Runs the benchmark. `heap` measures the calling thread's heap (see [`HeapMeter`]).
pub async fn run_detection_bench(
    o: &DetectionBenchOptions,
    heap: HeapMeter,
) -> Result<DetectionBenchReport, DetectionBenchError> {
    let lives = lives(o.hours);
    let rules = Arc::new(WaterRules::default());
    let templates: Vec<WaterDetector> = lives.iter().map(|l| warmed(&rules, l)).collect();
    let start_s = lives[0][STREAM_START].0;
    let start = Timestamp::from_unix_s(u64::try_from(start_s).unwrap_or(0));
    let mut state = StateBytes::default();
    let mut population = build(o, &templates, start, heap, &mut state)?;
    drop(templates);

    std::fs::create_dir_all(&o.data_dir).map_err(|e| {
        DetectionBenchError::CpuTime(format!("cannot create {}: {e}", o.data_dir.display()))
    })?;
    let db = o.data_dir.join("bench-detection.sqlite3");
    let _ = std::fs::remove_file(&db);
    let store = crate::store::sqlite::SqliteStore::open(Path::new(&db)).await?;
    let limits = DecodeLimits {
        quarantine_payload_bytes: 256,
    };
    let mut report = DetectionBenchReport {
        subjects: o.subjects,
        facilities: o.facilities(),
        fire_nodes: o.facilities() * o.fire_nodes_per_facility,
        zones_per_facility: ZONES_PER_FACILITY.min(o.fire_nodes_per_facility.max(1)),
        state,
        inline_water: std::mem::size_of::<WaterDetector>(),
        inline_call: std::mem::size_of::<CallDetector>(),
        inline_health: std::mem::size_of::<HealthDetector>(),
        readings: 0,
        meter_readings: 0,
        water_minutes: 0,
        ingest_cpu: Duration::ZERO,
        detection_cpu: Duration::ZERO,
        actions: 0,
        actions_by_kind: std::collections::BTreeMap::new(),
        duplicates: 0,
    };
    let mut seqs: HashMap<String, u32> = HashMap::new();
    let mut rng = SplitMix(7);
    for step in 0..(o.hours as usize * 4) {
        let end_s = start_s + (step as i64 + 1) * STEP_MINUTES * 60;
        let batches = make_step(o, &lives, step, end_s, &mut seqs, &mut rng)?;
        report.readings += batches.readings;
        report.meter_readings += batches.meter_readings;

        let cpu = process_cpu_time()?;
        let mut frames = Vec::with_capacity(batches.readings as usize);
        for (topic, payload, now_ms) in &batches.messages {
            let decoded = decode_message(
                topic.as_bytes(),
                payload,
                *now_ms,
                &AcceptAllDevices,
                limits,
            );
            frames.extend(decoded.frames);
        }
        // One transaction per `MAX_TX_READINGS`, as the server's writer commits.
        let mut new: Vec<IncomingFrame> = Vec::with_capacity(frames.len());
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let chunk: Vec<IncomingFrame> = frames.by_ref().take(MAX_TX_READINGS).collect();
            let batch = Arc::new(IngestBatch {
                frames: chunk,
                quarantine: Vec::new(),
                quarantine_bound: 1000,
            });
            let committed = store.commit(batch.clone()).await?;
            let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| IngestBatch {
                frames: shared.frames.clone(),
                quarantine: Vec::new(),
                quarantine_bound: 1000,
            });
            let offered = batch.frames.len();
            new.extend(
                batch
                    .frames
                    .into_iter()
                    .zip(&committed.admissions)
                    .filter(|(_, a)| a.is_stored())
                    .map(|(f, _)| f),
            );
            report.duplicates += offered as u64;
        }
        report.duplicates -= new.len() as u64;
        report.ingest_cpu += process_cpu_time()?.saturating_sub(cpu);

        let cpu = process_cpu_time()?;
        for f in &new {
            report.actions += detect(
                &mut population,
                f,
                &mut report.water_minutes,
                &mut report.actions_by_kind,
            );
        }
        report.detection_cpu += process_cpu_time()?.saturating_sub(cpu);
    }
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(report)
}
