//! The runner's sans-IO core: a scenario turned into "at time t do X" actions.
//!
//! [`Timeline::build`] lays out every action of the run in advance — the boards' periodic
//! reports drawn from the behaviour models, and the incidents' effects — deterministically
//! from the scenario's seed and the wall-clock start the caller passes in. The I/O driver
//! calls [`Timeline::poll_action`] with its clock (real, offset or accelerated) and carries
//! each action out: publish a frame from a board, stop a gateway, cut a link, mark a
//! resident away.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vigil_protocol::{
    ButtonEvent, ButtonKind, DeviceId, FallEvent, FireReport, FirmwareVersion, GatewayId,
    Heartbeat, MeterReading, SensorKind, SignalClass, UplinkBody,
};

use crate::behaviour::{
    simulate_household, Activity, ActivitySpan, HouseholdTrace, ResidentProfile, Weekday,
};
use crate::facility::{background_report, fault_report, SMOKE_ALARM_VALUE};
use crate::incident::{GroundTruth, IncidentKind, FALL_CANCEL_WINDOW, LOW_BATTERY_MV};
use crate::scenario::{DeviceKind, ProfileChoice, Scenario, SiteKind, WallTime};

/// What the driver must do.
// Most actions are uplinks, which carry a meter reading's slots inline; boxing them would
// allocate for nearly every action to shrink the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The board publishes a frame with this body (the driver numbers it).
    Uplink {
        device: DeviceId,
        body: UplinkBody,
    },
    /// The board stops talking (dead battery, broken) until `BoardBack`.
    BoardSilent {
        device: DeviceId,
    },
    BoardBack {
        device: DeviceId,
    },
    /// The site's gateway goes down / comes back.
    GatewayDown {
        gateway: GatewayId,
    },
    GatewayUp {
        gateway: GatewayId,
    },
    /// The site's internet link is cut / restored; the gateway keeps running.
    UplinkCut {
        gateway: GatewayId,
    },
    UplinkRestored {
        gateway: GatewayId,
    },
    /// The operator marks the resident away until `until` (scenario time) / clears it.
    SetAway {
        resident: String,
        until: Duration,
    },
    ClearAway {
        resident: String,
    },
}

/// An action and when it is due, from the scenario's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub at: Duration,
    pub action: Action,
}

/// How often boards report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// A meter sends its per-minute volumes this often (≤ 60 min: one frame holds 60 slots).
    pub meter_report: Duration,
    /// Every board sends a heartbeat (and a fire node its current value) this often.
    pub heartbeat: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            meter_report: Duration::from_secs(15 * 60),
            heartbeat: Duration::from_secs(60 * 60),
        }
    }
}

/// The scheduled actions of one run and its ground truth.
#[derive(Debug, Clone)]
pub struct Timeline {
    queue: VecDeque<Scheduled>,
    truth: Vec<GroundTruth>,
    activities: BTreeMap<String, ResidentActivity>,
    /// Each household meter's water, millilitres per minute from the start, incidents
    /// included: what drives a simulated meter board's pulse input.
    meter_series: BTreeMap<DeviceId, Vec<u32>>,
}

/// A household resident's simulated days; the scenario starts `offset_s` into them.
#[derive(Debug, Clone)]
struct ResidentActivity {
    offset_s: u32,
    trace: HouseholdTrace,
}

/// What one resident does over the run (incidents included), detached from the timeline so
/// a simulated pendant can carry it.
#[derive(Debug, Clone)]
pub struct ActivityTrack {
    offset_s: u32,
    spans: Vec<ActivitySpan>,
}

impl ActivityTrack {
    /// The activity at scenario time `at`.
    pub fn at(&self, at: Duration) -> Option<Activity> {
        let t = u32::try_from(u64::from(self.offset_s) + at.as_secs()).ok()?;
        let i = self.spans.partition_point(|s| s.end_s <= t);
        self.spans
            .get(i)
            .filter(|s| s.start_s <= t)
            .map(|s| s.activity)
    }
}

