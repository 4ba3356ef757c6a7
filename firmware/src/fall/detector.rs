//! The fall detector's state machine.

use super::geometry::{angle_deg, magnitude_mg, VecSum};
use super::history::{MagnitudeHistory, MagnitudeTick, PostureHistory};
use super::{AccelMg, FallAssessment, FallConfig, FallDetection, Verdict};

/// The rate the detector works at internally; faster input is averaged down to it.
pub const PROCESSING_RATE_HZ: u16 = 50;

/// One gravity, milli-g.
const ONE_G_MG: i64 = 1000;

/// Pre-impact features, fixed when the candidate opens.
#[derive(Debug, Clone, Copy)]
struct PreImpact {
    min_mg: u32,
    free_fall_ms: u32,
    descent_mm_s: u32,
    posture: VecSum,
}

/// Post-impact accumulation.
#[derive(Debug, Clone, Copy, Default)]
struct Observation {
    posture: VecSum,
    observed_ms: u32,
    still_ms: u32,
    /// Sum of squared components, for the spread of the vector around its mean.
    square_sum: u64,
    ticks: u32,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    onset_ms: u64,
    peak_mg: u32,
    pre: PreImpact,
    observation: Observation,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Looking for an impact.
    Watching,
    /// An impact opened a candidate; waiting for the body to settle, tracking the peak.
    Settling(Candidate),
    /// Measuring the posture and stillness after the impact.
    Observing(Candidate),
    /// A fall was reported; impacts are ignored until `until_ms`.
    Refractory { until_ms: u64 },
}

/// Averages input samples down to the processing rate.
#[derive(Debug, Clone, Copy, Default)]
struct Decimator {
    per_tick: u16,
    filled: u16,
    sum: [i32; 3],
}

/// The pendant's fall detector. Feed it every accelerometer sample with
/// [`handle_sample`](Self::handle_sample); it reports each fall once.
#[derive(Debug, Clone)]
pub struct FallDetector {
    config: FallConfig,
    decimator: Decimator,
    nominal_tick_ms: u32,
    last_tick_ms: Option<u64>,
    last_vector: Option<[i16; 3]>,
    magnitudes: MagnitudeHistory,
    postures: PostureHistory,
    phase: Phase,
    last_assessment: Option<FallAssessment>,
    assessments: u32,
    time_anomalies: u32,
}

impl FallDetector {
    /// A detector for `config`; a sample rate of zero is treated as one hertz.
    pub fn new(config: FallConfig) -> Self {
        let rate = config.sample_rate_hz.max(1);
        let per_tick = ((rate + PROCESSING_RATE_HZ / 2) / PROCESSING_RATE_HZ).max(1);
        let nominal_tick_ms = 1000 * u32::from(per_tick) / u32::from(rate);
        Self {
            config,
            decimator: Decimator {
                per_tick,
                filled: 0,
                sum: [0; 3],
            },
            nominal_tick_ms: nominal_tick_ms.max(1),
            last_tick_ms: None,
            last_vector: None,
            magnitudes: MagnitudeHistory::new(),
            postures: PostureHistory::new(),
            phase: Phase::Watching,
            last_assessment: None,
            assessments: 0,
            time_anomalies: 0,
        }
    }

    pub fn config(&self) -> &FallConfig {
        &self.config
    }

    /// Forgets all history and any candidate in progress (e.g. after the pendant was
    /// taken off its charger).
    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// The reasoning about the most recently decided impact candidate.
    pub fn last_assessment(&self) -> Option<&FallAssessment> {
        self.last_assessment.as_ref()
    }

    /// How many impact candidates have been decided so far.
    pub fn assessments(&self) -> u32 {
        self.assessments
    }

    /// Samples whose time went backwards or jumped by more than a second since the
    /// previous one (a clock or driver fault); each is processed as a 1 ms or 1 s step.
    pub fn time_anomalies(&self) -> u32 {
        self.time_anomalies
    }

    /// Feeds one sample taken at monotonic time `now_ms`. Returns a detection once per
    /// fall, as soon as the post-impact checks complete.
    pub fn handle_sample(&mut self, now_ms: u64, sample: AccelMg) -> Option<FallDetection> {
        let d = &mut self.decimator;
        d.sum[0] += i32::from(sample.x);
        d.sum[1] += i32::from(sample.y);
        d.sum[2] += i32::from(sample.z);
        d.filled += 1;
        if d.filled < d.per_tick {
            return None;
        }
        let n = i32::from(d.per_tick);
        let mean = d
            .sum
            .map(|s| i16::try_from(s / n).unwrap_or(if s < 0 { i16::MIN } else { i16::MAX }));
        *d = Decimator {
            per_tick: d.per_tick,
            filled: 0,
            sum: [0; 3],
        };
        self.handle_tick(now_ms, mean)
    }

