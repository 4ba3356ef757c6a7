//! The water-meter board: debounced pulses from a reed or hall sensor become millilitres,
//! per-slot volumes, a flow rate and an on-board continuous-flow (leak) flag; a magnet on the
//! tamper input is reported at once.
//!
//! Reports: one routine [`MeterReading`] every `report_interval_s` (default 15 min) carrying
//! the slots since the previous one, and an immediate (urgent) one when tamper or the leak flag
//! rises. The last slot of a report ends at the frame's `uptime_ms`: a report made between slot
//! boundaries closes the running slot early (it is then shorter than `slot_s`), and the next
//! slot starts at the report, so no millilitre is counted twice or lost.

use heapless::Vec;
use vigil_protocol::limits::MAX_METER_SLOTS;
use vigil_protocol::{ConfigUpdate, MeterReading, UplinkBody, UplinkFrame};

use crate::debounce::{Debouncer, Edge};
use crate::frame::FrameStamper;
use crate::hal::Millis;

/// The largest report a meter makes, encoded (60 slots of the largest values); the size of
/// its spool's slots.
pub const MAX_REPORT_BYTES: usize = 416;

/// Meter settings; the report interval, pulses per litre and leak time change by downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterConfig {
    pub pulse_debounce_ms: u32,
    pub tamper_debounce_ms: u32,
    pub pulses_per_litre: u16,
    pub slot_s: u16,
    pub report_interval_s: u32,
    /// Flow in every minute for this long sets the on-board leak flag.
    pub leak_flow_minutes: u16,
}

impl Default for MeterConfig {
    fn default() -> Self {
        Self {
            pulse_debounce_ms: 5,
            tamper_debounce_ms: 200,
            pulses_per_litre: 1,
            slot_s: 60,
            report_interval_s: 900,
            leak_flow_minutes: 120,
        }
    }
}

/// Why a report was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportReason {
    Schedule,
    Tamper,
    Leak,
    /// The slot buffer is full (a report interval longer than `MAX_METER_SLOTS` slots).
    SlotsFull,
}

/// The meter's logic, sans-IO.
pub struct Meter {
    config: MeterConfig,
    stamper: FrameStamper,
    pulse: Debouncer,
    tamper_input: Debouncer,
    /// Volume counted under earlier pulses-per-litre settings.
    ml_before_epoch: u64,
    pulses_in_epoch: u64,
    slot_started: Millis,
    ml_at_slot_start: u64,
    slots: Vec<u32, MAX_METER_SLOTS>,
    flow_ml_per_min: u32,
    flowing_ms: u64,
    leak: bool,
    tamper: bool,
    battery_mv: u16,
    next_report_at: Millis,
    frames: Vec<(ReportReason, UplinkFrame), 4>,
    frames_lost: u32,
}

impl Meter {
    /// `installed_total_ml` is the cumulative volume the board persisted before this boot.
    pub fn new(
        config: MeterConfig,
        stamper: FrameStamper,
        installed_total_ml: u64,
        now: Millis,
    ) -> Self {
        Self {
            config,
            stamper,
            pulse: Debouncer::new(config.pulse_debounce_ms),
            tamper_input: Debouncer::new(config.tamper_debounce_ms),
            ml_before_epoch: installed_total_ml,
            pulses_in_epoch: 0,
            slot_started: now,
            ml_at_slot_start: installed_total_ml,
            slots: Vec::new(),
            flow_ml_per_min: 0,
            flowing_ms: 0,
            leak: false,
            tamper: false,
            battery_mv: 0,
            next_report_at: now + u64::from(config.report_interval_s) * 1000,
            frames: Vec::new(),
            frames_lost: 0,
        }
    }

    /// Cumulative volume since installation, in millilitres (persist it now and then).
    pub fn total_ml(&self) -> u64 {
        self.ml_before_epoch
            + self.pulses_in_epoch * 1000 / u64::from(self.config.pulses_per_litre.max(1))
    }

    pub fn leak(&self) -> bool {
        self.leak
    }

    pub fn frames_lost(&self) -> u32 {
        self.frames_lost
    }

    /// The next report and why it was made.
    pub fn poll_frame(&mut self) -> Option<(ReportReason, UplinkFrame)> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// One sample of the pulse input (`true` = reed closed / hall active).
    pub fn handle_pulse_input(&mut self, active: bool, now: Millis) {
        self.handle_timeout(now);
        if self.pulse.handle_sample(active, now) == Some(Edge::Rising) {
            self.pulses_in_epoch += 1;
        }
    }

