//! The fire node: one or more fire-safety sensors, each classified into the signal classes
//! of fire-alarm monitoring (alarm, supervisory, trouble) with hysteresis.
//!
//! - A sensor's threshold has a separate clear level, so a value hovering at the threshold does
//!   not flap between classes.
//! - A disconnected sensor, a reading outside the sensor's physical range, or a value that has
//!   not changed at all for longer than the sensor's noise allows (stuck) is **trouble**.
//! - A door contact must be held open for a while (a fire door held open) before it is
//!   supervisory; people walking through do not count.
//! - Every class change is reported at once (alarms are urgent frames); every
//!   `self_test_interval_ms` the node reports each sensor with `self_test: true`.
//!
//! Default thresholds and where they come from are in [`ChannelConfig::standard`].

use heapless::Vec;
use vigil_protocol::{FireReport, SensorKind, SignalClass, UplinkBody, UplinkFrame, ZoneId};

use crate::frame::FrameStamper;
use crate::hal::Millis;

/// The largest frame a fire node makes, encoded; the size of its spool's slots.
pub const MAX_FRAME_BYTES: usize = 144;

/// One reading of a sensor, in its kind's unit ([`SensorKind::unit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorReading {
    Value(i32),
    /// The sensor did not answer (open loop, bus timeout, missing head).
    Disconnected,
}

/// Which way a threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Active at or above `on`, clear below `clear` (smoke, heat, current, contacts).
    Rising,
    /// Active at or below `on`, clear above `clear` (hydrant pressure).
    Falling,
}

/// How one sensor is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub kind: SensorKind,
    pub zone: ZoneId,
    pub direction: Direction,
    pub on: i32,
    pub clear: i32,
    /// The condition must hold this long before it is reported.
    pub activate_after_ms: u32,
    /// Physically possible readings; anything else is a faulty sensor.
    pub valid: (i32, i32),
    /// A reading identical for this long is a stuck sensor (only for sensors whose reading
    /// always carries noise).
    pub stuck_after_ms: Option<u32>,
}

const HOUR_MS: u32 = 3_600_000;

impl ChannelConfig {
    /// Common thresholds for each kind:
    ///
    /// | kind | active | clear | source |
    /// |---|---|---|---|
    /// | smoke | ≥ 3.00 %/m obscuration | < 1.50 %/m | photoelectric point detectors respond at roughly 1–4 %/m (EN 54-7 range) |
    /// | heat | ≥ 57.0 °C | < 50.0 °C | EN 54-5 class A1 static response 54–65 °C |
    /// | gas (CO) | ≥ 50 ppm | < 30 ppm | EN 50291 lowest alarm level |
    /// | residual current | ≥ 300 mA | < 250 mA | electrical fire monitoring, `DOMAIN.md` |
    /// | cable temperature | ≥ 70.0 °C | < 65.0 °C | PVC cable rating, `DOMAIN.md` |
    /// | hydrant pressure | ≤ 100 kPa | > 120 kPa | GB 50974 minimum static pressure 0.07–0.10 MPa |
    /// | door contact | open for 60 s | closed | a fire door held open |
    /// | manual call point | operated | reset | |
    /// | sprinkler valve | closed | open | |
    pub fn standard(kind: SensorKind, zone: ZoneId) -> Self {
        let (direction, on, clear, activate_after_ms, valid, stuck_after_ms) = match kind {
            SensorKind::Smoke => (
                Direction::Rising,
                300,
                150,
                0,
                (0, 10_000),
                Some(24 * HOUR_MS),
            ),
            SensorKind::Heat => (
                Direction::Rising,
                570,
                500,
                0,
                (-400, 1_500),
                Some(72 * HOUR_MS),
            ),
            SensorKind::Gas => (Direction::Rising, 50, 30, 0, (0, 10_000), None),
            SensorKind::ResidualCurrent => (Direction::Rising, 300, 250, 0, (0, 5_000), None),
            SensorKind::CableTemperature => (
                Direction::Rising,
                700,
                650,
                0,
                (-400, 2_000),
                Some(72 * HOUR_MS),
            ),
            SensorKind::HydrantPressure => (
                Direction::Falling,
                100,
                120,
                10_000,
                (0, 2_500),
                Some(24 * HOUR_MS),
            ),
            SensorKind::DoorContact => (Direction::Rising, 1, 1, 60_000, (0, 1), None),
            SensorKind::ManualCallPoint => (Direction::Rising, 1, 1, 0, (0, 1), None),
            SensorKind::SprinklerValve => (Direction::Rising, 1, 1, 5_000, (0, 1), None),
        };
        Self {
            kind,
            zone,
            direction,
            on,
            clear,
            activate_after_ms,
            valid,
            stuck_after_ms,
        }
    }
}

