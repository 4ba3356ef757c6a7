//! Fall detection for the call pendant: a sans-IO state machine over accelerometer
//! samples, integer arithmetic only (bit-identical on the host and the board), under
//! 1 KiB of state (936 bytes on x86-64).
//!
//! # Physics
//!
//! A fall is a body that loses its support, drops and rotates, hits the ground, and
//! then lies in a different posture, mostly still. The detector looks only at the total
//! acceleration `|a|` and at the *direction* of gravity before and after, never at a
//! fixed axis, so it works whether the sensor hangs on the chest (the pendant) or sits
//! on the waist (SisFall's recordings).
//!
//! # Phases
//!
//! 0. **Decimation.** Input faster than 50 Hz is averaged in blocks down to about 50 Hz
//!    (the processing rate), so thresholds mean the same at every input rate.
//! 1. **Watching.** Every tick goes into two small histories: 1.6 s of `|a|` and 3 s of
//!    250 ms posture blocks (mean gravity vectors). A tick with `|a| ≥ impact_mg`
//!    (2.1 g) opens an impact candidate.
//! 2. **Settling** (`settle_ms`, 1 s after the impact). A larger peak in this time
//!    re-anchors the candidate on it (a stumble or a knee before the hip hits). At the
//!    (re-)anchor the detector reads the histories:
//!    - *descent*: the largest integral of `(1 g − |a|)·dt` over a contiguous stretch
//!      of the last second (Kadane), in mm/s: the downward speed picked up while the
//!      body was not held up. Must be at least `min_descent_mm_s` (0.15 m/s), which
//!      rejects knocks and bumps with no fall before them;
//!    - *free fall*: time with `|a| < 0.6 g` in that second (reported, not required:
//!      many real falls never come near 0 g at the waist or chest);
//!    - *posture before*: the mean gravity vector over the blocks ending 2.5 s to
//!      0.75 s before the impact (with less history, the oldest block there is).
//! 3. **Observing** (`observe_ms`, 3 s): the mean gravity vector (posture after) and
//!    how many ticks were still (the vector changed by at most `still_band_mg`, 60 mg,
//!    since the previous tick; offset-free, so a badly calibrated sensor lying still
//!    is still). A new impact here restarts the candidate on it.
//! 4. **Decision.** A fall when the descent is enough, the angle between posture
//!    before and after is at least `min_orientation_change_deg` (55°), and at least
//!    `min_still_pct` (50 %) of the observation was still. It is reported at once, with
//!    its features, and the detector ignores impacts for `refractory_ms` (10 s), so one
//!    fall is one report. The pendant then runs the cancel window.
//!
//! # Known misses and false alarms
//!
//! Measured on SisFall (see `docs/firmware.md`, "Fall detection"): falls whose body ends up
//! in nearly the same orientation (a backward slip ending half-sitting), soft falls
//! from sitting whose impact stays under 2.1 g, and a wearer who moves a lot right
//! after the impact. A slow slide to the floor has no impact and is missed. Lying down
//! *hard* on a bed (young subjects' "lie down quickly") or rolling over abruptly can
//! alarm. A pendant dropped on the floor alarms by design (it looks like a faller:
//! turned and still); the cancel window lets the wearer cancel it.

mod detector;
mod geometry;
mod history;
#[cfg(test)]
mod tests;

pub use detector::{FallDetector, PROCESSING_RATE_HZ};

/// One accelerometer sample in milli-g (1 g = 1000; the LIS3DH's ±16 g range fits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccelMg {
    pub x: i16,
    pub y: i16,
    pub z: i16,
}

impl AccelMg {
    pub const fn new(x: i16, y: i16, z: i16) -> Self {
        Self { x, y, z }
    }
}

