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
pub use crate::fall_report::{
    evaluate, evaluate_with, EvalSetup, Evaluation, GroupSummary, TrialOutcome,
};

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

/// SisFall's two accelerometers (both on the same waist-worn board).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sensor {
    /// Columns 1–3: 13 bits, ±16 g. The one the figures are reported on.
    #[default]
    Adxl345,
    /// Columns 7–9: 14 bits, ±8 g.
    Mma8451q,
}

impl Sensor {
    fn first_column(self) -> usize {
        match self {
            Sensor::Adxl345 => 0,
            Sensor::Mma8451q => 6,
        }
    }

    /// g per raw count: `2 · range / 2^bits`.
    fn g_per_count(self) -> f64 {
        match self {
            Sensor::Adxl345 => 32.0 / 8192.0,
            Sensor::Mma8451q => 16.0 / 16384.0,
        }
    }
}

impl std::str::FromStr for Sensor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "adxl345" => Ok(Sensor::Adxl345),
            "mma8451q" => Ok(Sensor::Mma8451q),
            _ => Err(format!("expected adxl345 or mma8451q, found {s:?}")),
        }
    }
}

/// Reads one SisFall file: the ADXL345 columns, in g.
pub fn load_trial(path: &Path) -> Result<Vec<[f64; 3]>, EvalError> {
    load_trial_from(path, Sensor::Adxl345)
}

/// Reads one SisFall file: `sensor`'s columns, in g.
pub fn load_trial_from(path: &Path, sensor: Sensor) -> Result<Vec<[f64; 3]>, EvalError> {
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
        let mut raw = [0i32; 9];
        let mut fields = body.split(',');
        for value in &mut raw {
            let field = fields.next().ok_or_else(parse_error)?;
            *value = field.trim().parse().map_err(|_| parse_error())?;
        }
        if fields.next().is_some() {
            return Err(parse_error());
        }
        let first = sensor.first_column();
        let scale = sensor.g_per_count();
        samples.push([0, 1, 2].map(|axis| f64::from(raw[first + axis]) * scale));
    }
    Ok(samples)
}

/// How a recording is brought down to the pendant's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resampling {
    /// Average each output period (anti-aliased, what the figures use).
    #[default]
    Average,
    /// Keep the sample at the start of each output period (no anti-aliasing: sharper
    /// peaks, as a tool that simply decimates would feed `vigil fall-check`).
    Pick,
}

impl std::str::FromStr for Resampling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "average" => Ok(Resampling::Average),
            "pick" => Ok(Resampling::Pick),
            _ => Err(format!("expected average or pick, found {s:?}")),
        }
    }
}

