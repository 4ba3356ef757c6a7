//! `vigil`: one command line for the whole system. Thin: it parses flags, builds
//! configurations and calls the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod gateway_cmd;

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
    /// Run the whole system on this machine with a simulated district.
    Demo,
    /// Run the server: ingest, storage, detection, alerts, HTTP API.
    Server,
    /// Run an edge gateway.
    Gateway(gateway_cmd::GatewayArgs),
    /// Simulate homes and facilities, run scenarios, evaluate detection.
    Sim,
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Gateway throughput: sustained frames/s and backlog drain rate.
    Gateway(gateway_cmd::BenchGatewayArgs),
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

fn not_built_yet(what: &str, issue: u32) -> ExitCode {
    eprintln!("vigil {what}: not built yet (tracked in issue #{issue}).");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => not_built_yet("demo", 7),
        Command::Server => not_built_yet("server", 4),
        Command::Gateway(args) => exit_with(gateway_cmd::run_gateway(args)),
        Command::Sim => not_built_yet("sim", 7),
        Command::Bench { target } => match target {
            BenchTarget::Gateway(args) => exit_with(gateway_cmd::run_bench_gateway(args)),
        },
    }
}
