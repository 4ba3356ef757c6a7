//! Runs both detectors over every SisFall trial and renders the figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use vigil_firmware::fall::FallConfig;

use crate::fall_eval::{
    load_trial_from, resample_with, run_vigil, AgeGroup, ClassicDetector, EvalError, Resampling,
    Sensor, TrialId, TrialKind, SISFALL_RATE_HZ,
};

/// What each detector did on one trial.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    pub id: TrialId,
    pub duration_s: f64,
    pub vigil_alarms: usize,
    pub classic_alarms: usize,
}

/// Counts for one group of trials (falls, or one age group's daily activities).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupSummary {
    pub trials: usize,
    pub hours: f64,
    /// Trials with at least one alarm.
    pub vigil_trials_alarmed: usize,
    pub classic_trials_alarmed: usize,
    pub vigil_alarms: usize,
    pub classic_alarms: usize,
}

impl GroupSummary {
    fn add(&mut self, t: &TrialOutcome) {
        self.trials += 1;
        self.hours += t.duration_s / 3600.0;
        self.vigil_trials_alarmed += usize::from(t.vigil_alarms > 0);
        self.classic_trials_alarmed += usize::from(t.classic_alarms > 0);
        self.vigil_alarms += t.vigil_alarms;
        self.classic_alarms += t.classic_alarms;
    }

    /// Share of trials alarmed (sensitivity for falls).
    pub fn vigil_alarmed_share(&self) -> f64 {
        share(self.vigil_trials_alarmed, self.trials)
    }
    pub fn classic_alarmed_share(&self) -> f64 {
        share(self.classic_trials_alarmed, self.trials)
    }
    /// Share of trials without an alarm (specificity for daily activities).
    pub fn vigil_quiet_share(&self) -> f64 {
        1.0 - self.vigil_alarmed_share()
    }
    pub fn classic_quiet_share(&self) -> f64 {
        1.0 - self.classic_alarmed_share()
    }
    pub fn vigil_alarms_per_hour(&self) -> f64 {
        per_hour(self.vigil_alarms, self.hours)
    }
    pub fn classic_alarms_per_hour(&self) -> f64 {
        per_hour(self.classic_alarms, self.hours)
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn per_hour(count: usize, hours: f64) -> f64 {
    if hours == 0.0 {
        0.0
    } else {
        count as f64 / hours
    }
}

/// The whole evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub setup: EvalSetup,
    pub trials: Vec<TrialOutcome>,
}

/// How the recordings are read and resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalSetup {
    /// The pendant's sample rate, Hz.
    pub rate_hz: u32,
    pub sensor: Sensor,
    pub resampling: Resampling,
}

impl Default for EvalSetup {
    fn default() -> Self {
        Self {
            rate_hz: 50,
            sensor: Sensor::default(),
            resampling: Resampling::default(),
        }
    }
}

/// Evaluates both detectors over every trial under `dir` (searched one level deep) at
/// `rate_hz`, on the ADXL345 columns, averaged down to the rate.
pub fn evaluate(dir: &Path, rate_hz: u32, config: FallConfig) -> Result<Evaluation, EvalError> {
    evaluate_with(
        dir,
        &EvalSetup {
            rate_hz,
            ..EvalSetup::default()
        },
        config,
    )
}

/// Evaluates both detectors over every trial under `dir` with `setup`.
pub fn evaluate_with(
    dir: &Path,
    setup: &EvalSetup,
    config: FallConfig,
) -> Result<Evaluation, EvalError> {
    let rate_hz = setup.rate_hz;
    if !(1..=1000).contains(&rate_hz) {
        return Err(EvalError::BadRate(rate_hz));
    }
    let mut files = Vec::new();
    collect_trials(dir, 0, &mut files)?;
    if files.is_empty() {
        return Err(EvalError::NoTrials(dir.to_owned()));
    }
    files.sort();
    let config = FallConfig {
        sample_rate_hz: u16::try_from(rate_hz).unwrap_or(u16::MAX),
        ..config
    };
    let classic = ClassicDetector::default();
    let mut trials = Vec::with_capacity(files.len());
    for (id, path) in files {
        let samples = load_trial_from(&path, setup.sensor)?;
        let resampled = resample_with(
            &samples,
            SISFALL_RATE_HZ,
            f64::from(rate_hz),
            setup.resampling,
        );
        let vigil = run_vigil(config, &resampled, rate_hz);
        trials.push(TrialOutcome {
            duration_s: samples.len() as f64 / SISFALL_RATE_HZ,
            vigil_alarms: vigil.alarms_ms.len(),
            classic_alarms: classic.run(&resampled, rate_hz).len(),
            id,
        });
    }
    Ok(Evaluation {
        setup: *setup,
        trials,
    })
}

