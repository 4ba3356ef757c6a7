//! The fire node: the firmware's [`FireNode`] with one sensor whose readings follow the
//! room's state (quiet background, smoke, a broken head, a pressure drop, a leaking current).

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vigil_firmware::fire::{ChannelConfig, FireNode, SensorReading, TooManySensors};
use vigil_firmware::frame::FrameStamper;
use vigil_protocol::{SensorKind, UplinkFrame, ZoneId};

use crate::facility::{background_value, SMOKE_ALARM_VALUE};

/// How often the node reads its sensor, ms (an alarm must leave within 10 s, GB 26875.1).
const SAMPLE_EVERY_MS: u64 = 2_000;
/// How often the node reports every sensor as a self-test (its sign of life), ms: the fire
/// node's heartbeat interval the server expects (`HealthConfig::fire_node`, 5 min), so a
/// node that stays quiet for two of them plus the grace is reported offline.
pub const SELF_TEST_EVERY_MS: u64 = 300_000;

/// What the sensor's surroundings do from a moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorCondition {
    /// Smoke in the room: the chamber reads well above the alarm threshold.
    Smoke,
    /// The sensor head is broken or disconnected.
    Fault,
    /// The sensor reads this, in its kind's unit (a hydrant's pressure in kPa, a residual
    /// current in mA), with a little noise.
    Reads(i32),
    /// Back to the room's quiet background (the smoke has cleared, the fault is repaired).
    Clear,
}

/// A fire node's logic and sensor; times are scenario milliseconds.
pub struct FireBoard {
    node: FireNode,
    kind: SensorKind,
    boot_at: u64,
    next_sample: u64,
    /// `(from, condition)` in time order.
    conditions: Vec<(u64, SensorCondition)>,
    rng: ChaCha8Rng,
}

impl FireBoard {
    /// Boots at `boot_at`; the node reports every sensor as a self-test every
    /// `self_test_every_ms` (its sign of life; [`SELF_TEST_EVERY_MS`] unless installed
    /// otherwise).
    pub fn boot(
        stamper: FrameStamper,
        kind: SensorKind,
        zone: ZoneId,
        mut conditions: Vec<(u64, SensorCondition)>,
        seed: u64,
        boot_at: u64,
        self_test_every_ms: u64,
    ) -> Result<Self, TooManySensors> {
        conditions.sort_by_key(|c| c.0);
        let node = FireNode::new(
            stamper,
            &[ChannelConfig::standard(kind, zone)],
            self_test_every_ms,
            0,
        )?;
        Ok(Self {
            node,
            kind,
            boot_at,
            next_sample: boot_at,
            conditions,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    fn reading(&mut self, t: u64) -> SensorReading {
        let condition = self.conditions.iter().rev().find(|c| c.0 <= t).map(|c| c.1);
        match condition {
            // Smoke swirls: never the same value twice, so the stuck check stays quiet.
            Some(SensorCondition::Smoke) => {
                SensorReading::Value(SMOKE_ALARM_VALUE + self.rng.random_range(-40..=40))
            }
            Some(SensorCondition::Fault) => SensorReading::Disconnected,
            Some(SensorCondition::Reads(value)) => {
                SensorReading::Value(value + self.rng.random_range(-3..=3))
            }
            Some(SensorCondition::Clear) | None => {
                SensorReading::Value(background_value(self.kind, &mut self.rng))
            }
        }
    }

    /// The surroundings change to `condition` from `at` on (scenario ms); the board has run
    /// to `now`, so changes before the one it senses now are forgotten (a script that loops
    /// for days adds them forever).
    pub fn add_condition(&mut self, at: u64, condition: SensorCondition, now: u64) {
        self.conditions.push((at, condition));
        // Stable: of two changes at the same instant the later one given wins.
        self.conditions.sort_by_key(|c| c.0);
        super::forget_before(&mut self.conditions, now);
    }

    pub fn next_event(&self) -> u64 {
        let firmware = self.node.next_deadline().saturating_add(self.boot_at);
        firmware.min(self.next_sample)
    }

    pub fn step(&mut self, t: u64) {
        let now = t.saturating_sub(self.boot_at);
        if t >= self.next_sample {
            let reading = self.reading(t);
            // Channel 0 exists: the node was built with one sensor.
            let _ = self.node.handle_reading(0, reading, now);
            self.next_sample = t + SAMPLE_EVERY_MS;
        }
        self.node.handle_timeout(now);
    }

    pub fn poll_frame(&mut self) -> Option<UplinkFrame> {
        self.node.poll_frame()
    }
}
