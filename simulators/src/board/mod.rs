//! Firmware in the loop: simulated boards that run the real `vigil-firmware` logic against
//! simulated hardware.
//!
//! # Layout
//!
//! - [`hardware`]: a register-level LIS3DH on a simulated I2C bus, input pins, a battery,
//!   the `boot_id` flash page — the firmware's hal traits, implemented.
//! - [`motion`]: what a chest pendant feels (the activity of the moment, the firmware's
//!   reference fall trace).
//! - [`meter`], [`pendant`], [`fire`]: each board's glue, the part of a board's main loop
//!   that reads the hardware and calls the firmware's `handle_*`; no board behaviour is
//!   re-implemented here.
//! - this module: [`SimBoard`], one board with its power state and its firmware MQTT client
//!   ([`vigil_firmware::mqtt::MqttClient`]), and [`boards_for`], the boards of a scenario.
//!   A scenario file lays out what the hardware senses over the whole run in advance
//!   ([`BoardSpec`]); a driver acting out a script live (`vigil demo`) changes it as it goes
//!   ([`BoardInput`]).
//! - [`rack`]: the driver that runs many boards in one thread and connects each over its own
//!   TCP socket to a broker through the firmware's [`vigil_firmware::link::service`].
//!
//! Two clocks: the board logic runs on scenario time (milliseconds since the scenario's
//! t = 0; it may be offset or accelerated), while the MQTT client runs on the link's real
//! milliseconds, since the network, the gateway and the server are real.

pub mod fire;
pub mod hardware;
pub mod meter;
pub mod motion;
pub mod pendant;
pub mod rack;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use vigil_firmware::frame::FrameStamper;
use vigil_firmware::hal::next_boot_id;
use vigil_firmware::mqtt::{MqttClient, MqttConfig, MqttEvent};
use vigil_protocol::{
    ConfigUpdate, DeviceId, DownlinkBody, SensorKind, SiteId, UplinkFrame, ZoneId,
};

use crate::incident::IncidentKind;
use crate::scenario::{DeviceKind, Scenario};
use crate::timeline::{battery_mv_at, Timeline};

use self::fire::{FireBoard, SensorCondition};
use self::hardware::SimBootStore;
use self::meter::MeterBoard;
use self::motion::{BodyMotion, FallAt};
use self::pendant::{PendantBoard, Press};

/// Frames a simulated board's RAM spool holds.
pub const SPOOL_FRAMES: usize = 32;

/// The firmware's MQTT client as the simulated boards use it.
pub type BoardClient = MqttClient<SPOOL_FRAMES>;

/// What a board is and what its hardware will sense over the run.
#[derive(Debug, Clone)]
pub enum BoardSpec {
    Meter {
        /// Millilitres per minute from the scenario's start.
        water: Arc<[u32]>,
    },
    Pendant {
        body: BodyMotion,
        presses: Vec<(u64, Press)>,
    },
    Fire {
        sensor: SensorKind,
        zone: ZoneId,
        conditions: Vec<(u64, SensorCondition)>,
    },
}

/// A change in what a board's hardware senses, from the moment the board gets it: what a
/// driver acting out a script live hands a board (a scenario file lays the whole run out in
/// its [`BoardSpec`] instead). The firmware makes of it what it makes of real hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardInput {
    /// The wearer presses the pendant's button (short: a call; long: "cancel", "I'm fine").
    Press(Press),
    /// The wearer falls (the reference fall trace on the accelerometer) and lies on the
    /// floor for `lies_for` (`None`: does not get up).
    Fall { lies_for: Option<Duration> },
    /// The fire node's sensor senses this from now on.
    Sense(SensorCondition),
    /// The board's cell reads this many millivolts from now on (a run-down cell, or a fresh
    /// one fitted while the board was off).
    Battery(u16),
    /// The household's water at a meter, millilitres per minute from minute `from_minute`
    /// of the run on (the minutes before keep what they had).
    Water {
        from_minute: usize,
        ml_per_minute: Vec<u32>,
    },
}

impl BoardInput {
    fn name(&self) -> &'static str {
        match self {
            Self::Press(_) => "a button press",
            Self::Fall { .. } => "a fall",
            Self::Sense(_) => "a sensor condition",
            Self::Battery(_) => "a battery level",
            Self::Water { .. } => "water use",
        }
    }
}

/// An input the board's hardware cannot sense (a fall on a fire node, water on a pendant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{device} is a {kind} board: it has no hardware that senses {input}")]
pub struct InputMismatch {
    pub device: DeviceId,
    pub kind: &'static str,
    pub input: &'static str,
}