/// Resamples with `mode`.
pub fn resample_with(
    samples: &[[f64; 3]],
    from_hz: f64,
    to_hz: f64,
    mode: Resampling,
) -> Vec<[f64; 3]> {
    match mode {
        Resampling::Average => resample(samples, from_hz, to_hz),
        Resampling::Pick => {
            if samples.is_empty() || from_hz <= 0.0 || to_hz <= 0.0 {
                return Vec::new();
            }
            let outputs = (samples.len() as f64 / from_hz * to_hz).floor() as usize;
            (0..outputs)
                .filter_map(|k| {
                    samples
                        .get(((k as f64) * from_hz / to_hz).round() as usize)
                        .copied()
                })
                .collect()
        }
    }
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
    for (i, &g) in samples_g.iter().enumerate() {
        if let Some(fall) = detector.handle_sample(sample_time_ms(i, rate_hz), to_accel_mg(g)) {
            run.alarms_ms.push(fall.impact_at_ms);
        }
        collect(&detector, &mut run, &mut seen);
    }
    if let Some(fall) = detector.finish() {
        run.alarms_ms.push(fall.impact_at_ms);
    }
    collect(&detector, &mut run, &mut seen);
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fall_report::TrialOutcome;

    #[test]
    fn trial_ids_are_parsed_from_sisfall_file_names() {
        let id = TrialId::from_file_name("F05_SA01_R04.txt").expect("valid");
        assert_eq!(
            (id.kind, id.code, id.group, id.subject.as_str(), id.trial),
            (TrialKind::Fall, 5, AgeGroup::Young, "SA01", 4)
        );
        assert_eq!(id.code_label(), "F05");
        let id = TrialId::from_file_name("D17_SE04_R02.txt").expect("valid");
        assert_eq!(
            (id.kind, id.group, id.code_label()),
            (
                TrialKind::DailyActivity,
                AgeGroup::Elderly,
                "D17".to_owned()
            )
        );
        for bad in [
            "Readme.txt",
            "X01_SA01_R01.txt",
            "F01_SX01_R01.txt",
            "F01_SA01_01.txt",
            "F01_SA01_R01.csv",
            "F01_SA01_R01_x.txt",
        ] {
            assert_eq!(TrialId::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sisfall_lines_are_read_as_adxl345_g_and_bad_lines_are_typed_errors() {
        let dir = std::env::temp_dir().join(format!("vigil-sisfall-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.txt");
        std::fs::write(
            &good,
            "  -9,-257, -25,  84, 247,  27,-120,-987,  63;\n 256,0,0,0,0,0,0,0,0;\n",
        )
        .expect("write");
        let samples = load_trial(&good).expect("parses");
        assert_eq!(samples.len(), 2);
        assert!((samples[0][1] - (-257.0 * 32.0 / 8192.0)).abs() < 1e-12);
        assert!((samples[1][0] - 1.0).abs() < 1e-12);
        for (name, text) in [
            ("nosemi.txt", "1,2,3,4,5,6,7,8,9\n"),
            ("short.txt", "1,2,3;\n"),
            ("text.txt", "a,2,3,4,5,6,7,8,9;\n"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            assert!(
                matches!(load_trial(&path), Err(EvalError::Parse { line: 1, .. })),
                "{name}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn resampling_averages_each_output_period() {
        let input: Vec<[f64; 3]> = (0..8).map(|i| [f64::from(i), 0.0, 1.0]).collect();
        let out = resample(&input, 200.0, 50.0);
        assert_eq!(out, vec![[1.5, 0.0, 1.0], [5.5, 0.0, 1.0]]);
        assert!(resample(&[], 200.0, 50.0).is_empty());
        let picked = resample_with(&input, 200.0, 50.0, Resampling::Pick);
        assert_eq!(picked, vec![[0.0, 0.0, 1.0], [4.0, 0.0, 1.0]]);
    }

    #[test]
    fn the_mma8451q_columns_are_scaled_for_their_range() {
        let dir = std::env::temp_dir().join(format!("vigil-sisfall-mma-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.txt");
        std::fs::write(&path, "256,0,0,0,0,0,1024,-2048,0;\n").expect("write");
        let samples = load_trial_from(&path, Sensor::Mma8451q).expect("parses");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(samples, vec![[1.0, -2.0, 0.0]]);
        assert_eq!("MMA8451Q".parse::<Sensor>(), Ok(Sensor::Mma8451q));
        assert!("lis3dh".parse::<Sensor>().is_err());
    }

    #[test]
    fn conversion_to_milli_g_saturates() {
        assert_eq!(
            to_accel_mg([1.0, -2.5, 1e9]),
            AccelMg::new(1000, -2500, i16::MAX)
        );
    }

    fn outcome(name: &str, vigil: usize, classic: usize, seconds: f64) -> TrialOutcome {
        TrialOutcome {
            id: TrialId::from_file_name(name).expect("valid"),
            duration_s: seconds,
            vigil_alarms: vigil,
            classic_alarms: classic,
        }
    }

    #[test]
    fn summaries_count_sensitivity_quiet_trials_and_alarms_per_hour() {
        let evaluation = Evaluation {
            setup: EvalSetup::default(),
            trials: vec![
                outcome("F01_SA01_R01.txt", 1, 0, 15.0),
                outcome("F01_SA01_R02.txt", 0, 1, 15.0),
                outcome("D01_SA01_R01.txt", 2, 0, 1800.0),
                outcome("D01_SA01_R02.txt", 0, 0, 1800.0),
                outcome("D01_SE01_R01.txt", 0, 1, 3600.0),
            ],
        };
        let falls = evaluation.falls();
        assert_eq!(
            (
                falls.trials,
                falls.vigil_trials_alarmed,
                falls.classic_trials_alarmed
            ),
            (2, 1, 1)
        );
        assert!((falls.vigil_alarmed_share() - 0.5).abs() < 1e-12);
        let young = evaluation.daily_activities(AgeGroup::Young);
        assert!((young.vigil_quiet_share() - 0.5).abs() < 1e-12);
        assert!((young.vigil_alarms_per_hour() - 2.0).abs() < 1e-12);
        let elderly = evaluation.daily_activities(AgeGroup::Elderly);
        assert!((elderly.classic_alarms_per_hour() - 1.0).abs() < 1e-12);
        assert!((elderly.vigil_quiet_share() - 1.0).abs() < 1e-12);
        let table = evaluation.table();
        assert!(table.contains("sensitivity over 2 falls"), "{table}");
        assert!(
            table.contains("SA01_R02"),
            "the missed fall is named: {table}"
        );
    }
}