    /// Pulses counted by hardware since the previous call (a timer in counter mode fed by the
    /// reed contact through an RC filter, or a pulse-counter peripheral), for boards that sleep
    /// instead of sampling the input. The pulses are counted in the slot running at `now`.
    pub fn handle_pulse_count(&mut self, pulses: u32, now: Millis) {
        self.handle_timeout(now);
        self.pulses_in_epoch += u64::from(pulses);
    }

    /// One sample of the tamper input (`true` = magnet present or case open).
    pub fn handle_tamper_input(&mut self, active: bool, now: Millis) {
        self.handle_timeout(now);
        match self.tamper_input.handle_sample(active, now) {
            Some(Edge::Rising) => {
                self.tamper = true;
                self.report(ReportReason::Tamper, now);
            }
            Some(Edge::Falling) => self.tamper = false,
            None => {}
        }
    }

    pub fn handle_battery(&mut self, battery_mv: u16) {
        self.battery_mv = battery_mv;
    }

    pub fn handle_config(&mut self, config: &ConfigUpdate, now: Millis) {
        if let Some(ppl) = config.pulses_per_litre {
            // Volume so far stays as counted; new pulses use the new factor.
            self.ml_before_epoch = self.total_ml();
            self.pulses_in_epoch = 0;
            self.config.pulses_per_litre = ppl.max(1);
        }
        if let Some(s) = config.report_interval_s {
            self.config.report_interval_s = s;
            self.next_report_at = self.next_report_at.min(now + u64::from(s) * 1000);
        }
        if let Some(m) = config.leak_flow_minutes {
            self.config.leak_flow_minutes = m;
        }
    }

    /// Closes finished slots and makes the reports that are due.
    pub fn handle_timeout(&mut self, now: Millis) {
        let slot_ms = u64::from(self.config.slot_s) * 1000;
        while now >= self.slot_started + slot_ms {
            let end = self.slot_started + slot_ms;
            if self.close_slot(end) {
                self.report(ReportReason::Leak, end);
            } else if self.slots.is_full() {
                self.report(ReportReason::SlotsFull, end);
            }
        }
        if now >= self.next_report_at {
            self.report(ReportReason::Schedule, now);
        }
    }

    pub fn next_deadline(&self) -> Millis {
        let slot_end = self.slot_started + u64::from(self.config.slot_s) * 1000;
        [
            Some(slot_end),
            Some(self.next_report_at),
            self.pulse.next_deadline(),
            self.tamper_input.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Millis::MAX)
    }

    /// Closes the running slot at `end`; returns whether the leak flag rose with it.
    fn close_slot(&mut self, end: Millis) -> bool {
        let total = self.total_ml();
        let ml = u32::try_from(total - self.ml_at_slot_start).unwrap_or(u32::MAX);
        let len_ms = end.saturating_sub(self.slot_started).max(1);
        let _ = self.slots.push(ml);
        self.flow_ml_per_min = u32::try_from(u64::from(ml) * 60_000 / len_ms).unwrap_or(u32::MAX);
        if ml > 0 {
            self.flowing_ms += len_ms;
        } else {
            self.flowing_ms = 0;
        }
        let was_leak = self.leak;
        self.leak = self.flowing_ms >= u64::from(self.config.leak_flow_minutes) * 60_000;
        self.slot_started = end;
        self.ml_at_slot_start = total;
        self.leak && !was_leak
    }

    fn report(&mut self, reason: ReportReason, now: Millis) {
        if now > self.slot_started {
            // A leak rising in this partial slot travels in this very report.
            let _ = self.close_slot(now);
        }
        let reading = MeterReading {
            total_ml: self.total_ml(),
            flow_ml_per_min: self.flow_ml_per_min,
            battery_mv: self.battery_mv,
            tamper: self.tamper,
            leak: self.leak,
            slot_s: self.config.slot_s,
            slots_ml: core::mem::take(&mut self.slots),
        };
        let frame = self.stamper.stamp(UplinkBody::Meter(reading), now);
        if self.frames.is_full() {
            // The board drains reports every loop; a full queue means it did not. Keep the
            // urgent ones.
            let victim = self
                .frames
                .iter()
                .position(|(_, f)| !f.is_urgent())
                .unwrap_or(0);
            self.frames.remove(victim);
            self.frames_lost += 1;
        }
        let _ = self.frames.push((reason, frame));
        self.next_report_at = now + u64::from(self.config.report_interval_s) * 1000;
    }
}

#[cfg(test)]
#[path = "meter_tests.rs"]
mod tests;