// Boxed: the firmware's state machines hold their frame queues inline (no heap on a board).
enum Logic {
    Meter(Box<MeterBoard>),
    Pendant(Box<PendantBoard>),
    Fire(Box<FireBoard>),
}

/// A board could not boot.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Accelerometer(#[from] pendant::AccelerometerFault),
    #[error(transparent)]
    FireNode(#[from] vigil_firmware::fire::TooManySensors),
    #[error("login secret: {0}")]
    Secret(#[from] vigil_firmware::mqtt::SecretTooLong),
}

/// What a board did, for the run's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoardCounters {
    pub boots: u32,
    /// Frames the firmware made.
    pub frames_made: u64,
    /// Frames handed to the firmware's uplink (its spool).
    pub frames_submitted: u64,
    /// Frames made before the run's offset: the board lived through that time, but the
    /// system files frames by arrival, so they are not sent.
    pub history_frames_skipped: u64,
    /// Frames lost because the board lost power with them in its RAM spool.
    pub frames_lost_at_power_off: u64,
    pub downlinks: u64,
    pub help_coming: u64,
}

struct Powered {
    logic: Logic,
    client: BoardClient,
    /// Urgent frames the spool refused (full of urgent frames): offered again.
    waiting: VecDeque<UplinkFrame>,
}

/// One simulated board: the firmware's logic, its hardware and its uplink client.
pub struct SimBoard {
    id: DeviceId,
    site: SiteId,
    spec: BoardSpec,
    scenario: Arc<Scenario>,
    boot_store: SimBootStore,
    login_secret: Option<String>,
    mqtt: MqttConfig,
    /// Settings the board was installed with, applied at every boot as the firmware applies
    /// a configuration downlink (a fire node takes the heartbeat interval as its self-test
    /// interval).
    installed: Option<ConfigUpdate>,
    /// The cell's level when a [`BoardInput::Battery`] set it (else the scenario's).
    cell_mv: Option<u16>,
    installed_total_ml: u64,
    powered: Option<Powered>,
    /// Scenario time the board has run to, ms.
    now: u64,
    counters: BoardCounters,
}

impl SimBoard {
    pub fn new(
        id: DeviceId,
        site: SiteId,
        spec: BoardSpec,
        scenario: Arc<Scenario>,
        login_secret: Option<String>,
    ) -> Self {
        Self {
            id,
            site,
            spec,
            scenario,
            boot_store: SimBootStore::default(),
            login_secret,
            mqtt: MqttConfig::default(),
            installed: None,
            cell_mv: None,
            installed_total_ml: 0,
            powered: None,
            now: 0,
            counters: BoardCounters::default(),
        }
    }

    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    pub fn site(&self) -> &SiteId {
        &self.site
    }

    pub fn counters(&self) -> BoardCounters {
        self.counters
    }

    pub fn is_powered(&self) -> bool {
        self.powered.is_some()
    }

    /// The MQTT settings the next boot uses (defaults: the firmware's).
    pub fn set_mqtt_config(&mut self, config: MqttConfig) {
        self.mqtt = config;
    }

    /// The settings the board is installed with, applied from its next boot on.
    pub fn set_installed_config(&mut self, config: ConfigUpdate) {
        self.installed = Some(config);
    }

    /// The `boot_id` the board last used (kept in its flash): its next boot counts on from
    /// it. A board that keeps talking to the same system across runs needs this, or its
    /// frames would repeat the `(boot_id, seq)` of an earlier run's.
    pub fn set_last_boot_id(&mut self, boot_id: u32) {
        self.boot_store = SimBootStore::with_last(boot_id);
    }