    /// Input has ended (a recording, not a pendant): judges a candidate still being
    /// observed on what was observed, if that is at least
    /// [`FallConfig::min_observe_at_end_ms`]; otherwise records it as
    /// [`Verdict::Undecided`].
    pub fn finish(&mut self) -> Option<FallDetection> {
        match self.phase {
            Phase::Watching | Phase::Refractory { .. } => None,
            Phase::Settling(candidate) | Phase::Observing(candidate) => {
                self.phase = Phase::Watching;
                if candidate.observation.observed_ms >= self.config.min_observe_at_end_ms {
                    self.decide(candidate)
                } else {
                    let mut assessment = self.assess(&candidate);
                    assessment.verdict = Verdict::Undecided;
                    self.record(assessment);
                    None
                }
            }
        }
    }

    fn handle_tick(&mut self, now_ms: u64, v: [i16; 3]) -> Option<FallDetection> {
        let dt_ms = match self.last_tick_ms {
            Some(last) => {
                let elapsed = now_ms.saturating_sub(last);
                if elapsed == 0 || elapsed > 1000 {
                    self.time_anomalies = self.time_anomalies.saturating_add(1);
                }
                u32::try_from(elapsed).unwrap_or(u32::MAX).clamp(1, 1000)
            }
            None => self.nominal_tick_ms,
        };
        self.last_tick_ms = Some(now_ms);
        let mg = magnitude_mg(v[0], v[1], v[2]);
        let [x, y, z] = v.map(i32::from);
        // Change of the vector since the last tick: zero for a body at rest whatever its
        // posture or the sensor's offset.
        let jerk_mg = match self.last_vector {
            Some(last) => {
                let d =
                    |a: i16, b: i16| i16::try_from(i32::from(a) - i32::from(b)).unwrap_or(i16::MAX);
                magnitude_mg(d(v[0], last[0]), d(v[1], last[1]), d(v[2], last[2]))
            }
            None => 0,
        };
        self.last_vector = Some(v);

        let mut report = None;
        self.phase = match self.phase {
            Phase::Watching => self.watch(now_ms, mg),
            Phase::Refractory { until_ms } => {
                if now_ms >= until_ms {
                    self.watch(now_ms, mg)
                } else {
                    Phase::Refractory { until_ms }
                }
            }
            Phase::Settling(mut candidate) => {
                if mg > candidate.peak_mg {
                    // The impact is the hardest hit of the motion, not its first bump: a
                    // stumble before the fall, a knee before the hip. Anchor the candidate
                    // (its onset and pre-impact window) on the larger peak.
                    candidate = self.candidate_at(now_ms, mg);
                }
                if now_ms
                    >= candidate
                        .onset_ms
                        .saturating_add(u64::from(self.config.settle_ms))
                {
                    let (phase, fall) = self.observe(candidate, now_ms, dt_ms, jerk_mg, [x, y, z]);
                    report = fall;
                    phase
                } else {
                    Phase::Settling(candidate)
                }
            }
            Phase::Observing(candidate) => {
                if mg >= self.config.impact_mg {
                    // A new impact: the last one was not the end of the motion. Judge the
                    // new one on its own, with the old one in its pre-impact history.
                    self.open_candidate(now_ms, mg)
                } else {
                    let (phase, fall) = self.observe(candidate, now_ms, dt_ms, jerk_mg, [x, y, z]);
                    report = fall;
                    phase
                }
            }
        };

        self.magnitudes.push(MagnitudeTick {
            mg: u16::try_from(mg).unwrap_or(u16::MAX),
            dt_ms: u16::try_from(dt_ms).unwrap_or(u16::MAX),
        });
        self.postures.push(now_ms, dt_ms, x, y, z);
        report
    }

    /// Adds one tick to the post-impact observation; decides when it is complete.
    fn observe(
        &mut self,
        mut candidate: Candidate,
        now_ms: u64,
        dt_ms: u32,
        jerk_mg: u32,
        [x, y, z]: [i32; 3],
    ) -> (Phase, Option<FallDetection>) {
        let obs = &mut candidate.observation;
        obs.posture.add(x, y, z);
        // Saturating: a misconfigured, endless observation must not overflow.
        obs.observed_ms = obs.observed_ms.saturating_add(dt_ms);
        let squares: u64 = [x, y, z]
            .iter()
            .map(|&c| u64::from((c * c).unsigned_abs()))
            .sum();
        obs.square_sum = obs.square_sum.saturating_add(squares);
        obs.ticks = obs.ticks.saturating_add(1);
        if jerk_mg <= self.config.still_band_mg {
            obs.still_ms = obs.still_ms.saturating_add(dt_ms);
        }
        if obs.observed_ms < self.config.observe_ms {
            return (Phase::Observing(candidate), None);
        }
        match self.decide(candidate) {
            Some(fall) => (
                Phase::Refractory {
                    until_ms: now_ms.saturating_add(u64::from(self.config.refractory_ms)),
                },
                Some(fall),
            ),
            None => (Phase::Watching, None),
        }
    }

    fn watch(&self, now_ms: u64, mg: u32) -> Phase {
        if mg >= self.config.impact_mg {
            self.open_candidate(now_ms, mg)
        } else {
            Phase::Watching
        }
    }

    fn open_candidate(&self, now_ms: u64, mg: u32) -> Phase {
        Phase::Settling(self.candidate_at(now_ms, mg))
    }

