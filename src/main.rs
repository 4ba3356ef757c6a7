//! `vigil`: one command line for the whole system. Thin: it parses flags, builds
//! configurations and calls the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod server_cmd;

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
    Server(server_cmd::ServerArgs),
    /// Run an edge gateway.
    Gateway,
    /// Simulate homes and facilities, run scenarios, evaluate detection.
    Sim,
    /// Benchmarks that print figures.
    Bench(bench_cmd::BenchArgs),
}

fn not_built_yet(what: &str, issue: u32) -> ExitCode {
    eprintln!("vigil {what}: not built yet (tracked in issue #{issue}).");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => not_built_yet("demo", 7),
        Command::Server(args) => server_cmd::run(args),
        Command::Gateway => not_built_yet("gateway", 6),
        Command::Sim => not_built_yet("sim", 7),
        Command::Bench(args) => bench_cmd::run(args),
    }
}
