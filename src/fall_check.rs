//! `vigil fall-check --rate HZ`: the pendant's fall detector as a command any evaluation
//! tool can drive. Reads `t_ms,ax_g,ay_g,az_g` lines on stdin, prints the detector's
//! reasoning on stderr and `FALL` or `NOFALL` as the last line on stdout.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use vigil_firmware::fall::FallAssessment;
use vigil_sim::fall_check::{check_trace, parse_rate};

#[derive(Args)]
pub struct FallCheckArgs {
    /// Sample rate of the trace, Hz (a whole number from 1 to 1000).
    #[arg(long, value_parser = parse_rate)]
    rate: u16,
}

pub fn run(args: FallCheckArgs) -> ExitCode {
    let stdin = std::io::stdin();
    let outcome = match check_trace(stdin.lock(), args.rate) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("vigil fall-check: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "vigil fall-check: {} samples at {} Hz",
        outcome.samples, args.rate
    );
    for assessment in &outcome.assessments {
        eprintln!("  {}", describe(assessment));
    }
    let verdict = if outcome.fall.is_some() {
        "FALL"
    } else {
        "NOFALL"
    };
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{verdict}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vigil fall-check: cannot write the verdict: {error}");
            ExitCode::FAILURE
        }
    }
}

fn describe(a: &FallAssessment) -> String {
    let angle = a
        .orientation_change_deg
        .map_or_else(|| "unknown".to_owned(), |d| format!("{d}°"));
    format!(
        "impact at {} ms: {:?}; peak {} mg, lowest before {} mg, free fall {} ms, descent {} mm/s, \
         orientation change {angle}, still {} of {} ms observed, spread {} mg",
        a.impact_at_ms,
        a.verdict,
        a.peak_mg,
        a.min_pre_mg,
        a.free_fall_ms,
        a.descent_mm_s,
        a.stillness_ms,
        a.observed_ms,
        a.activity_mg
    )
}