/// The class a sensor's kind raises when its threshold is crossed.
pub fn active_class(kind: SensorKind) -> SignalClass {
    match kind {
        SensorKind::Smoke
        | SensorKind::Heat
        | SensorKind::Gas
        | SensorKind::ManualCallPoint
        | SensorKind::ResidualCurrent
        | SensorKind::CableTemperature => SignalClass::Alarm,
        SensorKind::HydrantPressure | SensorKind::DoorContact | SensorKind::SprinklerValve => {
            SignalClass::Supervisory
        }
    }
}

#[derive(Debug, Clone)]
struct Channel {
    config: ChannelConfig,
    class: SignalClass,
    /// The threshold condition (with hysteresis) holds.
    condition: bool,
    condition_since: Millis,
    last_value: Option<i32>,
    same_since: Millis,
    disconnected: bool,
}

/// Sensors one node can serve.
pub const MAX_CHANNELS: usize = 8;
const FRAME_QUEUE: usize = 2 * MAX_CHANNELS;

/// More sensors than one node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{given} sensors given, a node serves at most {MAX_CHANNELS}")]
pub struct TooManySensors {
    pub given: usize,
}

/// A channel index that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no sensor channel {0} on this node")]
pub struct NoSuchChannel(pub usize);

/// The fire node's logic, sans-IO.
pub struct FireNode {
    stamper: FrameStamper,
    channels: Vec<Channel, MAX_CHANNELS>,
    self_test_interval_ms: u64,
    next_self_test: Millis,
    frames: Vec<UplinkFrame, FRAME_QUEUE>,
    frames_lost: u32,
}

impl FireNode {
    /// A node with the given sensors (at most [`MAX_CHANNELS`]).
    pub fn new(
        stamper: FrameStamper,
        sensors: &[ChannelConfig],
        self_test_interval_ms: u64,
        now: Millis,
    ) -> Result<Self, TooManySensors> {
        let mut channels = Vec::new();
        for config in sensors {
            channels
                .push(Channel {
                    config: config.clone(),
                    class: SignalClass::Normal,
                    condition: false,
                    condition_since: now,
                    last_value: None,
                    same_since: now,
                    disconnected: false,
                })
                .map_err(|_| TooManySensors {
                    given: sensors.len(),
                })?;
        }
        Ok(Self {
            stamper,
            channels,
            self_test_interval_ms,
            next_self_test: now + self_test_interval_ms,
            frames: Vec::new(),
            frames_lost: 0,
        })
    }

    pub fn class(&self, channel: usize) -> Option<SignalClass> {
        self.channels.get(channel).map(|c| c.class)
    }

    pub fn frames_lost(&self) -> u32 {
        self.frames_lost
    }