    fn candidate_at(&self, now_ms: u64, mg: u32) -> Candidate {
        Candidate {
            onset_ms: now_ms,
            peak_mg: mg,
            pre: self.pre_impact(now_ms),
            observation: Observation::default(),
        }
    }

    /// Reads the histories (which end just before the impact tick).
    fn pre_impact(&self, onset_ms: u64) -> PreImpact {
        let mut min_mg = u32::MAX;
        let mut free_fall_ms = 0u32;
        // Largest sum over a contiguous stretch of (1 g − |a|)·dt (Kadane, newest first):
        // the speed gained while the body was not held up against gravity.
        let mut best: i64 = 0;
        let mut run: i64 = 0;
        let mut covered_ms = 0u32;
        for tick in self.magnitudes.iter_newest_first() {
            if covered_ms >= self.config.pre_window_ms {
                break;
            }
            covered_ms += u32::from(tick.dt_ms);
            min_mg = min_mg.min(u32::from(tick.mg));
            if u32::from(tick.mg) < self.config.free_fall_mg {
                free_fall_ms += u32::from(tick.dt_ms);
            }
            run = (run + (ONE_G_MG - i64::from(tick.mg)) * i64::from(tick.dt_ms)).max(0);
            best = best.max(run);
        }
        // mg·ms → mm/s: 1 mg·ms = 9.80665e-6 m/s = 9.80665e-3 mm/s.
        let descent_mm_s = u32::try_from(best * 980_665 / 100_000_000).unwrap_or(u32::MAX);
        let from = onset_ms.saturating_sub(u64::from(self.config.posture_before_from_ms));
        let to = onset_ms.saturating_sub(u64::from(self.config.posture_before_to_ms));
        PreImpact {
            min_mg: if min_mg == u32::MAX { 0 } else { min_mg },
            free_fall_ms,
            descent_mm_s,
            posture: self.posture_before(from, to),
        }
    }

    /// The posture over the blocks ending within `[from, to]`; with less history than
    /// that (just switched on, or a recording that starts shortly before the impact),
    /// the oldest block there is, the nearest to "before the fall" available.
    fn posture_before(&self, from: u64, to: u64) -> VecSum {
        let window = self.postures.sum_ending_within(from, to);
        if window.is_zero() {
            self.postures.oldest().unwrap_or_default()
        } else {
            window
        }
    }

    fn assess(&self, candidate: &Candidate) -> FallAssessment {
        let obs = &candidate.observation;
        let orientation_change_deg = angle_deg(&candidate.pre.posture, &obs.posture);
        let activity_mg = spread_mg(obs);
        let c = &self.config;
        let verdict = if candidate.pre.descent_mm_s < c.min_descent_mm_s {
            Verdict::NoDescent
        } else if orientation_change_deg.is_none_or(|deg| deg < c.min_orientation_change_deg) {
            Verdict::NoOrientationChange
        } else if u64::from(obs.still_ms) * 100
            < u64::from(obs.observed_ms) * u64::from(c.min_still_pct)
            || obs.observed_ms == 0
        {
            Verdict::NotStill
        } else {
            Verdict::Fall
        };
        FallAssessment {
            verdict,
            impact_at_ms: candidate.onset_ms,
            peak_mg: candidate.peak_mg,
            min_pre_mg: candidate.pre.min_mg,
            free_fall_ms: candidate.pre.free_fall_ms,
            descent_mm_s: candidate.pre.descent_mm_s,
            orientation_change_deg,
            stillness_ms: obs.still_ms,
            observed_ms: obs.observed_ms,
            activity_mg,
        }
    }

    fn decide(&mut self, candidate: Candidate) -> Option<FallDetection> {
        let assessment = self.assess(&candidate);
        self.record(assessment);
        match assessment.verdict {
            Verdict::Fall => Some(FallDetection {
                impact_at_ms: assessment.impact_at_ms,
                free_fall_ms: assessment.free_fall_ms,
                peak_mg: assessment.peak_mg,
                stillness_ms: assessment.stillness_ms,
                orientation_change_deg: assessment.orientation_change_deg.unwrap_or(0),
            }),
            Verdict::NoDescent
            | Verdict::NoOrientationChange
            | Verdict::NotStill
            | Verdict::Undecided => None,
        }
    }

    fn record(&mut self, assessment: FallAssessment) {
        self.last_assessment = Some(assessment);
        self.assessments = self.assessments.wrapping_add(1);
    }
}

/// Root-mean-square distance of the observed vectors from their mean, milli-g: how much
/// the wearer moved (translation or rotation) while observed.
fn spread_mg(obs: &Observation) -> u32 {
    if obs.ticks == 0 {
        return 0;
    }
    let n = i128::from(obs.ticks);
    let p = &obs.posture;
    let mean_sq = (i128::from(p.x).pow(2) + i128::from(p.y).pow(2) + i128::from(p.z).pow(2)) / n;
    let variance_sum = (i128::from(obs.square_sum) - mean_sq).max(0) / n;
    u32::try_from(u64::try_from(variance_sum).unwrap_or(u64::MAX).isqrt()).unwrap_or(u32::MAX)
}
