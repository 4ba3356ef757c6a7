//! The fall detector's phases on a virtual clock.

use super::*;

const UPRIGHT: AccelMg = AccelMg::new(0, 1000, 0);
const LYING: AccelMg = AccelMg::new(0, 0, 1000);
const DROPPING: AccelMg = AccelMg::new(0, 300, 0);

/// Feeds samples to a detector on a virtual clock, collecting detections with the time
/// they were reported.
struct Rig {
    detector: FallDetector,
    now_ms: u64,
    step_ms: u64,
    reports: [Option<(u64, FallDetection)>; 4],
    count: usize,
}

impl Rig {
    fn new(config: FallConfig) -> Self {
        let step_ms = 1000 / u64::from(config.sample_rate_hz);
        Self {
            detector: FallDetector::new(config),
            now_ms: 0,
            step_ms,
            reports: [None; 4],
            count: 0,
        }
    }

    fn at_50_hz() -> Self {
        Self::new(FallConfig::default())
    }

    fn feed(&mut self, sample: AccelMg, duration_ms: u64) -> &mut Self {
        for _ in 0..duration_ms / self.step_ms {
            if let Some(fall) = self.detector.handle_sample(self.now_ms, sample) {
                assert!(self.count < self.reports.len(), "too many reports");
                self.reports[self.count] = Some((self.now_ms, fall));
                self.count += 1;
            }
            self.now_ms += self.step_ms;
        }
        self
    }

    /// Standing, a 500 ms drop at 0.3 g, one impact sample, then lying still.
    fn fall(&mut self, peak: i16, lying_ms: u64) -> &mut Self {
        let step = self.step_ms;
        self.feed(UPRIGHT, 3000)
            .feed(DROPPING, 500)
            .feed(AccelMg::new(0, 0, peak), step)
            .feed(LYING, lying_ms)
    }

    fn first(&self) -> (u64, FallDetection) {
        self.reports[0].expect("a fall was reported")
    }
}

#[test]
fn standing_still_for_an_hour_never_alarms() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3_600_000);
    assert_eq!(rig.count, 0);
    assert_eq!(rig.detector.assessments(), 0);
}

#[test]
fn fall_is_reported_once_when_the_observation_completes() {
    let mut rig = Rig::at_50_hz();
    rig.fall(3000, 10_000);
    assert_eq!(rig.count, 1);
    let (reported_at, fall) = rig.first();
    assert_eq!(fall.impact_at_ms, 3500);
    // Settle 1000 ms, then 3000 ms of observation (ticks 4500, 4520, …, 7480): the last
    // observed tick completes it.
    assert_eq!(reported_at, 3500 + 1000 + 3000 - 20);
    assert_eq!(fall.peak_mg, 3000);
    assert_eq!(fall.free_fall_ms, 500);
    assert_eq!(fall.orientation_change_deg, 90);
    assert_eq!(fall.stillness_ms, 3000);
}

#[test]
fn nothing_is_reported_before_the_post_impact_checks_complete() {
    let mut rig = Rig::at_50_hz();
    // Lying ticks start at 3520; the observation's last tick is 7480.
    rig.fall(3000, 7480 - 3520);
    assert_eq!(rig.count, 0);
    rig.feed(LYING, 20);
    assert_eq!(rig.count, 1);
}

#[test]
fn impact_exactly_at_the_threshold_counts_and_one_milli_g_below_does_not() {
    let threshold = FallConfig::default().impact_mg as i16;
    let mut at = Rig::at_50_hz();
    at.fall(threshold, 10_000);
    assert_eq!(at.count, 1);
    let mut below = Rig::at_50_hz();
    below.fall(threshold - 1, 10_000);
    assert_eq!(below.count, 0);
    assert_eq!(
        below.detector.assessments(),
        0,
        "no candidate was even opened"
    );
}

#[test]
fn orientation_change_exactly_at_the_threshold_counts() {
    let at = FallConfig {
        min_orientation_change_deg: 90,
        ..FallConfig::default()
    };
    let mut rig = Rig::new(at);
    rig.fall(3000, 10_000);
    assert_eq!(rig.count, 1);
    let above = FallConfig {
        min_orientation_change_deg: 91,
        ..FallConfig::default()
    };
    let mut rig = Rig::new(above);
    rig.fall(3000, 10_000);
    assert_eq!(rig.count, 0);
    assert_eq!(
        rig.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::NoOrientationChange)
    );
}

