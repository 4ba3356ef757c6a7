//! The call pendant: a press calls for help, a long press cancels, a detected fall waits a
//! cancel window before it is reported, and the LED and buzzer tell the wearer what is going on.
//!
//! Behaviour, as commercial fall pendants and `DOMAIN.md` describe it:
//!
//! | situation | press | long press |
//! |---|---|---|
//! | idle | call (`ButtonKind::Press`, urgent) | "I'm fine" (`LongPress`) |
//! | fall detected, cancel window running | report the fall now | report the fall as cancelled |
//! | call pending (no "help is coming" yet) | call again | cancel (`Cancel` with the call's seq) |
//! | help is coming | a new call | "I'm fine" |
//!
//! A fall not cancelled within the window (default 30 s) is reported with its features. The
//! call counts as confirmed only when the `HelpComing` downlink for one of its frames arrives.

use heapless::Vec;
use vigil_protocol::{
    ButtonEvent, ButtonKind, ConfigUpdate, FallEvent, Heartbeat, HelpComing, UplinkBody,
    UplinkFrame,
};

use crate::button::{Button, ButtonConfig, Gesture};
use crate::fall::{AccelMg, FallConfig, FallDetection, FallDetector};
use crate::frame::{firmware_version, FrameStamper, HeartbeatSchedule};
use crate::hal::Millis;

/// The largest frame a pendant makes, encoded (a heartbeat with the longest ids and values);
/// the size of its spool's slots.
pub const MAX_FRAME_BYTES: usize = 128;

/// Pendant settings; the cancel window and heartbeat interval can change by downlink.
#[derive(Debug, Clone, Copy)]
pub struct PendantConfig {
    pub button: ButtonConfig,
    pub fall: FallConfig,
    pub cancel_window_ms: u32,
    /// How long the LED shows "help is coming" after the confirmation.
    pub confirmed_display_ms: u32,
    pub heartbeat_interval_ms: u32,
}

impl Default for PendantConfig {
    fn default() -> Self {
        Self {
            button: ButtonConfig::default(),
            fall: FallConfig::default(),
            cancel_window_ms: 30_000,
            confirmed_display_ms: 60_000,
            heartbeat_interval_ms: 3_600_000,
        }
    }
}

/// What the pendant is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendantMode {
    Idle,
    /// A fall was detected at `started`; the wearer may still cancel.
    FallCountdown {
        detection: FallDetection,
        started: Millis,
    },
    /// A call (or fall) was sent in frames `first_seq..=last_seq`; no confirmation yet.
    CallPending {
        first_seq: u32,
        last_seq: u32,
        since: Millis,
    },
    /// The centre confirmed that help is coming.
    HelpComing {
        since: Millis,
    },
}

/// The LED and buzzer levels at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Indication {
    pub led: bool,
    pub buzzer: bool,
}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendantCounters {
    pub falls_detected: u32,
    pub falls_cancelled: u32,
    /// `HelpComing` downlinks that matched no pending call (duplicates, late or foreign).
    pub unmatched_help: u32,
    pub frames_lost: u32,
}

const FRAME_QUEUE: usize = 4;

/// The pendant's logic, sans-IO.
pub struct Pendant {
    config: PendantConfig,
    stamper: FrameStamper,
    button: Button,
    detector: FallDetector,
    mode: PendantMode,
    link_up: bool,
    /// Until when the "cancelled" double beep plays.
    cancel_feedback_until: Option<Millis>,
    battery_mv: u16,
    rssi_dbm: i8,
    heartbeat: HeartbeatSchedule,
    frames: Vec<UplinkFrame, FRAME_QUEUE>,
    counters: PendantCounters,
}

impl Pendant {
    pub fn new(config: PendantConfig, stamper: FrameStamper, now: Millis) -> Self {
        Self {
            config,
            stamper,
            button: Button::new(config.button),
            detector: FallDetector::new(config.fall),
            mode: PendantMode::Idle,
            link_up: false,
            cancel_feedback_until: None,
            battery_mv: 0,
            rssi_dbm: -128,
            heartbeat: HeartbeatSchedule::new(u64::from(config.heartbeat_interval_ms), now),
            frames: Vec::new(),
            counters: PendantCounters::default(),
        }
    }

    pub fn mode(&self) -> PendantMode {
        self.mode
    }

    pub fn counters(&self) -> PendantCounters {
        self.counters
    }

    /// Frames to hand to the uplink, oldest first.
    pub fn poll_frame(&mut self) -> Option<UplinkFrame> {
        if self.frames.is_empty() {
            None
        } else {
            Some(self.frames.remove(0))
        }
    }