fn collect_trials(
    dir: &Path,
    depth: u8,
    out: &mut Vec<(TrialId, std::path::PathBuf)>,
) -> Result<(), EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| EvalError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() && depth == 0 {
            collect_trials(&path, depth + 1, out)?;
        } else if let Some(id) = entry.file_name().to_str().and_then(TrialId::from_file_name) {
            out.push((id, path));
        }
    }
    Ok(())
}

impl Evaluation {
    pub fn falls(&self) -> GroupSummary {
        self.summary(|t| t.id.kind == TrialKind::Fall)
    }

    pub fn daily_activities(&self, group: AgeGroup) -> GroupSummary {
        self.summary(|t| t.id.kind == TrialKind::DailyActivity && t.id.group == group)
    }

    fn summary(&self, keep: impl Fn(&TrialOutcome) -> bool) -> GroupSummary {
        let mut s = GroupSummary::default();
        self.trials
            .iter()
            .filter(|t| keep(t))
            .for_each(|t| s.add(t));
        s
    }

    /// The figures as a plain-text report.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let sensor = match self.setup.sensor {
            Sensor::Adxl345 => "ADXL345",
            Sensor::Mma8451q => "MMA8451Q",
        };
        let resampling = match self.setup.resampling {
            Resampling::Average => "averaged",
            Resampling::Pick => "decimated without averaging",
        };
        let _ = writeln!(
            out,
            "Fall detection on SisFall ({sensor}, {resampling} to {} Hz)",
            self.setup.rate_hz
        );
        let _ = writeln!(out, "vigil = the firmware's FallDetector; classic = free fall < 0.6 g, impact > 2.5 g, posture > 45°, still\n");
        let mut by_code: BTreeMap<(TrialKind, u8), Vec<&TrialOutcome>> = BTreeMap::new();
        for t in &self.trials {
            by_code.entry((t.id.kind, t.id.code)).or_default().push(t);
        }
        let _ = writeln!(
            out,
            "{:<4} {:<48} {:>6} {:>7} {:>7}  vigil missed",
            "fall", "", "trials", "vigil", "classic"
        );
        for ((kind, code), trials) in &by_code {
            if *kind != TrialKind::Fall {
                continue;
            }
            let v = trials.iter().filter(|t| t.vigil_alarms > 0).count();
            let c = trials.iter().filter(|t| t.classic_alarms > 0).count();
            let missed: Vec<String> = trials
                .iter()
                .filter(|t| t.vigil_alarms == 0)
                .map(|t| trial_name(t))
                .collect();
            let _ = writeln!(
                out,
                "{:<4} {:<48} {:>6} {:>7} {:>7}  {}",
                trials[0].id.code_label(),
                activity_name(*kind, *code),
                trials.len(),
                v,
                c,
                missed.join(" ")
            );
        }
        let _ = writeln!(
            out,
            "\n{:<4} {:<48} {:>11} {:>11} {:>11}  vigil alarmed",
            "adl", "", "trials y/e", "vigil y/e", "classic y/e"
        );
        for ((kind, code), trials) in &by_code {
            if *kind != TrialKind::DailyActivity {
                continue;
            }
            let count = |g: AgeGroup, f: &dyn Fn(&TrialOutcome) -> bool| {
                trials.iter().filter(|t| t.id.group == g && f(t)).count()
            };
            let pair = |f: &dyn Fn(&TrialOutcome) -> bool| {
                format!(
                    "{}/{}",
                    count(AgeGroup::Young, f),
                    count(AgeGroup::Elderly, f)
                )
            };
            let alarmed: Vec<String> = trials
                .iter()
                .filter(|t| t.vigil_alarms > 0)
                .map(|t| trial_name(t))
                .collect();
            let _ = writeln!(
                out,
                "{:<4} {:<48} {:>11} {:>11} {:>11}  {}",
                trials[0].id.code_label(),
                activity_name(*kind, *code),
                pair(&|_| true),
                pair(&|t| t.vigil_alarms > 0),
                pair(&|t| t.classic_alarms > 0),
                alarmed.join(" ")
            );
        }
        let mut subjects: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for t in self.trials.iter().filter(|t| t.id.kind == TrialKind::Fall) {
            let entry = subjects.entry(t.id.subject.as_str()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(t.vigil_alarms > 0);
        }
        let per_subject: Vec<String> = subjects
            .iter()
            .map(|(s, (n, found))| format!("{s} {:.1} %", 100.0 * share(*found, *n)))
            .collect();
        let _ = writeln!(
            out,
            "\nvigil sensitivity per subject: {}",
            per_subject.join(", ")
        );
        let falls = self.falls();
        let young = self.daily_activities(AgeGroup::Young);
        let elderly = self.daily_activities(AgeGroup::Elderly);
        let _ = writeln!(out, "\n{:<52} {:>10} {:>10}", "summary", "vigil", "classic");
        let pct = |x: f64| format!("{:.1} %", 100.0 * x);
        let _ = writeln!(
            out,
            "{:<52} {:>10} {:>10}",
            format!("sensitivity over {} falls", falls.trials),
            pct(falls.vigil_alarmed_share()),
            pct(falls.classic_alarmed_share())
        );
        for (name, s) in [("young (SA)", young), ("elderly (SE)", elderly)] {
            let _ = writeln!(
                out,
                "{:<52} {:>10} {:>10}",
                format!("{name}: {} daily trials without false alarm", s.trials),
                pct(s.vigil_quiet_share()),
                pct(s.classic_quiet_share())
            );
            let _ = writeln!(
                out,
                "{:<52} {:>10.2} {:>10.2}",
                format!("{name}: false alarms per hour ({:.2} h)", s.hours),
                s.vigil_alarms_per_hour(),
                s.classic_alarms_per_hour()
            );
        }
        let mut all = young;
        all.trials += elderly.trials;
        all.hours += elderly.hours;
        all.vigil_alarms += elderly.vigil_alarms;
        all.classic_alarms += elderly.classic_alarms;
        all.vigil_trials_alarmed += elderly.vigil_trials_alarmed;
        all.classic_trials_alarmed += elderly.classic_trials_alarmed;
        let _ = writeln!(
            out,
            "{:<52} {:>10.2} {:>10.2}",
            format!("all: false alarms per hour ({:.2} h)", all.hours),
            all.vigil_alarms_per_hour(),
            all.classic_alarms_per_hour()
        );
        out
    }
}