#[test]
fn impact_without_a_change_of_posture_is_not_a_fall() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 3000, 0), 20)
        .feed(UPRIGHT, 10_000);
    assert_eq!(rig.count, 0);
    assert_eq!(
        rig.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::NoOrientationChange)
    );
}

#[test]
fn descent_exactly_at_the_threshold_counts() {
    let mut probe = Rig::new(FallConfig {
        min_descent_mm_s: 0,
        ..FallConfig::default()
    });
    probe.fall(3000, 10_000);
    let descent = probe
        .detector
        .last_assessment()
        .expect("assessed")
        .descent_mm_s;
    // 500 ms at 0.7 g below 1 g: 0.7 · 9.80665 m/s² · 0.5 s = 3432 mm/s.
    assert_eq!(descent, 3432);
    let mut at = Rig::new(FallConfig {
        min_descent_mm_s: descent,
        ..FallConfig::default()
    });
    at.fall(3000, 10_000);
    assert_eq!(at.count, 1);
    let mut above = Rig::new(FallConfig {
        min_descent_mm_s: descent + 1,
        ..FallConfig::default()
    });
    above.fall(3000, 10_000);
    assert_eq!(above.count, 0);
    assert_eq!(
        above.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::NoDescent)
    );
}

#[test]
fn a_knock_without_any_descent_is_not_a_fall() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 10_000);
    assert_eq!(rig.count, 0);
    assert_eq!(
        rig.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::NoDescent)
    );
}

#[test]
fn moving_on_after_the_impact_is_not_a_fall() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 0, 3000), 20);
    // Crawling about while lying: the vector swings 200 mg every tick.
    for _ in 0..200 {
        rig.feed(LYING, 20).feed(AccelMg::new(200, 0, 1000), 20);
    }
    assert_eq!(rig.count, 0);
    assert_eq!(
        rig.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::NotStill)
    );
}

/// A fall whose observation starts with `moving_ticks` ticks that each move 100 mg from
/// the last, then holds still.
fn fall_with_moving_ticks(moving_ticks: i16) -> (FallAssessment, usize) {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 980);
    let zigzag = |i: i16| AccelMg::new([0, 100, 200, 100][(i % 4) as usize], 0, 1000);
    for i in 1..=moving_ticks {
        rig.feed(zigzag(i), 20);
    }
    rig.feed(zigzag(moving_ticks), 5000);
    (
        rig.detector.last_assessment().copied().expect("assessed"),
        rig.count,
    )
}

#[test]
fn stillness_exactly_at_the_minimum_share_counts() {
    let config = FallConfig::default();
    assert_eq!((config.observe_ms, config.min_still_pct), (3000, 50));
    // 75 of 150 observed ticks moving: exactly 50 % still.
    let (assessment, reports) = fall_with_moving_ticks(75);
    assert_eq!(assessment.observed_ms, 3000);
    assert_eq!(assessment.stillness_ms, 1500, "{assessment:?}");
    assert_eq!(reports, 1);
}

#[test]
fn stillness_one_tick_short_of_the_minimum_share_is_not_a_fall() {
    let (assessment, reports) = fall_with_moving_ticks(76);
    assert_eq!(assessment.stillness_ms, 1480, "{assessment:?}");
    assert_eq!(assessment.verdict, Verdict::NotStill);
    assert_eq!(reports, 0);
}

#[test]
fn a_second_impact_during_the_refractory_time_is_not_reported_again() {
    let mut rig = Rig::at_50_hz();
    rig.fall(3000, 4000);
    assert_eq!(rig.count, 1);
    // Within the 10 s refractory time: the same fall's aftermath.
    rig.feed(UPRIGHT, 1000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 4000);
    assert_eq!(rig.count, 1);
}

#[test]
fn a_new_fall_after_the_refractory_time_is_reported() {
    let mut rig = Rig::at_50_hz();
    rig.fall(3000, 15_000);
    rig.fall(3000, 10_000);
    assert_eq!(rig.count, 2);
}

#[test]
fn a_larger_later_peak_anchors_the_impact() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000).feed(DROPPING, 500);
    rig.feed(AccelMg::new(0, 0, 2200), 20)
        .feed(DROPPING, 200)
        .feed(AccelMg::new(0, 0, 4000), 20);
    rig.feed(LYING, 10_000);
    let (_, fall) = rig.first();
    assert_eq!(fall.peak_mg, 4000);
    assert_eq!(fall.impact_at_ms, 3500 + 20 + 200);
}