    /// Powers the board on at scenario time `t` (ms); its link clock reads `link_now`.
    pub fn power_on(&mut self, t: u64, link_now: u64) -> Result<(), BootError> {
        if self.powered.is_some() {
            return Ok(());
        }
        let Ok(boot_id) = next_boot_id(&mut self.boot_store);
        let stamper = FrameStamper::new(self.id.clone(), boot_id);
        let battery = self.battery_mv(t);
        let self_test_every_ms = self
            .installed
            .and_then(|c| c.heartbeat_interval_s)
            .map_or(fire::SELF_TEST_EVERY_MS, |s| u64::from(s) * 1000);
        let mut logic =
            match &self.spec {
                BoardSpec::Meter { water } => Logic::Meter(Box::new(MeterBoard::boot(
                    stamper,
                    Arc::clone(water),
                    self.installed_total_ml,
                    battery,
                    t,
                ))),
                BoardSpec::Pendant { body, presses } => Logic::Pendant(Box::new(
                    PendantBoard::boot(stamper, body.clone(), presses, battery, t)?,
                )),
                BoardSpec::Fire {
                    sensor,
                    zone,
                    conditions,
                } => Logic::Fire(Box::new(FireBoard::boot(
                    stamper,
                    *sensor,
                    zone.clone(),
                    conditions.clone(),
                    seed_of(&self.id) ^ u64::from(boot_id),
                    t,
                    self_test_every_ms,
                )?)),
            };
        if let Some(config) = &self.installed {
            match &mut logic {
                Logic::Meter(m) => m.handle_config(config, t),
                Logic::Pendant(p) => p.handle_config(config, t),
                // Taken at boot: the self-test interval.
                Logic::Fire(_) => {}
            }
        }
        let jitter = (seed_of(&self.id) as u32) ^ boot_id.wrapping_mul(0x9E37_79B9);
        let mut client = MqttClient::new(self.mqtt, &self.id, boot_id, jitter, link_now);
        if let Some(secret) = &self.login_secret {
            client.set_login_secret(secret.as_bytes())?;
        }
        self.powered = Some(Powered {
            logic,
            client,
            waiting: VecDeque::new(),
        });
        self.now = self.now.max(t);
        self.counters.boots += 1;
        Ok(())
    }

    /// Cuts the power: the RAM spool and everything unsent is gone; the meter's total and
    /// the `boot_id` are in flash and survive.
    pub fn power_off(&mut self) {
        if let Some(p) = self.powered.take() {
            if let Logic::Meter(m) = &p.logic {
                self.installed_total_ml = m.total_ml();
            }
            self.counters.frames_lost_at_power_off +=
                (p.client.spool().len() + p.waiting.len()) as u64;
        }
    }

    fn battery_mv(&self, t: u64) -> u16 {
        self.cell_mv
            .unwrap_or_else(|| battery_mv_at(&self.scenario, &self.id, Duration::from_millis(t)))
    }

    /// The board's hardware senses `input` from scenario time `t` on (or from the time the
    /// board has run to, if later). It stays part of what the board senses across a reboot.
    pub fn sense(&mut self, input: BoardInput, t: u64) -> Result<(), InputMismatch> {
        let now = self.now;
        let at = t.max(now);
        let logic = self.powered.as_mut().map(|p| &mut p.logic);
        match (input, &mut self.spec) {
            (BoardInput::Press(press), BoardSpec::Pendant { presses, .. }) => {
                // A boot replays the presses still to come only.
                presses.retain(|p| p.0 >= now);
                presses.push((at, press));
                presses.sort_by_key(|p| p.0);
                if let Some(Logic::Pendant(pd)) = logic {
                    pd.press(at, press);
                }
            }
            (BoardInput::Fall { lies_for }, BoardSpec::Pendant { body, .. }) => {
                let fall = FallAt {
                    at,
                    gets_up_at: lies_for.map(|d| at.saturating_add(ms(d))),
                };
                body.add_fall(fall, now);
                if let Some(Logic::Pendant(pd)) = logic {
                    pd.fall(fall, now);
                }
            }
            (BoardInput::Sense(condition), BoardSpec::Fire { conditions, .. }) => {
                conditions.push((at, condition));
                conditions.sort_by_key(|c| c.0);
                forget_before(conditions, now);
                if let Some(Logic::Fire(f)) = logic {
                    f.add_condition(at, condition, now);
                }
            }
            (BoardInput::Battery(mv), _) => {
                self.cell_mv = Some(mv);
                match logic {
                    Some(Logic::Meter(m)) => m.set_battery(mv),
                    Some(Logic::Pendant(pd)) => pd.set_battery(mv),
                    Some(Logic::Fire(_)) | None => {}
                }
            }
            (
                BoardInput::Water {
                    from_minute,
                    ml_per_minute,
                },
                BoardSpec::Meter { water },
            ) => {
                let mut series = water.to_vec();
                let end = from_minute.saturating_add(ml_per_minute.len());
                if series.len() < end {
                    series.resize(end, 0);
                }
                series[from_minute..end].copy_from_slice(&ml_per_minute);
                *water = Arc::from(series);
                if let Some(Logic::Meter(m)) = logic {
                    m.set_water(Arc::clone(water));
                }
            }
            (
                input @ (BoardInput::Press(_)
                | BoardInput::Fall { .. }
                | BoardInput::Sense(_)
                | BoardInput::Water { .. }),
                spec,
            ) => {
                return Err(InputMismatch {
                    device: self.id.clone(),
                    kind: match spec {
                        BoardSpec::Meter { .. } => "meter",
                        BoardSpec::Pendant { .. } => "pendant",
                        BoardSpec::Fire { .. } => "fire node",
                    },
                    input: input.name(),
                });
            }
        }
        Ok(())
    }