/// A detected fall and the features it was recognised by (they travel in the uplink's
/// `FallEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallDetection {
    /// When the impact began (the first sample at or above the impact threshold).
    pub impact_at_ms: u64,
    /// Time the total acceleration spent below [`FallConfig::free_fall_mg`] in the
    /// window before the impact.
    pub free_fall_ms: u32,
    /// Peak total acceleration of the impact, in milli-g.
    pub peak_mg: u32,
    /// Time the wearer lay still in the observation window after the impact.
    pub stillness_ms: u32,
    /// Angle between the mean gravity direction before and after the fall (0..=180).
    pub orientation_change_deg: u16,
}

/// Why an impact candidate was or was not reported: the detector's reasoning, for logs,
/// the evaluation harness and `vigil fall-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All checks passed: a fall.
    Fall,
    /// The body did not drop fast enough before the impact.
    NoDescent,
    /// The posture after the impact is too close to the posture before it.
    NoOrientationChange,
    /// The wearer kept moving after the impact.
    NotStill,
    /// Input ended before the post-impact checks had enough data.
    Undecided,
}

/// Everything measured about one impact candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallAssessment {
    pub verdict: Verdict,
    pub impact_at_ms: u64,
    pub peak_mg: u32,
    /// Lowest total acceleration in the window before the impact, milli-g.
    pub min_pre_mg: u32,
    pub free_fall_ms: u32,
    /// Downward speed picked up before the impact, from the largest deficit of total
    /// acceleration below 1 g integrated over time, in mm/s.
    pub descent_mm_s: u32,
    /// `None` when no posture could be measured (too little history or observation).
    pub orientation_change_deg: Option<u16>,
    pub stillness_ms: u32,
    pub observed_ms: u32,
    /// Mean absolute deviation of the total acceleration from 1 g while observed, milli-g.
    pub activity_mg: u32,
}

/// Thresholds and windows of the fall detector. All are physical quantities, the same for
/// every wearer.
#[derive(Debug, Clone, Copy)]
pub struct FallConfig {
    /// Rate of the samples fed to [`FallDetector::handle_sample`].
    pub sample_rate_hz: u16,
    /// A total acceleration at or above this opens an impact candidate, milli-g.
    pub impact_mg: u32,
    /// Below this total acceleration the body counts as (partly) free-falling, milli-g.
    pub free_fall_mg: u32,
    /// How far before the impact to look for the descent, ms.
    pub pre_window_ms: u32,
    /// Minimum downward speed before the impact, mm/s.
    pub min_descent_mm_s: u32,
    /// The posture before the fall is the mean gravity direction over the blocks ending
    /// between `posture_before_from_ms` and `posture_before_to_ms` before the impact.
    pub posture_before_from_ms: u32,
    /// See [`posture_before_from_ms`](Self::posture_before_from_ms), ms.
    pub posture_before_to_ms: u32,
    /// Time after the impact onset for the body to come to rest, ms; the impact peak is
    /// searched during it.
    pub settle_ms: u32,
    /// Length of the post-impact observation (posture and stillness), ms.
    pub observe_ms: u32,
    /// Minimum angle between the posture before and after, degrees.
    pub min_orientation_change_deg: u16,
    /// A tick is still when its total acceleration is within this of 1 g, milli-g.
    pub still_band_mg: u32,
    /// Minimum share of the observation spent still, percent.
    pub min_still_pct: u32,
    /// At the end of input, the least observation a pending candidate needs to be
    /// judged on what there is, ms.
    pub min_observe_at_end_ms: u32,
    /// After a reported fall, new impacts are ignored for this long, ms.
    pub refractory_ms: u32,
}

impl Default for FallConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: 50,
            impact_mg: 2100,
            free_fall_mg: 600,
            pre_window_ms: 1000,
            min_descent_mm_s: 150,
            posture_before_from_ms: 2500,
            posture_before_to_ms: 750,
            settle_ms: 1000,
            observe_ms: 3000,
            min_orientation_change_deg: 55,
            still_band_mg: 60,
            min_still_pct: 50,
            min_observe_at_end_ms: 500,
            refractory_ms: 10_000,
        }
    }
}
