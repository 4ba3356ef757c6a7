//! The water-meter board: the firmware's [`Meter`] fed by a reed contact that closes once
//! per litre of the household's simulated water use.

use std::collections::VecDeque;
use std::sync::Arc;

use embedded_hal::digital::InputPin;
use vigil_firmware::frame::FrameStamper;
use vigil_firmware::hal::BatteryMonitor;
use vigil_firmware::meter::{Meter, MeterConfig};
use vigil_protocol::{ConfigUpdate, UplinkFrame};

use super::hardware::{SimBattery, SimPin};

/// How long the reed stays closed for one pulse at most, ms (a turning magnet).
const PULSE_WIDTH_MS: u64 = 50;
/// How often the board reads its battery, ms.
const BATTERY_EVERY_MS: u64 = 60_000;

/// A meter board's logic and hardware; times are scenario milliseconds.
pub struct MeterBoard {
    meter: Meter,
    config: MeterConfig,
    boot_at: u64,
    reed: SimPin,
    tamper: SimPin,
    battery: SimBattery,
    /// Millilitres per minute from the scenario's start.
    water: Arc<[u32]>,
    /// The first minute whose pulses are not scheduled yet.
    next_minute: usize,
    /// Water not yet a whole pulse.
    carry_ml: u64,
    /// Reed level changes to come, in time order.
    edges: VecDeque<(u64, bool)>,
    next_battery_read: u64,
}

impl MeterBoard {
    /// Boots at scenario time `boot_at` with the volume persisted before.
    pub fn boot(
        stamper: FrameStamper,
        water: Arc<[u32]>,
        installed_total_ml: u64,
        battery_mv: u16,
        boot_at: u64,
    ) -> Self {
        let config = MeterConfig::default();
        Self {
            meter: Meter::new(config, stamper, installed_total_ml, 0),
            config,
            boot_at,
            reed: SimPin::default(),
            tamper: SimPin::default(),
            battery: SimBattery { mv: battery_mv },
            water,
            next_minute: (boot_at / 60_000) as usize + usize::from(boot_at % 60_000 != 0),
            carry_ml: 0,
            edges: VecDeque::new(),
            next_battery_read: boot_at,
        }
    }

    /// Cumulative volume, to persist across a power cycle.
    pub fn total_ml(&self) -> u64 {
        self.meter.total_ml()
    }

    pub fn set_battery(&mut self, mv: u16) {
        self.battery.mv = mv;
    }

    /// The household's water from now on: `water` replaces the series (minutes whose pulses
    /// are laid out already keep them).
    pub fn set_water(&mut self, water: Arc<[u32]>) {
        self.water = water;
    }

    /// Lays out the reed pulses of every minute that starts by `until`.
    fn schedule(&mut self, until: u64) {
        let per_pulse_ml = 1000 / u64::from(self.config.pulses_per_litre.max(1));
        while (self.next_minute as u64) * 60_000 <= until {
            let Some(&ml) = self.water.get(self.next_minute) else {
                return;
            };
            let start = self.next_minute as u64 * 60_000;
            self.next_minute += 1;
            let total = self.carry_ml + u64::from(ml);
            let pulses = total / per_pulse_ml;
            self.carry_ml = total % per_pulse_ml;
            if pulses == 0 {
                continue;
            }
            let spacing = 60_000 / pulses;
            let width = PULSE_WIDTH_MS.min(spacing / 2).max(1);
            for k in 0..pulses {
                let at = start + k * spacing + spacing / 2 - width / 2;
                self.edges.push_back((at, true));
                self.edges.push_back((at + width, false));
            }
        }
    }

    /// When the board next has something to do (a pin change, a timer, a battery read).
    pub fn next_event(&mut self, horizon: u64) -> u64 {
        self.schedule(horizon);
        let firmware = self.meter.next_deadline().saturating_add(self.boot_at);
        let edge = self.edges.front().map_or(u64::MAX, |e| e.0);
        firmware.min(edge).min(self.next_battery_read)
    }

    /// Wakes at `t`: samples the inputs the way the board's interrupt handler does.
    pub fn step(&mut self, t: u64) {
        while self.edges.front().is_some_and(|e| e.0 <= t) {
            if let Some((_, level)) = self.edges.pop_front() {
                self.reed.set(level);
                // Every change is sampled on its own: an interrupt per edge.
                self.sample(t);
            }
        }
        if t >= self.next_battery_read {
            let Ok(mv) = self.battery.read_battery_mv();
            self.meter.handle_battery(mv);
            self.next_battery_read = t + BATTERY_EVERY_MS;
        }
        self.sample(t);
    }

    fn sample(&mut self, t: u64) {
        let now = t.saturating_sub(self.boot_at);
        let Ok(reed) = self.reed.is_high();
        let Ok(tamper) = self.tamper.is_high();
        self.meter.handle_pulse_input(reed, now);
        self.meter.handle_tamper_input(tamper, now);
        self.meter.handle_timeout(now);
    }

    pub fn poll_frame(&mut self) -> Option<UplinkFrame> {
        self.meter.poll_frame().map(|(_, frame)| frame)
    }

    pub fn handle_config(&mut self, config: &ConfigUpdate, t: u64) {
        self.meter
            .handle_config(config, t.saturating_sub(self.boot_at));
    }
}