#[test]
fn reset_forgets_a_candidate_in_progress() {
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 3000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 1500);
    rig.detector.reset();
    rig.feed(LYING, 10_000);
    assert_eq!(rig.count, 0);
    assert_eq!(rig.detector.assessments(), 0);
}

#[test]
fn an_impact_with_less_than_a_posture_block_of_history_has_no_posture_to_compare() {
    let mut rig = Rig::at_50_hz();
    rig.feed(DROPPING, 200)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 10_000);
    assert_eq!(rig.count, 0);
    let assessment = rig.detector.last_assessment().copied().expect("assessed");
    assert_eq!(assessment.orientation_change_deg, None);
    assert_eq!(assessment.verdict, Verdict::NoOrientationChange);
}

#[test]
fn an_impact_soon_after_the_start_compares_with_the_oldest_posture() {
    // 0.3 s upright, 0.4 s dropping: no block ends in the usual window (2.5 s to 0.75 s
    // before the impact at 700 ms); the oldest block, closed at 240 ms, is upright.
    let mut rig = Rig::at_50_hz();
    rig.feed(UPRIGHT, 300)
        .feed(DROPPING, 400)
        .feed(AccelMg::new(0, 0, 3000), 20)
        .feed(LYING, 10_000);
    let assessment = rig.detector.last_assessment().copied().expect("assessed");
    assert_eq!(assessment.orientation_change_deg, Some(90));
    assert_eq!(rig.count, 1);
}

#[test]
fn finish_judges_a_candidate_on_the_observation_there_is() {
    let mut rig = Rig::at_50_hz();
    rig.fall(3000, 1000 + 600);
    assert_eq!(rig.count, 0);
    let fall = rig.detector.finish().expect("judged at the end of input");
    assert_eq!(fall.impact_at_ms, 3500);
}

#[test]
fn finish_with_too_little_observation_is_undecided() {
    let mut rig = Rig::at_50_hz();
    rig.fall(3000, 1000 + 300);
    assert_eq!(rig.detector.finish(), None);
    assert_eq!(
        rig.detector.last_assessment().map(|a| a.verdict),
        Some(Verdict::Undecided)
    );
    assert_eq!(rig.detector.finish(), None, "finish is idempotent");
}

#[test]
fn faster_input_is_averaged_to_the_processing_rate() {
    let mut rig = Rig::new(FallConfig {
        sample_rate_hz: 200,
        ..FallConfig::default()
    });
    // At 200 Hz a 5 ms spike of 8 g averages with three 1 g samples to 2.75 g.
    rig.feed(UPRIGHT, 3000)
        .feed(DROPPING, 500)
        .feed(AccelMg::new(0, 0, 8000), 5)
        .feed(AccelMg::new(0, 0, 1000), 15);
    rig.feed(LYING, 10_000);
    let (_, fall) = rig.first();
    assert_eq!(fall.peak_mg, 2750);
}

#[test]
fn detector_state_fits_a_small_board() {
    let size = core::mem::size_of::<FallDetector>();
    assert!(size <= 1024, "FallDetector takes {size} bytes");
}

#[test]
fn time_going_backwards_or_jumping_is_counted_and_survived() {
    let mut detector = FallDetector::new(FallConfig::default());
    assert_eq!(detector.handle_sample(1000, UPRIGHT), None);
    assert_eq!(detector.handle_sample(500, UPRIGHT), None); // backwards
    assert_eq!(detector.handle_sample(500, UPRIGHT), None); // no time passed
    assert_eq!(detector.handle_sample(10_000, UPRIGHT), None); // 9.5 s gap
    assert_eq!(detector.handle_sample(u64::MAX, UPRIGHT), None); // gap
    assert_eq!(
        detector.handle_sample(10_020, AccelMg::new(0, 0, 3000)),
        None
    ); // backwards
    assert_eq!(detector.time_anomalies(), 5);
}

