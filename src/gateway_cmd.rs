//! `vigil gateway` and `vigil bench gateway`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use vigil_gateway::bench::{bench_gateway, BenchOptions};
use vigil_gateway::config::{GatewayConfig, MqttUrl};
use vigil_gateway::provisioning::{hash_secret, Provisioning};
use vigil_gateway::Gateway;

/// Run an edge gateway: the boards' local broker, the durable spool, the uplink to the
/// district's broker, and the local alarm console (see docs/gateway.md).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// Configuration file (TOML).
    #[arg(long, short, env = "VIGIL_GATEWAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Option<GatewayAction>,
}

#[derive(Subcommand)]
enum GatewayAction {
    /// Hash a board secret read from standard input, for the provisioning file.
    HashSecret,
    /// Check a configuration file and its provisioning file, then exit.
    Check {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Measure the gateway: sustained frames/s from boards to the upstream broker, and the drain
/// rate of a backlog spooled during an outage.
#[derive(Args)]
pub struct BenchGatewayArgs {
    /// The upstream broker to measure against.
    #[arg(
        long,
        env = "VIGIL_TEST_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    upstream: String,
    /// Frames the simulated boards send in the sustained run (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    frames: u64,
    /// Frames spooled during the simulated outage, then drained (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    drain_frames: u64,
    /// Simulated boards.
    #[arg(long, default_value_t = 100)]
    boards: usize,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run_gateway(args: GatewayArgs) -> anyhow::Result<()> {
    match args.action {
        Some(GatewayAction::HashSecret) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let secret = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!secret.is_empty(), "no secret on standard input");
            println!(
                "{}",
                hash_secret(secret).map_err(|e| anyhow::anyhow!("{e}"))?
            );
            Ok(())
        }
        Some(GatewayAction::Check { config }) => {
            let c = GatewayConfig::load(&config)?;
            let p = Provisioning::load(&c.provisioning)?;
            println!(
                "configuration OK: site {}, gateway {}, {} boards provisioned",
                c.site,
                c.gateway,
                p.len()
            );
            Ok(())
        }
        None => {
            let path = args
                .config
                .context("give --config FILE (or VIGIL_GATEWAY_CONFIG); see docs/gateway.md")?;
            let config = GatewayConfig::load(&path)?;
            init_logs();
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let gateway = Gateway::bind(config).await?;
                if let Some(addr) = gateway.boards_addr() {
                    println!("vigil gateway: boards' broker on {addr}");
                }
                println!(
                    "vigil gateway: console on http://{}/",
                    gateway.console_addr()
                );
                std::io::stdout().flush()?;
                gateway.run(shutdown_signal()).await?;
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn run_bench_gateway(args: BenchGatewayArgs) -> anyhow::Result<()> {
    init_logs();
    let upstream = MqttUrl::parse("--upstream", &args.upstream)?;
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(bench_gateway(BenchOptions {
        upstream,
        frames: args.frames,
        drain_frames: args.drain_frames,
        boards: args.boards,
    }))?;
    if report.sustained_frames > 0 {
        println!(
            "gateway sustained: {} frames from {} boards in {:.2} s = {:.0} frames/s (boards -> spool -> upstream broker)",
            report.sustained_frames,
            args.boards,
            report.sustained_secs,
            report.sustained_fps()
        );
    }
    if report.drain_frames > 0 {
        println!(
            "gateway drain: {} spooled frames in {:.2} s = {:.0} frames/s (spool filled in {:.1} s)",
            report.drain_frames,
            report.drain_secs,
            report.drain_fps(),
            report.fill_secs
        );
    }
    Ok(())
}
