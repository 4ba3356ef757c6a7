//! Fall detection on accelerometer samples (placeholder: the classic threshold detector).
//!
//! Free fall (total acceleration below 0.6 g), then an impact above 2.5 g within 1 s, then
//! after 2 s of stillness a posture at more than 45° from the one before the fall.

/// One accelerometer sample, in milli-g.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccelMg {
    pub x: i16,
    pub y: i16,
    pub z: i16,
}

impl AccelMg {
    fn magnitude_mg(self) -> u32 {
        let (x, y, z) = (i64::from(self.x), i64::from(self.y), i64::from(self.z));
        isqrt((x * x + y * y + z * z) as u64) as u32
    }
}

fn isqrt(v: u64) -> u64 {
    let mut r = 0u64;
    let mut bit = 1u64 << 62;
    let mut n = v;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if n >= r + bit {
            n -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    r
}

#[derive(Debug, Clone, Copy)]
pub struct FallConfig {
    pub sample_rate_hz: u16,
    pub free_fall_mg: u32,
    pub impact_mg: u32,
    pub impact_within_ms: u32,
    pub stillness_ms: u32,
    pub stillness_band_mg: u32,
    pub orientation_change_deg: u16,
}

impl Default for FallConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: 50,
            free_fall_mg: 600,
            impact_mg: 2_500,
            impact_within_ms: 1_000,
            stillness_ms: 2_000,
            stillness_band_mg: 250,
            orientation_change_deg: 45,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallDetection {
    pub impact_at_ms: u64,
    pub free_fall_ms: u32,
    pub peak_mg: u32,
    pub stillness_ms: u32,
    pub orientation_change_deg: u16,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Upright,
    FreeFall {
        since: u64,
    },
    Impact {
        free_fall_ms: u32,
        at: u64,
        peak: u32,
        still_since: u64,
    },
}

pub struct FallDetector {
    config: FallConfig,
    phase: Phase,
    posture: AccelMg,
    before_fall: AccelMg,
}

impl FallDetector {
    pub fn new(config: FallConfig) -> Self {
        let upright = AccelMg {
            x: 0,
            y: 0,
            z: 1000,
        };
        Self {
            config,
            phase: Phase::Upright,
            posture: upright,
            before_fall: upright,
        }
    }

    pub fn reset(&mut self) {
        self.phase = Phase::Upright;
    }

    pub fn handle_sample(&mut self, now_ms: u64, sample: AccelMg) -> Option<FallDetection> {
        let c = self.config;
        let mag = sample.magnitude_mg();
        match self.phase {
            Phase::Upright => {
                if mag < c.free_fall_mg {
                    self.before_fall = self.posture;
                    self.phase = Phase::FreeFall { since: now_ms };
                } else if mag.abs_diff(1000) < c.stillness_band_mg {
                    self.posture = sample;
                }
                None
            }
            Phase::FreeFall { since } => {
                if mag > c.impact_mg {
                    let free_fall_ms = (now_ms - since) as u32;
                    self.phase = Phase::Impact {
                        free_fall_ms,
                        at: now_ms,
                        peak: mag,
                        still_since: now_ms,
                    };
                } else if now_ms - since > u64::from(c.impact_within_ms) {
                    self.phase = Phase::Upright;
                }
                None
            }
            Phase::Impact {
                free_fall_ms,
                at,
                peak,
                still_since,
            } => {
                let peak = peak.max(mag);
                let still_since = if mag.abs_diff(1000) > c.stillness_band_mg {
                    now_ms
                } else {
                    still_since
                };
                self.phase = Phase::Impact {
                    free_fall_ms,
                    at,
                    peak,
                    still_since,
                };
                if now_ms - still_since < u64::from(c.stillness_ms) {
                    if now_ms - at > 10_000 {
                        self.phase = Phase::Upright;
                    }
                    return None;
                }
                self.phase = Phase::Upright;
                let deg = angle_deg(self.before_fall, sample);
                (deg > c.orientation_change_deg).then_some(FallDetection {
                    impact_at_ms: at,
                    free_fall_ms,
                    peak_mg: peak,
                    stillness_ms: (now_ms - still_since) as u32,
                    orientation_change_deg: deg,
                })
            }
        }
    }
}

fn angle_deg(a: AccelMg, b: AccelMg) -> u16 {
    let dot = i64::from(a.x) * i64::from(b.x)
        + i64::from(a.y) * i64::from(b.y)
        + i64::from(a.z) * i64::from(b.z);
    let norm = u64::from(a.magnitude_mg()) * u64::from(b.magnitude_mg());
    if norm == 0 {
        return 0;
    }
    let cos_milli = (dot * 1000 / norm as i64).clamp(-1000, 1000);
    // acos by table at 15° steps, linearly interpolated.
    const COS: [i64; 13] = [
        1000, 966, 866, 707, 500, 259, 0, -259, -500, -707, -866, -966, -1000,
    ];
    for i in 0..12 {
        if cos_milli >= COS[i + 1] {
            let span = COS[i] - COS[i + 1];
            return (i as i64 * 15 + (COS[i] - cos_milli) * 15 / span) as u16;
        }
    }
    180
}
