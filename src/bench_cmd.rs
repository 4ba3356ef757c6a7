//! `vigil bench …`: measurements that print figures (recorded in docs/performance.md).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use vigil_server::bench::{run_ingest_bench, BenchBackend, IngestBenchOptions};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

/// `vigil bench ingest`: readings per second committed by the server, against a bare MQTT
/// subscriber in the same run.
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Store(s) to measure.
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendChoice,
    /// Readings to publish per backend.
    #[arg(long, default_value_t = 1_000_000)]
    readings: u64,
    /// Readings per gateway batch message.
    #[arg(long, default_value_t = 100)]
    batch_entries: usize,
    /// Distinct boards.
    #[arg(long, default_value_t = 1000)]
    devices: u32,
    /// Broker to publish through ("embedded" starts rumqttd in-process).
    #[arg(long, env = "VIGIL_TEST_MQTT_URL", default_value = "embedded")]
    broker_url: String,
    /// PostgreSQL for the postgres backend (a schema is created and dropped).
    #[arg(
        long,
        env = "VIGIL_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Readings per server transaction (the server's default).
    #[arg(long, default_value_t = 40_000)]
    max_batch_readings: usize,
}

pub fn run(args: IngestArgs) -> ExitCode {
    crate::server_cmd::init_tracing();
    match bench(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(a: IngestArgs) -> anyhow::Result<()> {
    let backends = match a.backend {
        BackendChoice::Sqlite => vec![BenchBackend::Sqlite],
        BackendChoice::Postgres => vec![BenchBackend::Postgres],
        BackendChoice::Both => vec![BenchBackend::Sqlite, BenchBackend::Postgres],
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    for backend in backends {
        let options = IngestBenchOptions {
            backend,
            readings: a.readings,
            batch_entries: a.batch_entries,
            devices: a.devices,
            broker_url: (a.broker_url != "embedded").then(|| a.broker_url.clone()),
            postgres_url: Some(a.database_url.clone()),
            max_batch_readings: a.max_batch_readings,
        };
        let report = runtime
            .block_on(run_ingest_bench(&options))
            .with_context(|| format!("{} run", backend.name()))?;
        println!("{report}");
        println!("  broker: {}", report.broker);
    }
    Ok(())
}
