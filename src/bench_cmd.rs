//! `vigil bench …`: measurements that print figures (recorded in docs/performance.md).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use vigil_server::bench::{run_ingest_bench, BenchBackend, IngestBenchOptions};
use vigil_server::bench_detection::{run_detection_bench, DetectionBenchOptions};

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

/// `vigil bench detection`: detector state per monitored subject and detection CPU per
/// reading, next to the ingest path's CPU per reading, in one run.
#[derive(Args, Debug)]
pub struct DetectionArgs {
    /// Households (each a resident with a water meter and a pendant).
    #[arg(long, default_value_t = 100_000)]
    subjects: u32,
    /// Care facilities with fire nodes (default: one per thousand households).
    #[arg(long)]
    facilities: Option<u32>,
    /// Fire nodes per facility.
    #[arg(long, default_value_t = 40)]
    fire_nodes: u32,
    /// Hours of traffic to feed.
    #[arg(long, default_value_t = 2)]
    hours: u32,
    /// Where the ingest phase's SQLite file goes (removed afterwards).
    #[arg(long, default_value = "target/bench-detection")]
    data_dir: std::path::PathBuf,
}

pub fn run_detection(a: DetectionArgs) -> ExitCode {
    let options = DetectionBenchOptions {
        subjects: a.subjects,
        facilities: a.facilities,
        fire_nodes_per_facility: a.fire_nodes,
        hours: a.hours,
        data_dir: a.data_dir,
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(run_detection_bench(
                &options,
                crate::heap_meter::thread_heap_bytes,
            ))
            .context("detection bench")
        });
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil bench detection: {e:#}");
            ExitCode::FAILURE
        }
    }
}