const FIRMWARE: &str = "sim-1.0.0";

impl Timeline {
    /// Lays out the whole run; `start` is the wall time of the scenario's t = 0.
    pub fn build(scenario: &Scenario, start: WallTime, cadence: Cadence) -> Self {
        let mut b = Builder {
            scenario,
            cadence,
            out: Vec::new(),
            activities: BTreeMap::new(),
            silent: BTreeMap::new(),
            meter_series: BTreeMap::new(),
        };
        b.silences();
        b.meters(start);
        b.heartbeats_and_fire_reports();
        b.incidents();
        let Builder {
            mut out,
            activities,
            meter_series,
            ..
        } = b;
        out.retain(|s| s.at <= scenario.duration);
        // Stable: actions due together keep the order they were laid out in.
        out.sort_by_key(|s| s.at);
        Self {
            queue: out.into(),
            truth: scenario
                .incidents
                .iter()
                .map(|i| i.ground_truth())
                .collect(),
            activities,
            meter_series,
        }
    }

    /// A household resident's activities over the run, for a pendant's accelerometer.
    pub fn activity_track(&self, resident: &str) -> Option<ActivityTrack> {
        let r = self.activities.get(resident)?;
        Some(ActivityTrack {
            offset_s: r.offset_s,
            spans: r.trace.activity.clone(),
        })
    }

    /// A household meter's water, millilitres per minute from the scenario's start.
    pub fn water_per_minute(&self, meter: &DeviceId) -> Option<&[u32]> {
        self.meter_series.get(meter).map(Vec::as_slice)
    }

    /// What a household resident is doing at `at` (scenario time), incidents included: the
    /// ground truth a pendant's accelerometer would feel.
    pub fn activity_at(&self, resident: &str, at: Duration) -> Option<Activity> {
        let r = self.activities.get(resident)?;
        let t = u64::from(r.offset_s) + at.as_secs();
        r.trace.activity_at(u32::try_from(t).ok()?)
    }

    /// The next action due at or before `now`.
    #[must_use]
    pub fn poll_action(&mut self, now: Duration) -> Option<Scheduled> {
        if self.queue.front()?.at <= now {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// When the next action is due; `None` when the timeline is done.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.queue.front().map(|s| s.at)
    }

    pub fn remaining(&self) -> usize {
        self.queue.len()
    }

    pub fn ground_truth(&self) -> &[GroundTruth] {
        &self.truth
    }
}

/// The battery of `device` at `at` (scenario time): its starting level, or running down
/// linearly through a `battery_dying` incident, crossing the low threshold half-way.
pub fn battery_mv_at(scenario: &Scenario, device: &DeviceId, at: Duration) -> u16 {
    let start = scenario.device(device).map_or(3_000, |d| d.battery_mv);
    for i in &scenario.incidents {
        if let IncidentKind::BatteryDying { device: d, over } = &i.kind {
            if d == device && at >= i.at && !over.is_zero() {
                let frac = ((at - i.at).as_secs_f64() / over.as_secs_f64()).min(1.0);
                let drop = f64::from(start.saturating_sub(LOW_BATTERY_MV)) * 2.0 * frac;
                return (f64::from(start) - drop).max(0.0) as u16;
            }
        }
    }
    start
}

struct Builder<'s> {
    scenario: &'s Scenario,
    cadence: Cadence,
    out: Vec<Scheduled>,
    activities: BTreeMap<String, ResidentActivity>,
    /// Per device, `[from, until)` windows in which it sends nothing.
    silent: BTreeMap<DeviceId, Vec<(Duration, Duration)>>,
    meter_series: BTreeMap<DeviceId, Vec<u32>>,
}

