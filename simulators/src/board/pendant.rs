//! The call pendant: the firmware's [`Pendant`] reading a simulated LIS3DH through the
//! firmware's own driver at 50 Hz, and a button pressed the way the incidents say.

use std::collections::VecDeque;

use embedded_hal::digital::InputPin;
use vigil_firmware::fall::AccelMg;
use vigil_firmware::frame::FrameStamper;
use vigil_firmware::hal::BatteryMonitor;
use vigil_firmware::lis3dh::{DataRate, FullScale, Lis3dh, ADDRESS_SA0_HIGH};
use vigil_firmware::pendant::{Pendant, PendantConfig, PendantMode};
use vigil_firmware::traces;
use vigil_protocol::{ConfigUpdate, HelpComing, UplinkFrame};

use super::hardware::{SimBattery, SimLis3dh, SimPin};
use super::motion::{BodyMotion, FallAt};

/// How often the board reads battery and radio for its heartbeats, ms.
const HEALTH_EVERY_MS: u64 = 60_000;
/// Received signal strength the simulated radio reports, dBm.
const RSSI_DBM: i8 = -67;

/// Button level changes from the incidents: a short press is a call, a long press cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Short,
    Long,
}

/// What went wrong booting a pendant.
#[derive(Debug, thiserror::Error)]
#[error("the pendant's accelerometer did not come up: {0}")]
pub struct AccelerometerFault(String);

/// A pendant board's logic and hardware; times are scenario milliseconds.
pub struct PendantBoard {
    pendant: Pendant,
    boot_at: u64,
    accel: Lis3dh<SimLis3dh>,
    chip: SimLis3dh,
    sample_every_ms: u64,
    next_sample: u64,
    body: BodyMotion,
    button: SimPin,
    /// Button level changes to come, in time order (scenario ms).
    button_edges: VecDeque<(u64, bool)>,
    battery: SimBattery,
    next_health: u64,
}

impl PendantBoard {
    /// Boots at `boot_at`; `presses` are the button presses of the whole run.
    pub fn boot(
        stamper: FrameStamper,
        body: BodyMotion,
        presses: &[(u64, Press)],
        battery_mv: u16,
        boot_at: u64,
    ) -> Result<Self, AccelerometerFault> {
        let config = PendantConfig::default();
        let chip = SimLis3dh::new(ADDRESS_SA0_HIGH);
        let accel = Lis3dh::new(
            chip.clone(),
            ADDRESS_SA0_HIGH,
            DataRate::Hz50,
            FullScale::G8,
        )
        .map_err(|e| AccelerometerFault(format!("{e}")))?;
        let sample_every_ms = 1000 / u64::from(config.fall.sample_rate_hz.max(1));
        let mut edges: Vec<(u64, bool)> = Vec::new();
        for &(at, press) in presses.iter().filter(|(at, _)| *at >= boot_at) {
            edges.extend(press_edges(at, press));
        }
        edges.sort_by_key(|e| e.0);
        Ok(Self {
            pendant: Pendant::new(config, stamper, 0),
            boot_at,
            accel,
            chip,
            sample_every_ms,
            next_sample: boot_at,
            body,
            button: SimPin::default(),
            button_edges: edges.into(),
            battery: SimBattery { mv: battery_mv },
            next_health: boot_at,
        })
    }

    pub fn set_battery(&mut self, mv: u16) {
        self.battery.mv = mv;
    }

    /// The wearer presses the button at `at` (scenario ms).
    pub fn press(&mut self, at: u64, press: Press) {
        let mut edges: Vec<(u64, bool)> = self.button_edges.drain(..).collect();
        edges.extend(press_edges(at, press));
        edges.sort_by_key(|e| e.0);
        self.button_edges = edges.into();
    }

    /// The wearer falls as `fall` says; the board has run to `now`.
    pub fn fall(&mut self, fall: FallAt, now: u64) {
        self.body.add_fall(fall, now);
    }

    pub fn mode(&self) -> PendantMode {
        self.pendant.mode()
    }

    pub fn next_event(&self) -> u64 {
        let firmware = self.pendant.next_deadline().saturating_add(self.boot_at);
        let edge = self.button_edges.front().map_or(u64::MAX, |e| e.0);
        firmware
            .min(edge)
            .min(self.next_sample)
            .min(self.next_health)
    }

    pub fn step(&mut self, t: u64) -> Result<(), AccelerometerFault> {
        let now = t.saturating_sub(self.boot_at);
        while self.button_edges.front().is_some_and(|e| e.0 <= t) {
            if let Some((_, level)) = self.button_edges.pop_front() {
                self.button.set(level);
            }
        }
        let Ok(pressed) = self.button.is_high();
        self.pendant.handle_button(pressed, now);
        if t >= self.next_health {
            let Ok(mv) = self.battery.read_battery_mv();
            self.pendant.handle_health(mv, RSSI_DBM);
            self.next_health = t + HEALTH_EVERY_MS;
        }
        if t >= self.next_sample {
            self.chip.sense(self.body.at(t));
            let sample: AccelMg = self
                .accel
                .read_mg()
                .map_err(|e| AccelerometerFault(format!("{e}")))?;
            self.pendant.handle_accel(sample, now);
            self.next_sample = t + self.sample_every_ms;
        }
        self.pendant.handle_timeout(now);
        Ok(())
    }

    pub fn poll_frame(&mut self) -> Option<UplinkFrame> {
        self.pendant.poll_frame()
    }

    pub fn handle_help_coming(&mut self, help: HelpComing, t: u64) {
        self.pendant
            .handle_help_coming(help, t.saturating_sub(self.boot_at));
    }

    pub fn handle_config(&mut self, config: &ConfigUpdate, t: u64) {
        self.pendant
            .handle_config(config, t.saturating_sub(self.boot_at));
    }

    pub fn handle_link(&mut self, up: bool) {
        self.pendant.handle_link(up);
    }

    pub fn samples_read(&self) -> u64 {
        self.chip.samples_read()
    }
}

/// The button's level changes of a press starting at `at`: the firmware's recorded traces,
/// `(ms from the start of the press, level)`, bounce included.
fn press_edges(at: u64, press: Press) -> impl Iterator<Item = (u64, bool)> {
    let trace: &'static [(u64, bool)] = match press {
        Press::Short => &traces::SHORT_PRESS,
        Press::Long => &traces::LONG_PRESS,
    };
    trace
        .iter()
        .map(move |&(offset, level)| (at + offset, level))
}
