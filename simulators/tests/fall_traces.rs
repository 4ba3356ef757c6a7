//! The synthetic traces of `fall_traces` through the firmware's detector.

use vigil_firmware::fall::FallConfig;
use vigil_sim::fall_eval::run_vigil;
use vigil_sim::fall_traces;

fn alarms(trace: fn(u32) -> Vec<[f64; 3]>, rate_hz: u32) -> usize {
    let config = FallConfig {
        sample_rate_hz: rate_hz as u16,
        ..FallConfig::default()
    };
    let run = run_vigil(config, &trace(rate_hz), rate_hz);
    for a in &run.assessments {
        eprintln!("{rate_hz} Hz: {a:?}");
    }
    run.alarms_ms.len()
}

#[test]
fn hard_fall_with_lying_still_alarms_once_at_every_rate() {
    for rate in [25, 50, 100, 200] {
        assert_eq!(
            alarms(fall_traces::hard_fall_lying_still, rate),
            1,
            "at {rate} Hz"
        );
    }
}

#[test]
fn dropped_pendant_alarms_by_design() {
    // Documented decision: a dropped pendant looks like a faller (turned, still); the
    // cancel window handles it.
    assert_eq!(alarms(fall_traces::pendant_dropped, 50), 1);
}

#[test]
fn slow_slide_to_the_floor_is_missed_as_documented() {
    assert_eq!(alarms(fall_traces::slow_slide, 50), 0);
}

#[test]
fn lying_down_in_bed_does_not_alarm() {
    for rate in [25, 50, 100, 200] {
        assert_eq!(
            alarms(fall_traces::lying_down_in_bed, rate),
            0,
            "at {rate} Hz"
        );
    }
}

#[test]
fn jumping_in_place_does_not_alarm() {
    assert_eq!(alarms(fall_traces::jump_in_place, 50), 0);
}