    /// Runs the board's logic up to scenario time `t` (ms). Frames made go to the uplink when
    /// `deliver`, else they are counted as skipped history.
    pub fn advance(&mut self, t: u64, link_now: u64, deliver: bool) -> Result<(), BootError> {
        let scenario = Arc::clone(&self.scenario);
        let Some(p) = self.powered.as_mut() else {
            self.now = t;
            return Ok(());
        };
        let mut last_step: Option<u64> = None;
        loop {
            let next = match &mut p.logic {
                Logic::Meter(m) => m.next_event(t),
                Logic::Pendant(pd) => pd.next_event(),
                Logic::Fire(f) => f.next_event(),
            };
            // A wake-up asked for a time already handled would repeat forever: time moves on.
            let at = match last_step {
                Some(l) if next <= l => l + 1,
                _ => next.max(self.now),
            };
            if at > t {
                break;
            }
            last_step = Some(at);
            let cell = self.cell_mv;
            let battery = || {
                cell.unwrap_or_else(|| {
                    battery_mv_at(&scenario, &self.id, Duration::from_millis(at))
                })
            };
            match &mut p.logic {
                Logic::Meter(m) => m.set_battery(battery()),
                Logic::Pendant(pd) => pd.set_battery(battery()),
                Logic::Fire(_) => {}
            }
            match &mut p.logic {
                Logic::Meter(m) => m.step(at),
                Logic::Pendant(pd) => pd.step(at)?,
                Logic::Fire(f) => f.step(at),
            }
            self.now = at;
            drain_frames(p, &mut self.counters, link_now, deliver);
        }
        self.now = t;
        drain_frames(p, &mut self.counters, link_now, deliver);
        Ok(())
    }

    /// The firmware's MQTT client, while the board has power.
    pub fn client_mut(&mut self) -> Option<&mut BoardClient> {
        self.powered.as_mut().map(|p| &mut p.client)
    }

    /// Hands the client's events to the board logic; returns the events the link driver
    /// must act on (open or close the transport).
    pub fn drain_events(&mut self) -> Vec<MqttEvent> {
        let now = self.now;
        let Some(p) = self.powered.as_mut() else {
            return Vec::new();
        };
        let mut for_driver = Vec::new();
        while let Some(event) = p.client.poll_event() {
            match &event {
                MqttEvent::Connected | MqttEvent::Disconnected => {
                    if let Logic::Pendant(pd) = &mut p.logic {
                        pd.handle_link(matches!(event, MqttEvent::Connected));
                    }
                }
                MqttEvent::Downlink(body) => {
                    self.counters.downlinks += 1;
                    match (body, &mut p.logic) {
                        (DownlinkBody::HelpComing(help), Logic::Pendant(pd)) => {
                            self.counters.help_coming += 1;
                            pd.handle_help_coming(*help, now);
                        }
                        (DownlinkBody::Config(c), Logic::Pendant(pd)) => pd.handle_config(c, now),
                        (DownlinkBody::Config(c), Logic::Meter(m)) => m.handle_config(c, now),
                        // Receipts were applied to the spool by the client itself.
                        (DownlinkBody::Receipt(_), _)
                        | (DownlinkBody::HelpComing(_), Logic::Meter(_) | Logic::Fire(_))
                        | (DownlinkBody::Config(_), Logic::Fire(_)) => {}
                    }
                }
                MqttEvent::OpenTransport | MqttEvent::CloseTransport => {}
            }
            for_driver.push(event);
        }
        for_driver
    }

    /// The pendant's mode, for tests and reports.
    pub fn pendant_mode(&self) -> Option<vigil_firmware::pendant::PendantMode> {
        match &self.powered.as_ref()?.logic {
            Logic::Pendant(p) => Some(p.mode()),
            Logic::Meter(_) | Logic::Fire(_) => None,
        }
    }
}

