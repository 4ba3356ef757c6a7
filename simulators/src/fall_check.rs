//! The engine of `vigil fall-check`: reads one trace of `t_ms,ax_g,ay_g,az_g` lines and
//! runs the firmware's own [`FallDetector`] over it as the pendant would (the wearer
//! never cancels).
//!
//! End of input: a pendant never sees its input end, a recording does. When the trace
//! ends while an impact is still being judged, the detector judges it on the
//! post-impact data there is, provided at least
//! [`FallConfig::min_observe_at_end_ms`] of observation (by default the trace must reach
//! 1.5 s after the impact: 1 s to settle plus 0.5 s observed); with less, the impact is
//! reported as undecided on standard error and the answer is `NOFALL`.

use std::io::BufRead;

use vigil_firmware::fall::{FallAssessment, FallConfig, FallDetection, FallDetector};

use crate::fall_eval::to_accel_mg;

/// Largest accepted timestamp: about 31 years of milliseconds, far from any overflow.
pub const MAX_T_MS: f64 = 1.0e12;
/// Accepted sample rates.
pub const RATE_RANGE_HZ: std::ops::RangeInclusive<u16> = 1..=1000;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("line {line}: cannot read input: {source}")]
    Read { line: u64, source: std::io::Error },
    #[error("line {line}: expected 4 comma-separated fields t_ms,ax_g,ay_g,az_g, found {found} in {text:?}")]
    FieldCount {
        line: u64,
        found: usize,
        text: String,
    },
    #[error("line {line}: field {field} is not a number: {found:?}")]
    NotANumber {
        line: u64,
        field: &'static str,
        found: String,
    },
    #[error("line {line}: field {field} is not finite: {found:?}")]
    NotFinite {
        line: u64,
        field: &'static str,
        found: String,
    },
    #[error("line {line}: t_ms {t_ms} is outside 0..={MAX_T_MS}")]
    TimeOutOfRange { line: u64, t_ms: f64 },
    #[error("line {line}: t_ms {t_ms} is earlier than the previous sample's {previous_ms}")]
    TimeWentBack {
        line: u64,
        t_ms: u64,
        previous_ms: u64,
    },
}

/// One parsed sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSample {
    pub t_ms: u64,
    pub g: [f64; 3],
}

const FIELDS: [&str; 4] = ["t_ms", "ax_g", "ay_g", "az_g"];

/// Parses one line; `Ok(None)` for a blank line.
pub fn parse_line(line: u64, text: &str) -> Result<Option<TraceSample>, TraceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
    if fields.len() != FIELDS.len() {
        return Err(TraceError::FieldCount {
            line,
            found: fields.len(),
            text: trimmed.chars().take(80).collect(),
        });
    }
    let mut values = [0.0f64; 4];
    for ((value, field), name) in values.iter_mut().zip(&fields).zip(FIELDS) {
        let parsed: f64 = field.parse().map_err(|_| TraceError::NotANumber {
            line,
            field: name,
            found: (*field).to_owned(),
        })?;
        if !parsed.is_finite() {
            return Err(TraceError::NotFinite {
                line,
                field: name,
                found: (*field).to_owned(),
            });
        }
        *value = parsed;
    }
    let [t_ms, ax, ay, az] = values;
    if !(0.0..=MAX_T_MS).contains(&t_ms) {
        return Err(TraceError::TimeOutOfRange { line, t_ms });
    }
    Ok(Some(TraceSample {
        t_ms: t_ms.round() as u64,
        g: [ax, ay, az],
    }))
}

/// Parses a `--rate` value: a whole number of hertz in [`RATE_RANGE_HZ`] (`50` or
/// `50.0`).
pub fn parse_rate(text: &str) -> Result<u16, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a sample rate in hertz, found {text:?}"))?;
    let (low, high) = (*RATE_RANGE_HZ.start(), *RATE_RANGE_HZ.end());
    if !value.is_finite()
        || value.fract() != 0.0
        || value < f64::from(low)
        || value > f64::from(high)
    {
        return Err(format!(
            "sample rate must be a whole number of hertz from {low} to {high}, found {text:?}"
        ));
    }
    Ok(value as u16)
}

/// What the detector made of a trace.
#[derive(Debug, Clone, Default)]
pub struct CheckOutcome {
    /// The first fall reported, if any.
    pub fall: Option<FallDetection>,
    /// Every impact candidate decided, in order.
    pub assessments: Vec<FallAssessment>,
    pub samples: u64,
}

/// Runs the detector over every line of `input` at `rate_hz`.
pub fn check_trace(input: impl BufRead, rate_hz: u16) -> Result<CheckOutcome, TraceError> {
    let mut detector = FallDetector::new(FallConfig {
        sample_rate_hz: rate_hz,
        ..FallConfig::default()
    });
    let mut outcome = CheckOutcome::default();
    let mut seen = 0;
    let mut previous_ms: Option<u64> = None;
    for (index, text) in input.lines().enumerate() {
        let line = index as u64 + 1;
        let text = text.map_err(|source| TraceError::Read { line, source })?;
        let Some(sample) = parse_line(line, &text)? else {
            continue;
        };
        if let Some(previous_ms) = previous_ms.filter(|&p| sample.t_ms < p) {
            return Err(TraceError::TimeWentBack {
                line,
                t_ms: sample.t_ms,
                previous_ms,
            });
        }
        previous_ms = Some(sample.t_ms);
        outcome.samples += 1;
        let fall = detector.handle_sample(sample.t_ms, to_accel_mg(sample.g));
        outcome.fall = outcome.fall.or(fall);
        collect(&detector, &mut seen, &mut outcome.assessments);
    }
    let fall = detector.finish();
    outcome.fall = outcome.fall.or(fall);
    collect(&detector, &mut seen, &mut outcome.assessments);
    Ok(outcome)
}

fn collect(detector: &FallDetector, seen: &mut u32, out: &mut Vec<FallAssessment>) {
    if detector.assessments() != *seen {
        *seen = detector.assessments();
        out.extend(detector.last_assessment().copied());
    }
}
