//! `vigil`: one command line for the whole system. Thin: it parses flags, builds
//! configurations and calls the crates.

// The command line is a driver: it owns the real clock and hands `now` to the cores.
#![allow(clippy::disallowed_methods)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod demo_cmd;
mod detection_eval;
mod fall_check;
mod gateway_cmd;
mod heap_meter;
mod server_cmd;
mod sim_api;
mod sim_cmd;
mod sim_load;
mod sim_run;
mod sim_system;
mod user_cmd;
mod water_check;

// Counts heap bytes per thread for `vigil bench detection` (one thread-local add per
// allocation; see heap_meter.rs).
#[global_allocator]
static ALLOCATOR: heap_meter::CountingAllocator = heap_meter::CountingAllocator;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Safety monitoring for elderly people at home and in care facilities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine with a simulated district and a looping script
    /// of incidents; prints the API address and a login.
    Demo(demo_cmd::DemoArgs),
    /// Run the server: ingest, storage, detection, alerts, HTTP API.
    Server(server_cmd::ServerArgs),
    /// Run an edge gateway.
    Gateway(gateway_cmd::GatewayArgs),
    /// Simulate homes and facilities, run scenarios, evaluate detection.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Run the pendant's fall detector over one trace on stdin; prints FALL or NOFALL.
    FallCheck(fall_check::FallCheckArgs),
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Manage login users (operators, managers, supervisors, admins).
    User(user_cmd::UserArgs),
    /// Run the server's water detectors over one household's series (`epoch_seconds,litres` per minute on stdin).
    WaterCheck {
        /// The household's IANA timezone, e.g. Europe/Rome.
        #[arg(long)]
        timezone: String,
    },
    /// Evaluate the water rules on the real recordings (false alerts, detection delay).
    WaterEval {
        /// Data folder (default: env VIGIL_DATA_DIR, else ../shared/data).
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        /// Also write each household's series in the `water-check` input format to this folder.
        #[arg(long)]
        export: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Gateway throughput: sustained frames/s and backlog drain rate.
    Gateway(gateway_cmd::BenchGatewayArgs),
    /// Server ingest: readings/s committed to the store, against a bare MQTT subscriber.
    Ingest(bench_cmd::IngestArgs),
    /// Detection: detector state per subject and CPU per reading, against ingest's.
    Detection(bench_cmd::DetectionArgs),
}

fn exit_with(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo_cmd::run(args),
        Command::Server(args) => server_cmd::run(args),
        Command::Gateway(args) => exit_with(gateway_cmd::run_gateway(args)),
        Command::Sim(command) => sim_cmd::run(command).unwrap_or_else(|e| {
            eprintln!("vigil sim: {e:#}");
            ExitCode::FAILURE
        }),
        Command::FallCheck(args) => fall_check::run(args),
        Command::Bench { target } => match target {
            BenchTarget::Gateway(args) => exit_with(gateway_cmd::run_bench_gateway(args)),
            BenchTarget::Ingest(args) => bench_cmd::run(args),
            BenchTarget::Detection(args) => bench_cmd::run_detection(args),
        },
        Command::User(args) => user_cmd::main(args),
        Command::WaterCheck { timezone } => water_check::check(&timezone),
        Command::WaterEval { data, export } => water_check::evaluate(data, export),
    }
}
