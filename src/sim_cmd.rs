//! `vigil sim …`: simulators, scenarios and the behaviour model's calibration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vigil_protocol::{SignalClass, UplinkBody};
use vigil_sim::behaviour::{simulate_household, ResidentProfile, Weekday};
use vigil_sim::calibration::{
    compare, default_data_dir, load_weusedto, simulated_days, Statistics,
};
use vigil_sim::load::LoadGenerator;
use vigil_sim::scenario::{Scenario, WallTime};
use vigil_sim::timeline::{Action, Cadence, Timeline};

use crate::detection_eval;

#[derive(Subcommand)]
pub enum SimCommand {
    /// Evaluate the pendant's fall detector (and the classic baseline) on SisFall.
    FallEval {
        /// SisFall folder (with SA01/, SE01/, …); default `../shared/data/sisfall`, or
        /// `$VIGIL_DATA_DIR/sisfall`.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The pendant's sample rate the recordings are resampled to, Hz.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Which of SisFall's accelerometers to read: adxl345 or mma8451q.
        #[arg(long, default_value = "adxl345")]
        sensor: vigil_sim::fall_eval::Sensor,
        /// How to reach the rate: average (anti-aliased) or pick (plain decimation).
        #[arg(long, default_value = "average")]
        resampling: vigil_sim::fall_eval::Resampling,
    },
    /// Compare the behaviour model with the real single-occupant recordings, side by side.
    Calibrate {
        /// Folder holding `water/weusedto/` (default: $VIGIL_DATA_DIR or ../shared/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Days to simulate.
        #[arg(long, default_value_t = 5000)]
        days: u32,
        #[arg(long, default_value_t = 2019)]
        seed: u64,
    },
    /// Parse and validate scenario files; print their incidents' ground truth.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the timeline a run of a scenario would play.
    Plan {
        file: PathBuf,
        /// Also list every routine board frame (meter readings, heartbeats).
        #[arg(long)]
        all: bool,
    },
    /// Run the server's water detectors over simulated households with incidents injected at
    /// random; report detection delay and false alerts per rule set (and on the real recordings).
    Evaluate {
        #[arg(long, default_value_t = 800)]
        households: u32,
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Incidents start after this many days (the history the adaptive rules learn from).
        #[arg(long, default_value_t = 28)]
        warmup_days: u32,
        /// Worker threads (default: the machine's cores). The figures do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Folder holding `water/weusedto/` for the real-recording replay (default:
        /// $VIGIL_DATA_DIR or ../shared/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Play a scenario against the real system with firmware-in-the-loop boards and check
    /// its expectations through the server's API; exits 1 when any fails.
    Run(crate::sim_run::RunArgs),
    /// N boards' frame streams at R frames/s: encoded only, or published to a broker over
    /// real MQTT connections with --broker.
    Load(crate::sim_load::LoadArgs),
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    match command {
        SimCommand::FallEval {
            data,
            rate,
            sensor,
            resampling,
        } => fall_eval(data, rate, sensor, resampling),
        SimCommand::Calibrate {
            data_dir,
            days,
            seed,
        } => calibrate(data_dir.unwrap_or_else(default_data_dir), days, seed),
        SimCommand::Check { files } => check(&files),
        SimCommand::Plan { file, all } => plan(&file, all),
        SimCommand::Evaluate {
            households,
            days,
            seed,
            warmup_days,
            threads,
            data_dir,
            json,
        } => evaluate(
            detection_eval::PopulationSetup {
                households,
                days,
                seed,
                warmup_days,
            },
            threads,
            data_dir,
            json,
        ),
        SimCommand::Run(args) => crate::sim_run::run(args),
        SimCommand::Load(args) => match args.broker.is_some() {
            true => crate::sim_load::run(args),
            false => load(args.boards, args.rate, args.seconds),
        },
    }
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for file in files {
        match Scenario::from_file(file) {
            Ok(s) => {
                println!(
                    "{}: ok: {} ({} site(s), {} device(s), {} incident(s), {} expectation(s))",
                    file.display(),
                    s.name,
                    s.sites.len(),
                    s.devices.len(),
                    s.incidents.len(),
                    s.expectations.len() + s.forbidden.len()
                );
                for i in &s.incidents {
                    let truth = i.ground_truth();
                    let alerts: Vec<String> = truth
                        .alerts
                        .iter()
                        .map(|a| format!("{} {} from {}", a.kind, a.subject, hms(a.from)))
                        .collect();
                    println!(
                        "  {:>9}  {:<22} {}",
                        hms(i.at),
                        format!("{} ({})", truth.what, truth.incident),
                        if alerts.is_empty() {
                            "no alert".into()
                        } else {
                            alerts.join("; ")
                        }
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plan(file: &std::path::Path, all: bool) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::from_file(file)?;
    let start = match scenario.start {
        Some(s) => s,
        None => {
            // The driver owns the clock: a scenario without a start begins now.
            #[allow(clippy::disallowed_methods)]
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            WallTime {
                unix_s: now.as_secs() as i64,
                utc_offset_min: 0,
            }
        }
    };
    let mut timeline = Timeline::build(&scenario, start, Cadence::default());
    let (mut routine, mut shown) = (0usize, 0usize);
    while let Some(s) = timeline.poll_action(Duration::MAX) {
        let line = match &s.action {
            Action::Uplink { device, body } => {
                let notable = match body {
                    UplinkBody::Button(_) | UplinkBody::Fall(_) => true,
                    UplinkBody::Fire(r) => match r.signal {
                        SignalClass::Normal => false,
                        SignalClass::Alarm | SignalClass::Supervisory | SignalClass::Trouble => {
                            true
                        }
                    },
                    UplinkBody::Meter(_) | UplinkBody::Heartbeat(_) => false,
                };
                if !notable && !all {
                    routine += 1;
                    continue;
                }
                format!("{device} sends {}", describe(body))
            }
            other => format!("{other:?}"),
        };
        shown += 1;
        println!("{:>9}  {line}", hms(s.at));
    }
    if !all {
        println!("({shown} action(s) shown, {routine} routine board frame(s) hidden: see --all)");
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(body: &UplinkBody) -> String {
    match body {
        UplinkBody::Meter(m) => format!(
            "meter reading: {} L in {} min, total {} L",
            m.slots_ml.iter().sum::<u32>() as f64 / 1000.0,
            m.slots_ml.len(),
            m.total_ml as f64 / 1000.0
        ),
        UplinkBody::Button(b) => format!("button {:?}", b.kind),
        UplinkBody::Fall(f) => format!("fall (cancelled: {})", f.cancelled),
        UplinkBody::Fire(r) => format!(
            "{} {} {} ({})",
            r.sensor.name(),
            r.value,
            r.unit.symbol(),
            r.signal.name()
        ),
        UplinkBody::Heartbeat(h) => format!("heartbeat, battery {} mV", h.battery_mv),
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn load(boards: usize, rate: f64, seconds: u64) -> anyhow::Result<ExitCode> {
    let mut generator = LoadGenerator::new(boards, rate)?;
    let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    let (mut frames, mut bytes) = (0u64, 0u64);
    // The driver owns the clock: it measures how fast frames are built and encoded.
    #[allow(clippy::disallowed_methods)]
    let began = std::time::Instant::now();
    while let Some(frame) = generator.poll_frame(Duration::from_secs(seconds)) {
        bytes += frame.encode(&mut buf)? as u64;
        frames += 1;
    }
    let elapsed = began.elapsed().as_secs_f64().max(1e-9);
    let mean = bytes as f64 / frames.max(1) as f64;
    println!("{boards} boards, {rate} frames/s requested over {seconds} s of traffic:");
    println!("  {frames} frames, {bytes} bytes (mean {mean:.0} B/frame)");
    let achieved = frames as f64 / elapsed;
    println!(
        "  built and encoded in {elapsed:.3} s: {achieved:.0} frames/s ({:.1}x the requested rate)",
        achieved / rate
    );
    println!("  (encoding only: add --broker mqtt://host:port to publish over MQTT)");
    Ok(ExitCode::SUCCESS)
}

fn calibrate(data_dir: PathBuf, days: u32, seed: u64) -> anyhow::Result<ExitCode> {
    let real_days = load_weusedto(&data_dir)
        .with_context(|| format!("loading the recordings under {}", data_dir.display()))?;
    let real = Statistics::measure(&real_days);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let trace = simulate_household(
        &ResidentProfile::calibrated(),
        Weekday::MONDAY,
        days,
        &mut rng,
    );
    let sim = Statistics::measure(&simulated_days(&trace));
    let comparison = compare(&real, &sim);
    print!("{comparison}");
    let failures = comparison.failures().count();
    if failures == 0 {
        println!("every statistic within tolerance");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failures} statistic(s) outside tolerance");
        Ok(ExitCode::FAILURE)
    }
}

fn fall_eval(
    data: Option<PathBuf>,
    rate: u32,
    sensor: vigil_sim::fall_eval::Sensor,
    resampling: vigil_sim::fall_eval::Resampling,
) -> anyhow::Result<ExitCode> {
    use vigil_sim::fall_eval;
    let dir = data.unwrap_or_else(fall_eval::default_data_dir);
    let setup = fall_eval::EvalSetup {
        rate_hz: rate,
        sensor,
        resampling,
    };
    let evaluation =
        fall_eval::evaluate_with(&dir, &setup, vigil_firmware::fall::FallConfig::default())
            .map_err(|e| anyhow::anyhow!("fall-eval: {e}"))?;
    print!("{}", evaluation.table());
    Ok(ExitCode::SUCCESS)
}

fn evaluate(
    setup: detection_eval::PopulationSetup,
    threads: Option<usize>,
    data_dir: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use vigil_server::detection::water::{eval, recordings};
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let rule_sets = detection_eval::compared_rule_sets();
    // The driver owns the clock: it reports how long the evaluation took.
    #[allow(clippy::disallowed_methods)]
    let began = std::time::Instant::now();
    let mut evaluation = detection_eval::evaluate(&setup, &rule_sets, threads)?;
    let dir = data_dir.unwrap_or_else(recordings::data_dir);
    match recordings::weusedto(&dir) {
        Ok(series) => {
            let sets = rule_sets
                .iter()
                .map(|s| (s.name.clone(), (*s.rules).clone()))
                .collect();
            let report = eval::evaluate_rule_sets(&series, setup.seed, sets);
            evaluation.real = Some(detection_eval::RealReplay::from_series_report(&report));
        }
        Err(e) => eprintln!("vigil sim evaluate: real-recording replay skipped: {e}"),
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&evaluation.to_json())?);
    } else {
        print!("{}", evaluation.render());
    }
    eprintln!(
        "evaluated in {:.1} s on {threads} thread(s)",
        began.elapsed().as_secs_f64()
    );
    // A report: the verdict on the targets is printed, not turned into a failure.
    Ok(ExitCode::SUCCESS)
}
