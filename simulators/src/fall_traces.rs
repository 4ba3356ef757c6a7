//! Synthetic accelerometer traces, with documented physics, for cases the SisFall
//! recordings lack. Each trace is built at 1 kHz and averaged down to the requested
//! rate (as an accelerometer's on-chip low-pass filter would), in g, in the sensor's
//! frame. An accelerometer measures specific force: at rest it reads 1 g pointing up
//! (away from the floor), in free fall 0 g, and during an impact gravity plus the
//! deceleration.
//!
//! | trace | physics | Vigil's answer |
//! |---|---|---|
//! | [`hard_fall_lying_still`] | 0.55 s fall from standing (the torso pitches 90° while the support gives way: 0.2–0.4 g), a 5 g impact of 60 ms with two rebounds, then lying on the floor breathing | **alarm** |
//! | [`pendant_dropped`] | the pendant slips off and falls 1 m (0.45 s at 0 g, tumbling), a 12 g / 8 ms hit on tiles, two bounces (restitution 0.4: 0.36 s and 0.14 s in the air), then flat on the floor, perfectly still | **alarm** — see below |
//! | [`slow_slide`] | the wearer slides down a wall over 4 s to sit then lie on the floor: total acceleration stays within 0.9–1.1 g, orientation turns 80°, no impact | **no alarm** — a known miss |
//! | [`lying_down_in_bed`] | sitting on the bed edge, lying back over 1.5 s (0.8 g dip), the mattress stops the torso at 1.5 g over 250 ms, then lying still | **no alarm** |
//! | [`jump_in_place`] | a 0.3 s jump (0 g in the air), a 3.5 g landing, then standing and walking on | **no alarm** |
//!
//! The dropped pendant alarms on purpose: after the drop it lies turned by 90° and
//! still, which is what a faller looks like to an accelerometer. Telling the two apart
//! would mean rejecting "too still" (no breathing), which would also reject an
//! unconscious wearer on a hard floor; a missed fall costs far more than a false one,
//! and the pendant's 30 s cancel window (a long press cancels) is there for exactly
//! this. The slow slide has no impact and is missed; a wearer who slides down
//! conscious can press the button, and a long lie is caught by the server's
//! no-activity rules (water use, no movement), not by this detector.

/// Internal simulation rate, Hz.
const SIM_RATE_HZ: f64 = 1000.0;

/// Upright posture of a chest pendant: gravity (the 1 g reading) along the sensor's +y.
pub const UPRIGHT: [f64; 3] = [0.0, 1.0, 0.0];
/// Lying on the back: +z (out of the chest) points up.
pub const ON_BACK: [f64; 3] = [0.0, 0.0, 1.0];
/// Lying face down.
pub const FACE_DOWN: [f64; 3] = [0.0, 0.0, -1.0];
/// Sitting leaning back 20°.
pub const SITTING: [f64; 3] = [0.0, 0.94, 0.34];

/// Small deterministic pseudo-random source (xorshift), seeded by the caller.
#[derive(Debug, Clone)]
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Builds a trace segment by segment at 1 kHz.
#[derive(Debug, Clone)]
pub struct TraceBuilder {
    samples: Vec<[f64; 3]>,
    noise: Noise,
    /// Sensor noise plus body micro-motion, g (peak).
    jitter_g: f64,
}

fn scale(v: [f64; 3], k: f64) -> [f64; 3] {
    [v[0] * k, v[1] * k, v[2] * k]
}

fn normalise(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if n == 0.0 {
        v
    } else {
        scale(v, 1.0 / n)
    }
}

/// Direction between `from` and `to` at `phase` 0..=1 (normalised linear blend; the
/// postures used here are never opposite).
fn blend(from: [f64; 3], to: [f64; 3], phase: f64) -> [f64; 3] {
    normalise([
        from[0] + (to[0] - from[0]) * phase,
        from[1] + (to[1] - from[1]) * phase,
        from[2] + (to[2] - from[2]) * phase,
    ])
}

impl TraceBuilder {
    pub fn new(seed: u64) -> Self {
        Self {
            samples: Vec::new(),
            noise: Noise(seed | 1),
            jitter_g: 0.01,
        }
    }

    fn push(&mut self, v: [f64; 3]) {
        let j = self.jitter_g;
        let sample = [
            v[0] + j * self.noise.next(),
            v[1] + j * self.noise.next(),
            v[2] + j * self.noise.next(),
        ];
        self.samples.push(sample);
    }

    fn steps(seconds: f64) -> usize {
        (seconds * SIM_RATE_HZ).round() as usize
    }

    /// Sets the jitter (sensor noise and micro-motion), g.
    pub fn jitter(mut self, g: f64) -> Self {
        self.jitter_g = g;
        self
    }

    /// At rest in `posture`, optionally breathing (a 0.25 Hz, 15 mg swell).
    pub fn rest(mut self, posture: [f64; 3], seconds: f64, breathing: bool) -> Self {
        let up = normalise(posture);
        for i in 0..Self::steps(seconds) {
            let t = i as f64 / SIM_RATE_HZ;
            let swell = if breathing {
                0.015 * (2.0 * std::f64::consts::PI * 0.25 * t).sin()
            } else {
                0.0
            };
            self.push(scale(up, 1.0 + swell));
        }
        self
    }