fn drain_frames(p: &mut Powered, counters: &mut BoardCounters, link_now: u64, deliver: bool) {
    loop {
        let frame = match p.waiting.pop_front() {
            Some(f) => f,
            None => {
                let made = match &mut p.logic {
                    Logic::Meter(m) => m.poll_frame(),
                    Logic::Pendant(pd) => pd.poll_frame(),
                    Logic::Fire(f) => f.poll_frame(),
                };
                let Some(f) = made else { return };
                counters.frames_made += 1;
                f
            }
        };
        if !deliver {
            counters.history_frames_skipped += 1;
            continue;
        }
        match p.client.submit(&frame, link_now) {
            Ok(_) => counters.frames_submitted += 1,
            Err(vigil_firmware::spool::SpoolError::FullOfUrgent) => {
                // The firmware's rule: the caller keeps an urgent frame and offers it again.
                p.waiting.push_front(frame);
                return;
            }
            Err(vigil_firmware::spool::SpoolError::Encode(_)) => {}
        }
    }
}

/// Drops the changes of `changes` (in time order) that no time from `now` on sees: all before
/// the last one at or before `now`.
fn forget_before<T>(changes: &mut Vec<(u64, T)>, now: u64) {
    let started = changes.partition_point(|c| c.0 <= now);
    if started > 1 {
        changes.drain(..started - 1);
    }
}

fn seed_of(id: &DeviceId) -> u64 {
    // FNV-1a: a stable per-board seed (noise, reconnection jitter).
    id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The boards of a scenario, each with what its hardware will sense over the run.
/// `secret_of` gives a board's login secret for the gateway (none when boards talk to a
/// broker that needs no login).
pub fn boards_for(
    scenario: &Arc<Scenario>,
    timeline: &Timeline,
    secret_of: impl Fn(&DeviceId) -> Option<String>,
) -> Vec<SimBoard> {
    scenario
        .devices
        .iter()
        .map(|d| {
            let spec = match &d.kind {
                DeviceKind::Meter { .. } => BoardSpec::Meter {
                    water: timeline
                        .water_per_minute(&d.id)
                        .map(Arc::from)
                        .unwrap_or_else(|| Arc::from(Vec::new())),
                },
                DeviceKind::Pendant { resident } => {
                    pendant_spec(scenario, timeline, &d.id, resident)
                }
                DeviceKind::Fire { sensor, zone, .. } => BoardSpec::Fire {
                    sensor: *sensor,
                    zone: zone.clone(),
                    conditions: fire_conditions(scenario, &d.id),
                },
            };
            SimBoard::new(
                d.id.clone(),
                d.site.clone(),
                spec,
                Arc::clone(scenario),
                secret_of(&d.id),
            )
        })
        .collect()
}

fn pendant_spec(
    scenario: &Scenario,
    timeline: &Timeline,
    pendant: &DeviceId,
    resident: &str,
) -> BoardSpec {
    let mut falls = Vec::new();
    let mut presses = Vec::new();
    for i in &scenario.incidents {
        match &i.kind {
            IncidentKind::Fall {
                pendant: p,
                cancel_after,
                ..
            } if p == pendant => {
                let at = ms(i.at);
                // A long press cancels; the wearer then gets up.
                let cancel = cancel_after.map(|c| at + ms(c));
                if let Some(c) = cancel {
                    presses.push((c, Press::Long));
                }
                falls.push(FallAt {
                    at,
                    gets_up_at: cancel.map(|c| c + 4_000),
                });
            }
            IncidentKind::Call { pendant: p, .. } if p == pendant => {
                presses.push((ms(i.at), Press::Short));
            }
            _ => {}
        }
    }
    presses.sort_by_key(|p| p.0);
    BoardSpec::Pendant {
        body: BodyMotion::new(timeline.activity_track(resident), falls, seed_of(pendant)),
        presses,
    }
}

fn fire_conditions(scenario: &Scenario, device: &DeviceId) -> Vec<(u64, SensorCondition)> {
    let mut out = Vec::new();
    for i in &scenario.incidents {
        match &i.kind {
            IncidentKind::Smoke { first, second, .. } => {
                if first == device {
                    out.push((ms(i.at), SensorCondition::Smoke));
                }
                if let Some((other, after)) = second {
                    if other == device {
                        out.push((ms(i.at + *after), SensorCondition::Smoke));
                    }
                }
            }
            IncidentKind::SensorFault { device: d, .. } if d == device => {
                out.push((ms(i.at), SensorCondition::Fault));
            }
            IncidentKind::HydrantPressureDrop { device: d, kpa, .. } if d == device => {
                out.push((ms(i.at), SensorCondition::Reads(*kpa)));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