#[test]
fn full_scale_samples_at_the_end_of_time_do_not_panic() {
    let mut detector = FallDetector::new(FallConfig {
        sample_rate_hz: 1000,
        ..FallConfig::default()
    });
    let extremes = [
        AccelMg::new(i16::MIN, i16::MIN, i16::MIN),
        AccelMg::new(i16::MAX, i16::MAX, i16::MAX),
    ];
    for i in 0..20_000u64 {
        let _ = detector.handle_sample(u64::MAX - 20_000 + i, extremes[(i % 2) as usize]);
    }
    let _ = detector.finish();
}

#[test]
fn the_descent_window_covers_a_full_second_at_any_input_rate() {
    for rate in [25u16, 50, 60, 74, 99, 124, 149, 200, 1000] {
        let mut detector = FallDetector::new(FallConfig {
            sample_rate_hz: rate,
            min_descent_mm_s: 0,
            ..FallConfig::default()
        });
        let period_us = 1_000_000 / u64::from(rate);
        let mut n = 0u64;
        let mut feed = |detector: &mut FallDetector, sample: AccelMg, ms: u64| {
            for _ in 0..ms * 1000 / period_us {
                let _ = detector.handle_sample(n * period_us / 1000, sample);
                n += 1;
            }
        };
        feed(&mut detector, UPRIGHT, 3000);
        // 1.2 s at 0 g: only the last second counts.
        feed(&mut detector, AccelMg::new(0, 0, 0), 1200);
        feed(&mut detector, AccelMg::new(0, 0, 3000), 60);
        feed(&mut detector, LYING, 6000);
        let descent = detector.last_assessment().expect("assessed").descent_mm_s;
        // 1 g for 1 s is 9807 mm/s; the window ends on a whole tick.
        assert!(
            (9300..=10_300).contains(&descent),
            "{rate} Hz: {descent} mm/s"
        );
    }
}

/// xorshift64: deterministic pseudo-random input for the robustness test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_samples_times_and_configs_never_panic_and_report_at_most_once_per_refractory_time() {
    let mut seed = 0x5eed_fa11_u64;
    for _ in 0..200 {
        let r = |seed: &mut u64, bound: u64| next(seed) % bound;
        let config = FallConfig {
            sample_rate_hz: r(&mut seed, 2000) as u16,
            impact_mg: r(&mut seed, 40_000) as u32,
            free_fall_mg: r(&mut seed, 2000) as u32,
            pre_window_ms: r(&mut seed, 5000) as u32,
            min_descent_mm_s: r(&mut seed, 5000) as u32,
            posture_before_from_ms: r(&mut seed, 10_000) as u32,
            posture_before_to_ms: r(&mut seed, 10_000) as u32,
            settle_ms: if r(&mut seed, 10) == 0 {
                u32::MAX
            } else {
                r(&mut seed, 5000) as u32
            },
            observe_ms: if r(&mut seed, 10) == 0 {
                u32::MAX
            } else {
                r(&mut seed, 5000) as u32
            },
            min_orientation_change_deg: r(&mut seed, 200) as u16,
            still_band_mg: r(&mut seed, 500) as u32,
            min_still_pct: r(&mut seed, 150) as u32,
            min_observe_at_end_ms: r(&mut seed, 5000) as u32,
            refractory_ms: r(&mut seed, 20_000) as u32 + 1,
        };
        let mut detector = FallDetector::new(config);
        let mut now_ms = r(&mut seed, 1 << 40);
        let mut last_report: Option<u64> = None;
        for _ in 0..2000 {
            now_ms = match r(&mut seed, 100) {
                0 => now_ms.saturating_sub(r(&mut seed, 5000)),
                1 => now_ms.saturating_add(r(&mut seed, 100_000)),
                _ => now_ms.saturating_add(r(&mut seed, 40)),
            };
            let axis = |seed: &mut u64| match next(seed) % 4 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => (next(seed) % 8000) as i16 - 4000,
            };
            let sample = AccelMg::new(axis(&mut seed), axis(&mut seed), axis(&mut seed));
            if detector.handle_sample(now_ms, sample).is_some() {
                if let Some(previous) = last_report {
                    assert!(
                        now_ms.saturating_sub(previous) >= u64::from(config.refractory_ms)
                            || now_ms < previous,
                        "two reports within the refractory time: {config:?}"
                    );
                }
                last_report = Some(now_ms);
            }
        }
        let _ = detector.finish();
        if let Some(a) = detector.last_assessment() {
            assert!(a.orientation_change_deg.is_none_or(|d| d <= 180));
        }
    }
}
