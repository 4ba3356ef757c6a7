//! `vigil water-check` and `vigil water-eval`: the server's water detectors on a recorded series.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use vigil_server::detection::water::{
    eval, parse_timezone, recordings, synthetic, WaterAction, WaterDetector, WaterRules,
};

/// Reads `epoch_seconds,litres` lines on stdin and prints `epoch_seconds,rule,raised|cleared,severity`.
pub fn check(timezone: &str) -> ExitCode {
    match check_inner(timezone) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil water-check: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn parse_line(line: &str, number: usize) -> anyhow::Result<(i64, f64)> {
    let Some((t, litres)) = line.split_once(',') else {
        bail!("line {number}: expected `epoch_seconds,litres`, found {line:?}");
    };
    let t = t
        .trim()
        .parse::<i64>()
        .with_context(|| format!("line {number}: expected integer epoch seconds, found {t:?}"))?;
    let litres = litres
        .trim()
        .parse::<f64>()
        .with_context(|| format!("line {number}: expected litres as a number, found {litres:?}"))?;
    Ok((t, litres))
}

fn check_inner(timezone: &str) -> anyhow::Result<()> {
    let tz = parse_timezone(timezone)?;
    let rules = Arc::new(WaterRules::default());
    let mut detector = WaterDetector::new(Arc::clone(&rules), tz);
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last: Option<i64> = None;
    for (index, line) in stdin.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let (t, litres) = parse_line(&line, number)?;
        let minute_start = t.div_euclid(60) * 60;
        if let Some(previous) = last {
            if minute_start <= previous {
                bail!(
                    "line {number}: minute {minute_start} is not after the previous line's minute {previous}: the series must be in time order, one line per minute"
                );
            }
        }
        last = Some(minute_start);
        let start = time(minute_start, number)?;
        // Deadlines that fall in a bridged hole before this minute.
        while let Some(deadline) = detector.next_deadline() {
            if deadline >= start {
                break;
            }
            detector.handle_timeout(deadline);
            emit(&mut detector, &rules, &mut out)?;
        }
        detector
            .handle_reading(start, litres, time(minute_start + 60, number)?)
            .with_context(|| format!("line {number}"))?;
        emit(&mut detector, &rules, &mut out)?;
    }
    // After the last line only bridged deadlines can still fire.
    while let Some(deadline) = detector.next_deadline() {
        detector.handle_timeout(deadline);
        emit(&mut detector, &rules, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

fn time(epoch: i64, number: usize) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp(epoch, 0)
        .with_context(|| format!("line {number}: epoch {epoch} is out of range"))
}

fn emit(
    detector: &mut WaterDetector,
    rules: &WaterRules,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    while let Some(action) = detector.poll_action() {
        match action {
            WaterAction::Raise {
                kind, severity, at, ..
            } => {
                writeln!(out, "{},{},raised,{}", at.timestamp(), kind, severity)?;
            }
            WaterAction::Clear { kind, at } => {
                let severity = rules.severity_of(kind).map_or("", |s| s.as_str());
                writeln!(out, "{},{},cleared,{}", at.timestamp(), kind, severity)?;
            }
            // Not an alert: the resident was marked away (never, on a recorded series).
            WaterAction::Suppressed { .. } => {}
        }
    }
    Ok(())
}

/// Runs the evaluation on the real recordings and prints the tables of `docs/detection.md`.
pub fn evaluate(data: Option<PathBuf>, export: Option<PathBuf>) -> ExitCode {
    let dir = data.unwrap_or_else(recordings::data_dir);
    let mut status = ExitCode::SUCCESS;
    for (name, load) in [
        (
            "weusedto",
            recordings::weusedto as fn(&std::path::Path) -> _,
        ),
        ("ciws", recordings::ciws),
    ] {
        match load(&dir) {
            Ok(series) => {
                if let Some(dir) = &export {
                    if let Err(e) = export_series(dir, &series) {
                        eprintln!("vigil water-eval: exporting {name}: {e:#}");
                        status = ExitCode::from(1);
                    }
                }
                println!(
                    "{}",
                    eval::render(&eval::evaluate_series(&series, EVAL_SEED))
                );
            }
            Err(e) => {
                eprintln!("vigil water-eval: {name}: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    let resident = synthetic::resident_at_home(180, 1, chrono_tz::Europe::Rome);
    println!(
        "{}",
        eval::render(&eval::evaluate_series(&resident, EVAL_SEED))
    );
    // Held-out households: no rule was tuned on these.
    let rule_sets = eval::compared_rule_sets();
    let residents: Vec<_> = (2..=6)
        .map(|seed| synthetic::resident_at_home(120, seed, chrono_tz::Europe::Rome))
        .collect();
    println!(
        "{}",
        eval::render_population(&eval::evaluate_population(
            "synthetic residents at home, seeds 2–6",
            &residents,
            EVAL_SEED,
            &rule_sets,
        ))
    );
    let simulated = simulated_residents(SIMULATED_RESIDENTS, 120);
    println!(
        "{}",
        eval::render_population(&eval::evaluate_population(
            "simulator residents drawn around the WEUSEDTO occupant (`ResidentProfile::calibrated().draw`)",
            &simulated,
            EVAL_SEED,
            &rule_sets,
        ))
    );
    status
}

/// Simulated households in the evaluation (seeds 1..=N).
const SIMULATED_RESIDENTS: u64 = 8;

/// `n` residents of the simulator's behaviour model, each a different draw around the calibrated
/// WEUSEDTO occupant, living `days` days in Asia/Shanghai (no DST) from Monday 2024-01-01.
fn simulated_residents(n: u64, days: u32) -> Vec<recordings::MinuteSeries> {
    use rand::SeedableRng;
    use vigil_sim::behaviour::{simulate_household, ResidentProfile, Weekday};
    let tz = chrono_tz::Asia::Shanghai;
    // 2024-01-01 00:00 in Shanghai (UTC+8, no DST), a Monday.
    let start = 1_704_038_400;
    (1..=n)
        .map(|seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let profile = ResidentProfile::calibrated().draw(&mut rng);
            let trace = simulate_household(&profile, Weekday::MONDAY, days, &mut rng);
            let minutes = trace
                .water_per_minute()
                .into_iter()
                .enumerate()
                .map(|(i, ml)| (start + i as i64 * 60, f64::from(ml) / 1000.0))
                .collect();
            recordings::MinuteSeries {
                household: format!("simulated resident {seed}"),
                timezone: tz,
                minutes,
            }
        })
        .collect()
}

/// The seed of the emergency start times, fixed so the figures in `docs/detection.md` reproduce.
const EVAL_SEED: u64 = 5;

fn export_series(dir: &std::path::Path, series: &recordings::MinuteSeries) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.csv", series.household));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for (t, litres) in &series.minutes {
        writeln!(out, "{t},{litres:.3}")?;
    }
    out.flush()?;
    eprintln!(
        "wrote {} ({} minutes, timezone {})",
        path.display(),
        series.minutes.len(),
        series.timezone
    );
    Ok(())
}
