//! `vigil sim …`: simulations and detection-quality evaluations.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use vigil_firmware::fall::FallConfig;
use vigil_sim::fall_eval;

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
        sensor: fall_eval::Sensor,
        /// How to reach the rate: average (anti-aliased) or pick (plain decimation).
        #[arg(long, default_value = "average")]
        resampling: fall_eval::Resampling,
    },
}

pub fn run(command: SimCommand) -> ExitCode {
    match command {
        SimCommand::FallEval {
            data,
            rate,
            sensor,
            resampling,
        } => {
            let dir = data.unwrap_or_else(fall_eval::default_data_dir);
            let setup = fall_eval::EvalSetup {
                rate_hz: rate,
                sensor,
                resampling,
            };
            match fall_eval::evaluate_with(&dir, &setup, FallConfig::default()) {
                Ok(evaluation) => {
                    print!("{}", evaluation.table());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("vigil sim fall-eval: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