    /// Walking: a 2 Hz vertical bounce of ±0.25 g with a 1 Hz sway of ±0.1 g.
    pub fn walk(mut self, posture: [f64; 3], seconds: f64) -> Self {
        let up = normalise(posture);
        for i in 0..Self::steps(seconds) {
            let t = i as f64 / SIM_RATE_HZ;
            let bounce = 0.25 * (2.0 * std::f64::consts::PI * 2.0 * t).sin();
            let sway = 0.1 * (2.0 * std::f64::consts::PI * t).sin();
            let v = scale(up, 1.0 + bounce);
            self.push([v[0] + sway, v[1], v[2]]);
        }
        self
    }

    /// Turning from `from` to `to` over `seconds` while the total acceleration follows
    /// `magnitude(phase)` (phase 0..=1).
    pub fn turn(
        mut self,
        from: [f64; 3],
        to: [f64; 3],
        seconds: f64,
        magnitude: impl Fn(f64) -> f64,
    ) -> Self {
        let n = Self::steps(seconds).max(1);
        for i in 0..n {
            let phase = i as f64 / n as f64;
            self.push(scale(blend(from, to, phase), magnitude(phase)));
        }
        self
    }

    /// An impact: the reading rises from 1 g to `peak_g` and back as a half sine over
    /// `seconds`, along `up`.
    pub fn impact(mut self, up: [f64; 3], peak_g: f64, seconds: f64) -> Self {
        let up = normalise(up);
        let n = Self::steps(seconds).max(1);
        for i in 0..n {
            let s = (std::f64::consts::PI * (i as f64 + 0.5) / n as f64).sin();
            self.push(scale(up, 1.0 + (peak_g - 1.0) * s));
        }
        self
    }

    /// Free fall (0 g, tumbling shows only as noise) for `seconds`.
    pub fn free_fall(mut self, seconds: f64) -> Self {
        for _ in 0..Self::steps(seconds) {
            self.push([0.0, 0.0, 0.0]);
        }
        self
    }

    /// The trace averaged down to `rate_hz`, in g.
    pub fn build(self, rate_hz: u32) -> Vec<[f64; 3]> {
        crate::fall_eval::resample(&self.samples, SIM_RATE_HZ, f64::from(rate_hz))
    }
}

/// A fall from standing onto a hard floor, then lying still (breathing).
pub fn hard_fall_lying_still(rate_hz: u32) -> Vec<[f64; 3]> {
    TraceBuilder::new(1)
        .walk(UPRIGHT, 4.0)
        .rest(UPRIGHT, 0.5, false)
        // Support gives way: the body drops and pitches forward (onto the back here).
        .turn(UPRIGHT, ON_BACK, 0.55, |p| {
            0.4 - 0.2 * (std::f64::consts::PI * p).sin()
        })
        .impact(ON_BACK, 5.0, 0.06)
        .rest(ON_BACK, 0.1, false)
        .impact(ON_BACK, 2.0, 0.05)
        .rest(ON_BACK, 0.15, false)
        .impact(ON_BACK, 1.4, 0.05)
        .rest(ON_BACK, 10.0, true)
        .build(rate_hz)
}

/// The pendant slips off and hits a tiled floor from 1 m, bounces, and lies flat.
pub fn pendant_dropped(rate_hz: u32) -> Vec<[f64; 3]> {
    TraceBuilder::new(2)
        .walk(UPRIGHT, 4.0)
        .rest(UPRIGHT, 1.0, true)
        .jitter(0.05)
        .free_fall(0.45)
        .impact(ON_BACK, 12.0, 0.008)
        .free_fall(0.36)
        .impact(ON_BACK, 6.0, 0.006)
        .free_fall(0.14)
        .impact(ON_BACK, 3.0, 0.005)
        .jitter(0.002)
        .rest(ON_BACK, 10.0, false)
        .build(rate_hz)
}

/// Sliding down a wall to the floor over four seconds: no impact.
pub fn slow_slide(rate_hz: u32) -> Vec<[f64; 3]> {
    TraceBuilder::new(3)
        .walk(UPRIGHT, 3.0)
        .rest(UPRIGHT, 1.0, true)
        .turn(UPRIGHT, SITTING, 2.0, |p| {
            1.0 - 0.1 * (std::f64::consts::PI * p).sin()
        })
        .turn(SITTING, ON_BACK, 2.0, |p| {
            1.0 + 0.1 * (std::f64::consts::PI * p).sin()
        })
        .rest(ON_BACK, 10.0, true)
        .build(rate_hz)
}

/// Lying down in bed from sitting on its edge.
pub fn lying_down_in_bed(rate_hz: u32) -> Vec<[f64; 3]> {
    TraceBuilder::new(4)
        .rest(SITTING, 4.0, true)
        .turn(SITTING, ON_BACK, 1.5, |p| {
            1.0 - 0.2 * (std::f64::consts::PI * p).sin()
        })
        .impact(ON_BACK, 1.5, 0.25)
        .rest(ON_BACK, 10.0, true)
        .build(rate_hz)
}

/// A jump in place with a hard landing, then walking on.
pub fn jump_in_place(rate_hz: u32) -> Vec<[f64; 3]> {
    TraceBuilder::new(5)
        .walk(UPRIGHT, 3.0)
        .impact(UPRIGHT, 2.0, 0.2)
        .free_fall(0.3)
        .impact(UPRIGHT, 3.5, 0.08)
        .rest(UPRIGHT, 0.5, true)
        .walk(UPRIGHT, 6.0)
        .build(rate_hz)
}