fn trial_name(t: &TrialOutcome) -> String {
    format!("{}_R{:02}", t.id.subject, t.id.trial)
}

/// SisFall's description of each activity code (from its `Readme.txt`).
pub fn activity_name(kind: TrialKind, code: u8) -> &'static str {
    const FALLS: [&str; 15] = [
        "forward, walking, slip",
        "backward, walking, slip",
        "lateral, walking, slip",
        "forward, walking, trip",
        "forward, jogging, trip",
        "vertical, walking, fainting",
        "walking, fainting, hands on a table",
        "forward, trying to get up",
        "lateral, trying to get up",
        "forward, trying to sit down",
        "backward, trying to sit down",
        "lateral, trying to sit down",
        "forward, sitting, fainting or asleep",
        "backward, sitting, fainting or asleep",
        "lateral, sitting, fainting or asleep",
    ];
    const DAILY: [&str; 19] = [
        "walking slowly",
        "walking quickly",
        "jogging slowly",
        "jogging quickly",
        "stairs up and down slowly",
        "stairs up and down quickly",
        "sit slowly in a half-height chair, get up",
        "sit quickly in a half-height chair, get up",
        "sit slowly in a low chair, get up",
        "sit quickly in a low chair, get up",
        "sitting, try to get up, collapse into chair",
        "sitting, lie down slowly, sit up",
        "sitting, lie down quickly, sit up",
        "on the back, turn to the side and back",
        "standing, bend at the knees, get up",
        "standing, bend without the knees, get up",
        "get into a car, sit, get out",
        "stumble while walking",
        "gently jump (reach a high object)",
    ];
    let table: &[&str] = match kind {
        TrialKind::Fall => &FALLS,
        TrialKind::DailyActivity => &DAILY,
    };
    usize::from(code)
        .checked_sub(1)
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or("(unknown code)")
}