    pub fn poll_frame(&mut self) -> Option<UplinkFrame> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// A reading of sensor `channel`.
    pub fn handle_reading(
        &mut self,
        channel: usize,
        reading: SensorReading,
        now: Millis,
    ) -> Result<(), NoSuchChannel> {
        let c = self
            .channels
            .get_mut(channel)
            .ok_or(NoSuchChannel(channel))?;
        match reading {
            SensorReading::Disconnected => c.disconnected = true,
            SensorReading::Value(v) => {
                c.disconnected = false;
                if c.last_value != Some(v) {
                    c.same_since = now;
                }
                c.last_value = Some(v);
                let cfg = &c.config;
                let condition = match (cfg.direction, c.condition) {
                    (Direction::Rising, false) => v >= cfg.on,
                    (Direction::Rising, true) => v >= cfg.clear,
                    (Direction::Falling, false) => v <= cfg.on,
                    (Direction::Falling, true) => v <= cfg.clear,
                };
                if condition != c.condition {
                    c.condition = condition;
                    c.condition_since = now;
                }
            }
        }
        self.evaluate(channel, now);
        Ok(())
    }

    /// Applies delays and stuck-sensor checks, and sends the periodic self-test.
    pub fn handle_timeout(&mut self, now: Millis) {
        for i in 0..self.channels.len() {
            self.evaluate(i, now);
        }
        if now >= self.next_self_test {
            self.next_self_test = now + self.self_test_interval_ms;
            for i in 0..self.channels.len() {
                self.report(i, true, now);
            }
        }
    }

    pub fn next_deadline(&self) -> Millis {
        let mut next = self.next_self_test;
        for c in &self.channels {
            // A sensor in trouble leaves it only with a new reading, never by a timer: a
            // deadline for it would lie in the past and a sleeping board would spin.
            if c.condition
                && c.class != active_class(c.config.kind)
                && c.class != SignalClass::Trouble
            {
                next = next.min(c.condition_since + u64::from(c.config.activate_after_ms));
            }
            if let Some(stuck) = c.config.stuck_after_ms {
                if c.class != SignalClass::Trouble {
                    next = next.min(c.same_since + u64::from(stuck));
                }
            }
        }
        next
    }

    fn judge(c: &Channel, now: Millis) -> SignalClass {
        let Some(v) = c.last_value else {
            return if c.disconnected {
                SignalClass::Trouble
            } else {
                SignalClass::Normal
            };
        };
        let (lo, hi) = c.config.valid;
        let stuck = c
            .config
            .stuck_after_ms
            .is_some_and(|ms| now >= c.same_since + u64::from(ms));
        if c.disconnected || v < lo || v > hi || stuck {
            return SignalClass::Trouble;
        }
        let held = now >= c.condition_since + u64::from(c.config.activate_after_ms);
        if c.condition && held {
            active_class(c.config.kind)
        } else if c.condition {
            // Waiting out the activation delay: keep what was reported.
            match c.class {
                SignalClass::Trouble => SignalClass::Normal,
                SignalClass::Normal | SignalClass::Alarm | SignalClass::Supervisory => c.class,
            }
        } else {
            SignalClass::Normal
        }
    }

    fn evaluate(&mut self, channel: usize, now: Millis) {
        let Some(c) = self.channels.get_mut(channel) else {
            return;
        };
        let class = Self::judge(c, now);
        if class != c.class {
            c.class = class;
            self.report(channel, false, now);
        }
    }

    fn report(&mut self, channel: usize, self_test: bool, now: Millis) {
        let Some(c) = self.channels.get(channel) else {
            return;
        };
        let body = UplinkBody::Fire(FireReport {
            sensor: c.config.kind,
            value: c.last_value.unwrap_or(0),
            unit: c.config.kind.unit(),
            signal: c.class,
            zone: c.config.zone.clone(),
            self_test,
        });
        let frame = self.stamper.stamp(body, now);
        if self.frames.is_full() {
            let victim = self.frames.iter().position(|f| !f.is_urgent()).unwrap_or(0);
            self.frames.remove(victim);
            self.frames_lost += 1;
        }
        let _ = self.frames.push(frame);
    }
}

#[cfg(test)]
#[path = "fire_tests.rs"]
mod tests;
