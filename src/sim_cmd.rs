//! `vigil sim …`: simulators, scenarios and the behaviour model's calibration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use vigil_sim::behaviour::{simulate_household, ResidentProfile, Weekday};
use vigil_sim::calibration::{
    compare, default_data_dir, load_weusedto, simulated_days, Statistics,
};

#[derive(Subcommand)]
pub enum SimCommand {
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
}

pub fn run(command: SimCommand) -> anyhow::Result<ExitCode> {
    match command {
        SimCommand::Calibrate {
            data_dir,
            days,
            seed,
        } => calibrate(data_dir.unwrap_or_else(default_data_dir), days, seed),
    }
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