impl Builder<'_> {
    fn push(&mut self, at: Duration, action: Action) {
        self.out.push(Scheduled { at, action });
    }

    fn uplink(&mut self, at: Duration, device: &DeviceId, body: UplinkBody) {
        let silent = self
            .silent
            .get(device)
            .is_some_and(|w| w.iter().any(|&(a, b)| at >= a && at < b));
        if !silent {
            self.push(
                at,
                Action::Uplink {
                    device: device.clone(),
                    body,
                },
            );
        }
    }

    fn silences(&mut self) {
        let end = self.scenario.duration + Duration::from_secs(1);
        for i in &self.scenario.incidents {
            let (device, until) = match &i.kind {
                IncidentKind::BoardOffline { device, duration } => {
                    (device, duration.map_or(end, |d| i.at + d))
                }
                IncidentKind::BatteryDying { device, over } => {
                    self.silent
                        .entry(device.clone())
                        .or_default()
                        .push((i.at + *over, end));
                    continue;
                }
                IncidentKind::Fall { .. }
                | IncidentKind::Call { .. }
                | IncidentKind::SilentEmergency { .. }
                | IncidentKind::TapLeftRunning { .. }
                | IncidentKind::PipeLeak { .. }
                | IncidentKind::Smoke { .. }
                | IncidentKind::SensorFault { .. }
                | IncidentKind::HydrantPressureDrop { .. }
                | IncidentKind::GatewayOffline { .. }
                | IncidentKind::UplinkCut { .. }
                | IncidentKind::Away { .. } => continue,
            };
            self.silent
                .entry(device.clone())
                .or_default()
                .push((i.at, until));
        }
    }

    fn battery_mv(&self, device: &DeviceId, at: Duration) -> u16 {
        battery_mv_at(self.scenario, device, at)
    }

    /// Household meters: the residents' water, changed by the incidents, reported in slots.
    fn meters(&mut self, start: WallTime) {
        let scenario = self.scenario;
        let minutes = scenario.duration.as_secs().div_ceil(60) as usize;
        let start_minute = (start.local_second_of_day() / 60) as usize;
        let days = (start_minute + minutes).div_ceil(1440) as u32;
        let weekday = Weekday::of_unix_day(start.local_day());
        for meter in &scenario.devices {
            let DeviceKind::Meter { .. } = meter.kind else {
                continue;
            };
            let Some(site) = scenario.site(&meter.site) else {
                continue;
            };
            if site.kind != SiteKind::Household {
                continue;
            }
            let mut series = vec![0u32; minutes];
            for (index, resident) in scenario.residents.iter().enumerate() {
                if resident.site != site.id {
                    continue;
                }
                let seed = scenario.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let base = ResidentProfile::calibrated();
                let profile = match resident.profile {
                    ProfileChoice::Calibrated => base,
                    ProfileChoice::Drawn => base.draw(&mut rng),
                };
                let mut trace = simulate_household(&profile, weekday, days, &mut rng);
                let offset_s = start.local_second_of_day() / 60 * 60;
                self.resident_incidents(&resident.id, &mut trace, offset_s);
                let mut own: Vec<u32> = trace
                    .water_per_minute()
                    .into_iter()
                    .skip(start_minute)
                    .take(minutes)
                    .collect();
                own.resize(minutes, 0);
                self.activities
                    .insert(resident.id.clone(), ResidentActivity { offset_s, trace });
                for (total, m) in series.iter_mut().zip(own) {
                    *total = total.saturating_add(m);
                }
            }
            self.meter_incidents(&meter.id, &mut series);
            self.meter_reports(&meter.id, &series);
            self.meter_series.insert(meter.id.clone(), series);
        }
    }

    /// Replaces the resident's routine from a fall they lie still after, a silent
    /// emergency, or while away; `offset_s` is the scenario's start in trace seconds.
    fn resident_incidents(&self, resident: &str, trace: &mut HouseholdTrace, offset_s: u32) {
        let to_trace =
            |d: Duration| offset_s.saturating_add(d.as_secs().min(u64::from(u32::MAX)) as u32);
        for i in &self.scenario.incidents {
            let (until, activity) = match &i.kind {
                IncidentKind::Fall {
                    resident: r,
                    cancel_after: None,
                    ..
                } if r == resident => (u32::MAX, Activity::Fallen),
                IncidentKind::SilentEmergency { resident: r, .. } if r == resident => {
                    (u32::MAX, Activity::Incapacitated)
                }
                IncidentKind::Away {
                    resident: r, until, ..
                } if r == resident => (to_trace(*until), Activity::Away),
                _ => continue,
            };
            trace.override_activity(to_trace(i.at), until, activity);
        }
    }

    fn meter_incidents(&self, meter: &DeviceId, series: &mut [u32]) {
        for i in &self.scenario.incidents {
            let (flow, duration) = match &i.kind {
                IncidentKind::TapLeftRunning {
                    meter: m,
                    flow_ml_per_min,
                    duration,
                } if m == meter => (*flow_ml_per_min, Some(*duration)),
                IncidentKind::PipeLeak {
                    meter: m,
                    flow_ml_per_min,
                    duration,
                } if m == meter => (*flow_ml_per_min, *duration),
                _ => continue,
            };
            let from = (i.at.as_secs() / 60) as usize;
            let to = duration.map_or(series.len(), |d| from + (d.as_secs() / 60) as usize);
            for m in series.iter_mut().take(to).skip(from) {
                *m = m.saturating_add(flow);
            }
        }
    }

    fn meter_reports(&mut self, meter: &DeviceId, series: &[u32]) {
        let step = (self.cadence.meter_report.as_secs() / 60).clamp(1, 60) as usize;
        let mut total_ml = 0u64;
        for (k, chunk) in series.chunks(step).enumerate() {
            let at = Duration::from_secs(((k * step + chunk.len()) * 60) as u64);
            total_ml += chunk.iter().map(|&m| u64::from(m)).sum::<u64>();
            let slots_ml = chunk.iter().copied().collect();
            let body = UplinkBody::Meter(MeterReading {
                total_ml,
                flow_ml_per_min: chunk.last().copied().unwrap_or(0),
                battery_mv: self.battery_mv(meter, at),
                tamper: false,
                leak: false,
                slot_s: 60,
                slots_ml,
            });
            self.uplink(at, meter, body);
        }
    }

    fn heartbeats_and_fire_reports(&mut self) {
        let scenario = self.scenario;
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ 0xF12E);
        let step = self.cadence.heartbeat.max(Duration::from_secs(1));
        let Ok(firmware) = FirmwareVersion::new(FIRMWARE) else {
            return;
        };
        let mut at = step;
        while at <= scenario.duration {
            for d in &scenario.devices {
                let battery_mv = self.battery_mv(&d.id, at);
                let hb = UplinkBody::Heartbeat(Heartbeat {
                    battery_mv,
                    rssi_dbm: -67,
                    firmware: firmware.clone(),
                });
                self.uplink(at, &d.id, hb);
                if let DeviceKind::Fire { sensor, zone, .. } = &d.kind {
                    let report = if self.faulty_since(&d.id).is_some_and(|f| f <= at) {
                        fault_report(*sensor, zone)
                    } else {
                        background_report(*sensor, zone, &mut rng)
                    };
                    self.uplink(at, &d.id, UplinkBody::Fire(report));
                }
            }
            at += step;
        }
    }

    fn faulty_since(&self, device: &DeviceId) -> Option<Duration> {
        self.scenario.incidents.iter().find_map(|i| match &i.kind {
            IncidentKind::SensorFault { device: d, .. } if d == device => Some(i.at),
            _ => None,
        })
    }

    fn incidents(&mut self) {
        let scenario = self.scenario;
        for i in &scenario.incidents {
            let at = i.at;
            match &i.kind {
                IncidentKind::Fall {
                    pendant,
                    cancel_after,
                    ..
                } => {
                    let cancelled_in_window = cancel_after.is_some_and(|c| c <= FALL_CANCEL_WINDOW);
                    let fall = FallEvent {
                        free_fall_ms: 380,
                        peak_mg: 3_400,
                        stillness_ms: if cancel_after.is_some() {
                            4_000
                        } else {
                            30_000
                        },
                        orientation_change_deg: 85,
                        cancelled: cancelled_in_window,
                    };
                    self.uplink(at + FALL_CANCEL_WINDOW, pendant, UplinkBody::Fall(fall));
                    if let Some(c) = cancel_after.filter(|_| !cancelled_in_window) {
                        let cancel = ButtonEvent {
                            kind: ButtonKind::Cancel,
                            cancels_seq: None,
                        };
                        self.uplink(at + c, pendant, UplinkBody::Button(cancel));
                    }
                }
                IncidentKind::Call { pendant, .. } => {
                    let press = ButtonEvent {
                        kind: ButtonKind::Press,
                        cancels_seq: None,
                    };
                    self.uplink(at, pendant, UplinkBody::Button(press));
                }
                IncidentKind::Smoke {
                    zone,
                    first,
                    second,
                    ..
                } => {
                    let alarm = FireReport {
                        sensor: SensorKind::Smoke,
                        value: SMOKE_ALARM_VALUE,
                        unit: SensorKind::Smoke.unit(),
                        signal: SignalClass::Alarm,
                        zone: zone.clone(),
                        self_test: false,
                    };
                    self.uplink(at, first, UplinkBody::Fire(alarm.clone()));
                    if let Some((other, after)) = second {
                        self.uplink(at + *after, other, UplinkBody::Fire(alarm));
                    }
                }
                IncidentKind::SensorFault { device, zone } => {
                    let sensor = match scenario.device(device).map(|d| &d.kind) {
                        Some(DeviceKind::Fire { sensor, .. }) => *sensor,
                        Some(DeviceKind::Meter { .. } | DeviceKind::Pendant { .. }) | None => {
                            continue
                        }
                    };
                    self.uplink(at, device, UplinkBody::Fire(fault_report(sensor, zone)));
                }
                IncidentKind::HydrantPressureDrop {
                    device, zone, kpa, ..
                } => {
                    let report = FireReport {
                        sensor: SensorKind::HydrantPressure,
                        value: *kpa,
                        unit: SensorKind::HydrantPressure.unit(),
                        signal: SignalClass::Supervisory,
                        zone: zone.clone(),
                        self_test: false,
                    };
                    self.uplink(at, device, UplinkBody::Fire(report));
                }
                IncidentKind::BatteryDying { device, over } => {
                    self.push(
                        at + *over,
                        Action::BoardSilent {
                            device: device.clone(),
                        },
                    );
                }
                IncidentKind::BoardOffline { device, duration } => {
                    self.push(
                        at,
                        Action::BoardSilent {
                            device: device.clone(),
                        },
                    );
                    if let Some(d) = duration {
                        self.push(
                            at + *d,
                            Action::BoardBack {
                                device: device.clone(),
                            },
                        );
                    }
                }
                IncidentKind::GatewayOffline {
                    gateway, duration, ..
                } => {
                    self.push(
                        at,
                        Action::GatewayDown {
                            gateway: gateway.clone(),
                        },
                    );
                    self.push(
                        at + *duration,
                        Action::GatewayUp {
                            gateway: gateway.clone(),
                        },
                    );
                }
                IncidentKind::UplinkCut {
                    gateway, duration, ..
                } => {
                    let gateway = gateway.clone();
                    self.push(
                        at,
                        Action::UplinkCut {
                            gateway: gateway.clone(),
                        },
                    );
                    self.push(at + *duration, Action::UplinkRestored { gateway });
                }
                IncidentKind::Away {
                    resident, until, ..
                } => {
                    self.push(
                        at,
                        Action::SetAway {
                            resident: resident.clone(),
                            until: *until,
                        },
                    );
                    self.push(
                        *until,
                        Action::ClearAway {
                            resident: resident.clone(),
                        },
                    );
                }
                IncidentKind::SilentEmergency { .. }
                | IncidentKind::TapLeftRunning { .. }
                | IncidentKind::PipeLeak { .. } => {}
            }
        }
    }
}
