//! `vigil`: one command line for the whole system. Thin: it parses flags, builds
//! configurations and calls the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sim_cmd;

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
    Gateway,
    /// Simulate homes and facilities, run scenarios, evaluate detection.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Benchmarks that print figures.
    Bench,
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
        Command::Gateway => not_built_yet("gateway", 6),
        Command::Sim(command) => sim_cmd::run(command).unwrap_or_else(|e| {
            eprintln!("vigil sim: {e:#}");
            ExitCode::FAILURE
        }),
        Command::Bench => not_built_yet("bench", 4),
    }
}