    /// One sample of the button (`true` = pressed).
    pub fn handle_button(&mut self, pressed: bool, now: Millis) {
        if let Some(g) = self.button.handle_sample(pressed, now) {
            self.handle_gesture(g, now);
        }
    }

    /// One accelerometer sample at the detector's sample rate.
    pub fn handle_accel(&mut self, sample: AccelMg, now: Millis) {
        if let Some(detection) = self.detector.handle_sample(now, sample) {
            self.handle_fall(detection, now);
        }
    }

    /// The latest battery and radio readings, carried by heartbeats.
    pub fn handle_health(&mut self, battery_mv: u16, rssi_dbm: i8) {
        self.battery_mv = battery_mv;
        self.rssi_dbm = rssi_dbm.min(20);
    }

    /// Whether the uplink session is up (drives the "link down" blink).
    pub fn handle_link(&mut self, up: bool) {
        self.link_up = up;
    }

    /// The centre says help is coming for the frame `(help.boot_id, help.seq)`.
    pub fn handle_help_coming(&mut self, help: HelpComing, now: Millis) {
        match self.mode {
            PendantMode::CallPending {
                first_seq,
                last_seq,
                ..
            } if help.boot_id == self.stamper.boot_id()
                && (first_seq..=last_seq).contains(&help.seq) =>
            {
                self.mode = PendantMode::HelpComing { since: now };
            }
            PendantMode::CallPending { .. }
            | PendantMode::Idle
            | PendantMode::FallCountdown { .. }
            | PendantMode::HelpComing { .. } => self.counters.unmatched_help += 1,
        }
    }

    pub fn handle_config(&mut self, config: &ConfigUpdate, now: Millis) {
        if let Some(s) = config.fall_cancel_window_s {
            self.config.cancel_window_ms = u32::from(s) * 1000;
        }
        if let Some(s) = config.heartbeat_interval_s {
            self.config.heartbeat_interval_ms = s.saturating_mul(1000);
            self.heartbeat.set_interval(u64::from(s) * 1000, now);
        }
    }

    /// Advances the button's long press, the cancel window, the confirmation display and the
    /// heartbeat.
    pub fn handle_timeout(&mut self, now: Millis) {
        if let Some(g) = self.button.handle_timeout(now) {
            self.handle_gesture(g, now);
        }
        match self.mode {
            PendantMode::FallCountdown { detection, started }
                if now >= started + u64::from(self.config.cancel_window_ms) =>
            {
                self.report_fall(detection, false, now);
            }
            PendantMode::HelpComing { since }
                if now >= since + u64::from(self.config.confirmed_display_ms) =>
            {
                self.mode = PendantMode::Idle;
            }
            PendantMode::Idle
            | PendantMode::FallCountdown { .. }
            | PendantMode::CallPending { .. }
            | PendantMode::HelpComing { .. } => {}
        }
        if self.cancel_feedback_until.is_some_and(|t| now >= t) {
            self.cancel_feedback_until = None;
        }
        if self.heartbeat.due(now) {
            let body = UplinkBody::Heartbeat(Heartbeat {
                battery_mv: self.battery_mv,
                rssi_dbm: self.rssi_dbm,
                firmware: firmware_version(),
            });
            self.emit(body, now);
        }
    }

