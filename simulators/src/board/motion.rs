//! What a pendant worn on the chest feels: the accelerations of the wearer's current
//! activity, and during a fall the firmware's reference fall trace
//! ([`vigil_firmware::traces::FALL`], 50 Hz: standing, stumble, free fall, a 3.9 g impact,
//! then lying face down).

use std::time::Duration;

use vigil_firmware::fall::AccelMg;
use vigil_firmware::traces::{FALL, FALL_RATE_HZ};

use crate::behaviour::Activity;
use crate::timeline::ActivityTrack;

/// A fall of the wearer, in scenario milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallAt {
    pub at: u64,
    /// When the wearer gets up again (after cancelling); `None`: they lie still.
    pub gets_up_at: Option<u64>,
}

/// The wearer's body over the run.
#[derive(Debug, Clone)]
pub struct BodyMotion {
    /// The resident's activities; `None` for a resident without a simulated routine (always
    /// up and about).
    track: Option<ActivityTrack>,
    falls: Vec<FallAt>,
    seed: u64,
}

const FALL_TRACE_MS: u64 = FALL.len() as u64 * 1000 / FALL_RATE_HZ;

impl BodyMotion {
    pub fn new(track: Option<ActivityTrack>, mut falls: Vec<FallAt>, seed: u64) -> Self {
        falls.sort_by_key(|f| f.at);
        Self {
            track,
            falls,
            seed: seed | 1,
        }
    }

    /// The wearer falls (again) as `fall` says. Only the latest fall started by a time
    /// shapes it, so falls before the latest one started by `now` are forgotten (a script
    /// that loops for days adds them forever).
    pub fn add_fall(&mut self, fall: FallAt, now: u64) {
        self.falls.push(fall);
        self.falls.sort_by_key(|f| f.at);
        let started = self.falls.partition_point(|f| f.at <= now);
        if started > 1 {
            self.falls.drain(..started - 1);
        }
    }

    /// The acceleration the sensor feels at scenario time `t` (ms), in milli-g.
    pub fn at(&self, t: u64) -> AccelMg {
        if let Some(f) = self.falls.iter().rev().find(|f| f.at <= t) {
            let since = t - f.at;
            if since < FALL_TRACE_MS {
                let i = (since * FALL_RATE_HZ / 1000) as usize;
                return FALL[i.min(FALL.len() - 1)];
            }
            let lying = f.gets_up_at.is_none_or(|up| t < up);
            if lying {
                return self.lying_face_down(t);
            }
        }
        let activity = self
            .track
            .as_ref()
            .and_then(|tr| tr.at(Duration::from_millis(t)))
            .unwrap_or(Activity::Home);
        match activity {
            Activity::Asleep => self.asleep(t),
            Activity::Fallen | Activity::Incapacitated => self.lying_face_down(t),
            Activity::Home | Activity::Out | Activity::Away => self.upright(t),
        }
    }

    /// ±`amplitude` mg of deterministic noise for sample `t` and axis `axis`.
    fn noise(&self, t: u64, axis: u64, amplitude: i32) -> i16 {
        let mut x = self.seed ^ (t.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ (axis << 59);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let span = (2 * amplitude + 1) as u64;
        ((x % span) as i32 - amplitude) as i16
    }

    /// Standing or walking about: gravity along +y with sway of a few tens of milli-g.
    fn upright(&self, t: u64) -> AccelMg {
        AccelMg::new(
            10 + self.noise(t, 0, 25),
            995 + self.noise(t, 1, 40),
            -20 + self.noise(t, 2, 25),
        )
    }

    /// Lying on the back in bed, breathing (a slow swing of 20 mg on z).
    fn asleep(&self, t: u64) -> AccelMg {
        let phase = (t % 4_000) as f64 / 4_000.0 * std::f64::consts::TAU;
        AccelMg::new(
            self.noise(t, 0, 8),
            30 + self.noise(t, 1, 8),
            990 + (20.0 * phase.sin()) as i16 + self.noise(t, 2, 8),
        )
    }

    /// Lying face down on the floor, still.
    fn lying_face_down(&self, t: u64) -> AccelMg {
        AccelMg::new(
            15 + self.noise(t, 0, 8),
            -10 + self.noise(t, 1, 8),
            -995 + self.noise(t, 2, 8),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mg(s: AccelMg) -> f64 {
        let (x, y, z) = (f64::from(s.x), f64::from(s.y), f64::from(s.z));
        (x * x + y * y + z * z).sqrt()
    }

    #[test]
    fn a_fall_plays_the_reference_trace_then_the_wearer_lies_still() {
        let body = BodyMotion::new(
            None,
            vec![FallAt {
                at: 10_000,
                gets_up_at: None,
            }],
            7,
        );
        assert!(body.at(9_980).y > 900, "upright before");
        let peak = (10_000..10_000 + FALL_TRACE_MS)
            .step_by(20)
            .map(|t| mg(body.at(t)))
            .fold(0.0, f64::max);
        assert!(peak > 3_500.0, "the impact of the trace: {peak}");
        assert!(
            body.at(10_000 + FALL_TRACE_MS + 60_000).z < -950,
            "face down after"
        );
    }

    #[test]
    fn a_wearer_who_cancels_is_up_again_after_getting_up() {
        let body = BodyMotion::new(
            None,
            vec![FallAt {
                at: 0,
                gets_up_at: Some(20_000),
            }],
            7,
        );
        assert!(body.at(15_000).z < -950);
        assert!(body.at(25_000).y > 900);
    }

    #[test]
    fn everyday_motion_stays_far_from_free_fall_and_impact() {
        let body = BodyMotion::new(None, Vec::new(), 3);
        for t in (0..600_000).step_by(20) {
            let m = mg(body.at(t));
            assert!((900.0..1_100.0).contains(&m), "{m} mg at {t}");
        }
    }
}
