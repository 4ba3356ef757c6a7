//! Evaluation of the pendant's fall detector on the SisFall recordings.
//!
//! Runs the firmware's own [`FallDetector`] over every trial, resampled to the pendant's
//! rate, exactly as the pendant would (the wearer never cancels), and beside it the
//! classic threshold detector ([`ClassicDetector`]) as a baseline. Reports, per fall type
//! and per daily activity, which trials alarmed, the sensitivity over falls, the share
//! of daily-activity trials without a false alarm (young and elderly subjects
//! separately) and false alarms per hour of daily activity.

use std::path::{Path, PathBuf};

use vigil_firmware::fall::{AccelMg, FallAssessment, FallConfig, FallDetector};

pub use crate::fall_classic::ClassicDetector;
pub use crate::fall_report::{evaluate, Evaluation, GroupSummary, TrialOutcome};

/// SisFall's sample rate.
pub const SISFALL_RATE_HZ: f64 = 200.0;

/// The default data folder: `<workspace>/../shared/data/sisfall`, or
/// `$VIGIL_DATA_DIR/sisfall`.
pub fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("VIGIL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
        });
    base.join("sisfall")
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: expected nine comma-separated integers ending with ';', found {found:?}"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        found: String,
    },
    #[error("no SisFall trials (files named like F01_SA01_R01.txt) under {0}")]
    NoTrials(PathBuf),
    #[error("sample rate must be between 1 and 1000 Hz, got {0}")]
    BadRate(u32),
}

/// Whether a trial is a fall or an activity of daily living.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrialKind {
    Fall,
    DailyActivity,
}

/// SisFall's two subject groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgeGroup {
    /// SA*: adults 19–30.
    Young,
    /// SE*: adults 60–75.
    Elderly,
}

/// Identifies a trial from its file name, e.g. `F05_SA01_R04.txt`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrialId {
    pub kind: TrialKind,
    /// 1..=15 for falls, 1..=19 for daily activities.
    pub code: u8,
    pub group: AgeGroup,
    pub subject: String,
    pub trial: u8,
}

impl TrialId {
    /// Parses `{F|D}nn_{SA|SE}nn_Rnn.txt`; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".txt")?;
        let mut parts = stem.split('_');
        let (activity, subject, trial) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let kind = match activity.get(..1)? {
            "F" => TrialKind::Fall,
            "D" => TrialKind::DailyActivity,
            _ => return None,
        };
        let code: u8 = activity.get(1..)?.parse().ok()?;
        let group = match subject.get(..2)? {
            "SA" => AgeGroup::Young,
            "SE" => AgeGroup::Elderly,
            _ => return None,
        };
        let trial: u8 = trial.strip_prefix('R')?.parse().ok()?;
        Some(Self {
            kind,
            code,
            group,
            subject: subject.to_owned(),
            trial,
        })
    }

    /// `F05`, `D17`.
    pub fn code_label(&self) -> String {
        let letter = match self.kind {
            TrialKind::Fall => 'F',
            TrialKind::DailyActivity => 'D',
        };
        format!("{letter}{:02}", self.code)
    }
}

/// Reads one SisFall file: the ADXL345 columns, in g.
pub fn load_trial(path: &Path) -> Result<Vec<[f64; 3]>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut samples = Vec::with_capacity(text.len() / 40);
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let parse_error = || EvalError::Parse {
            path: path.to_owned(),
            line: index + 1,
            found: trimmed.chars().take(80).collect(),
        };
        let body = trimmed.strip_suffix(';').ok_or_else(parse_error)?;
        let mut fields = body.split(',').map(|f| f.trim().parse::<i32>());
        let mut adxl = [0.0; 3];
        for axis in &mut adxl {
            let raw = fields
                .next()
                .ok_or_else(parse_error)?
                .map_err(|_| parse_error())?;
            *axis = f64::from(raw) * 32.0 / 8192.0;
        }
        if fields.count() != 6 {
            return Err(parse_error());
        }
        samples.push(adxl);
    }
    Ok(samples)
}

/// Resamples by averaging every input sample that falls in each output period (an
/// anti-aliasing box filter), as an accelerometer with on-chip averaging would deliver.
pub fn resample(samples: &[[f64; 3]], from_hz: f64, to_hz: f64) -> Vec<[f64; 3]> {
    if samples.is_empty() || from_hz <= 0.0 || to_hz <= 0.0 {
        return Vec::new();
    }
    let duration_s = samples.len() as f64 / from_hz;
    let outputs = (duration_s * to_hz).floor() as usize;
    let mut out = Vec::with_capacity(outputs);
    for k in 0..outputs {
        let start = ((k as f64) * from_hz / to_hz).round() as usize;
        let end = (((k + 1) as f64) * from_hz / to_hz).round() as usize;
        let end = end.clamp(start + 1, samples.len());
        let slice = &samples[start.min(samples.len() - 1)..end];
        let n = slice.len() as f64;
        let mut mean = [0.0; 3];
        for s in slice {
            for axis in 0..3 {
                mean[axis] += s[axis] / n;
            }
        }
        out.push(mean);
    }
    out
}

/// Converts g to the detector's milli-g, saturating at the `i16` range.
pub fn to_accel_mg(g: [f64; 3]) -> AccelMg {
    let mg = |v: f64| {
        (v * 1000.0)
            .round()
            .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
    };
    AccelMg::new(mg(g[0]), mg(g[1]), mg(g[2]))
}

/// Time of the `index`-th sample at `rate_hz`, ms.
pub fn sample_time_ms(index: usize, rate_hz: u32) -> u64 {
    (index as u64) * 1000 / u64::from(rate_hz)
}

/// What the firmware's detector did over one trace.
#[derive(Debug, Clone, Default)]
pub struct DetectorRun {
    /// Impact times of the reported falls, ms.
    pub alarms_ms: Vec<u64>,
    /// Every impact candidate the detector decided, in order.
    pub assessments: Vec<FallAssessment>,
}

/// Runs the firmware's detector over a trace in g at `rate_hz`, then tells it the input
/// ended (see [`FallDetector::finish`]).
pub fn run_vigil(config: FallConfig, samples_g: &[[f64; 3]], rate_hz: u32) -> DetectorRun {
    let mut detector = FallDetector::new(config);
    let mut run = DetectorRun::default();
    let mut seen = 0;
    let collect = |detector: &FallDetector, run: &mut DetectorRun, seen: &mut u32| {
        if detector.assessments() != *seen {
            *seen = detector.assessments();
            if let Some(a) = detector.last_assessment() {
                run.assessments.push(*a);
            }
        }
    };
    let mut last_ms = 0;
    for (i, &g) in samples_g.iter().enumerate() {
        last_ms = sample_time_ms(i, rate_hz);
        if let Some(fall) = detector.handle_sample(last_ms, to_accel_mg(g)) {
            run.alarms_ms.push(fall.impact_at_ms);
        }
        collect(&detector, &mut run, &mut seen);
    }
    if let Some(fall) = detector.finish(last_ms) {
        run.alarms_ms.push(fall.impact_at_ms);
    }
    collect(&detector, &mut run, &mut seen);
    run
}