    pub fn next_deadline(&self) -> Millis {
        let mode = match self.mode {
            PendantMode::FallCountdown { started, .. } => {
                Some(started + u64::from(self.config.cancel_window_ms))
            }
            PendantMode::HelpComing { since } => {
                Some(since + u64::from(self.config.confirmed_display_ms))
            }
            PendantMode::Idle | PendantMode::CallPending { .. } => None,
        };
        [
            mode,
            self.button.next_deadline(),
            self.cancel_feedback_until,
            Some(self.heartbeat.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Millis::MAX)
    }

    /// The LED and buzzer levels at `now`.
    pub fn indication(&self, now: Millis) -> Indication {
        if let Some(until) = self.cancel_feedback_until {
            // Two short beeps: the cancel was taken.
            let t = 600u64.saturating_sub(until.saturating_sub(now));
            let on = t < 100 || (200..300).contains(&t);
            return Indication {
                led: on,
                buzzer: on,
            };
        }
        match self.mode {
            PendantMode::FallCountdown { started, .. } => {
                // A beep and a flash every second until the wearer cancels or it is reported.
                let on = (now.saturating_sub(started)) % 1000 < 200;
                Indication {
                    led: on,
                    buzzer: on,
                }
            }
            PendantMode::CallPending { since, .. } => {
                // Slow blink while the call is on its way; fast blink while the link is down.
                let period = if self.link_up { 1000 } else { 200 };
                let on = (now.saturating_sub(since)) % period < period / 2;
                Indication {
                    led: on,
                    buzzer: false,
                }
            }
            PendantMode::HelpComing { since } => Indication {
                led: true,
                buzzer: now.saturating_sub(since) < 300,
            },
            PendantMode::Idle if !self.link_up => {
                // A double blink every five seconds says the pendant cannot reach the centre.
                let t = now % 5000;
                Indication {
                    led: t < 100 || (250..350).contains(&t),
                    buzzer: false,
                }
            }
            PendantMode::Idle => Indication::default(),
        }
    }

    fn handle_gesture(&mut self, gesture: Gesture, now: Millis) {
        match (self.mode, gesture) {
            (PendantMode::Idle | PendantMode::HelpComing { .. }, Gesture::Press) => {
                let seq = self.emit(button(ButtonKind::Press, None), now);
                self.mode = PendantMode::CallPending {
                    first_seq: seq,
                    last_seq: seq,
                    since: now,
                };
            }
            (PendantMode::Idle | PendantMode::HelpComing { .. }, Gesture::LongPress) => {
                self.emit(button(ButtonKind::LongPress, None), now);
                self.mode = PendantMode::Idle;
            }
            (PendantMode::FallCountdown { detection, .. }, Gesture::Press) => {
                self.report_fall(detection, false, now);
            }
            (PendantMode::FallCountdown { detection, .. }, Gesture::LongPress) => {
                self.counters.falls_cancelled += 1;
                self.report_fall(detection, true, now);
                self.mode = PendantMode::Idle;
                self.cancel_feedback_until = Some(now + 600);
            }
            (
                PendantMode::CallPending {
                    first_seq, since, ..
                },
                Gesture::Press,
            ) => {
                let seq = self.emit(button(ButtonKind::Press, None), now);
                self.mode = PendantMode::CallPending {
                    first_seq,
                    last_seq: seq,
                    since,
                };
            }
            (PendantMode::CallPending { first_seq, .. }, Gesture::LongPress) => {
                self.emit(button(ButtonKind::Cancel, Some(first_seq)), now);
                self.mode = PendantMode::Idle;
                self.cancel_feedback_until = Some(now + 600);
            }
        }
    }

    /// A fall found by the detector (called by `handle_accel`; public for boards that run the
    /// detector elsewhere, e.g. on a sensor hub).
    pub fn handle_fall(&mut self, detection: FallDetection, now: Millis) {
        self.counters.falls_detected += 1;
        match self.mode {
            PendantMode::Idle | PendantMode::HelpComing { .. } => {
                self.mode = PendantMode::FallCountdown {
                    detection,
                    started: now,
                };
            }
            // The wearer already called: report the fall at once, no countdown.
            PendantMode::CallPending { .. } => self.report_fall(detection, false, now),
            // One fall at a time; the first one's countdown runs on.
            PendantMode::FallCountdown { .. } => {}
        }
    }

    fn report_fall(&mut self, d: FallDetection, cancelled: bool, now: Millis) {
        let body = UplinkBody::Fall(FallEvent {
            free_fall_ms: d.free_fall_ms,
            peak_mg: d.peak_mg.min(200_000),
            stillness_ms: d.stillness_ms,
            orientation_change_deg: d.orientation_change_deg.min(180),
            cancelled,
        });
        let seq = self.emit(body, now);
        if cancelled {
            return;
        }
        self.mode = match self.mode {
            PendantMode::CallPending {
                first_seq, since, ..
            } => PendantMode::CallPending {
                first_seq,
                last_seq: seq,
                since,
            },
            PendantMode::Idle
            | PendantMode::FallCountdown { .. }
            | PendantMode::HelpComing { .. } => PendantMode::CallPending {
                first_seq: seq,
                last_seq: seq,
                since: now,
            },
        };
    }

    fn emit(&mut self, body: UplinkBody, now: Millis) -> u32 {
        let frame = self.stamper.stamp(body, now);
        let seq = frame.seq;
        if self.frames.is_full() {
            // The board drains this queue every loop; if it did not, make room by dropping a
            // heartbeat, and only when there is none the oldest frame.
            let victim = self.frames.iter().position(|f| !f.is_urgent()).unwrap_or(0);
            self.frames.remove(victim);
            self.counters.frames_lost += 1;
        }
        let _ = self.frames.push(frame);
        seq
    }
}

fn button(kind: ButtonKind, cancels_seq: Option<u32>) -> UplinkBody {
    UplinkBody::Button(ButtonEvent { kind, cancels_seq })
}

#[cfg(test)]
#[path = "pendant_tests.rs"]
mod tests;
