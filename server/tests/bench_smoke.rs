//! Runs the ingest benchmark's code path at a small size on both backends, so that it does
//! not rot. No timing is asserted: figures come from `vigil bench ingest` on a quiet machine.

mod common;

use common::*;
use vigil_server::bench::{run_ingest_bench, BenchBackend, IngestBenchOptions};

fn options(backend: BenchBackend) -> IngestBenchOptions {
    IngestBenchOptions {
        backend,
        readings: 2_050,
        batch_entries: 100,
        devices: 40,
        broker_url: Some(mqtt_url()),
        postgres_url: Some(pg_url()),
        max_batch_readings: 1000,
    }
}

#[tokio::test]
async fn the_ingest_benchmark_runs_end_to_end_on_sqlite() {
    let report = run_ingest_bench(&options(BenchBackend::Sqlite))
        .await
        .unwrap();
    assert_eq!(report.messages, 21, "2 050 readings in batches of 100");
    assert!(report.stored_per_s > 0.0 && report.bare_per_s > 0.0);
    assert!(report.to_string().contains("ratio="));
}

#[tokio::test]
async fn the_ingest_benchmark_runs_end_to_end_on_postgres() {
    let report = run_ingest_bench(&options(BenchBackend::Postgres))
        .await
        .unwrap();
    assert_eq!(report.messages, 21);
    assert!(report.stored_per_s > 0.0 && report.bare_per_s > 0.0);
}

#[tokio::test]
async fn the_ingest_benchmark_runs_through_the_embedded_broker() {
    let mut o = options(BenchBackend::Sqlite);
    o.broker_url = None;
    let report = run_ingest_bench(&o).await.unwrap();
    assert!(
        report.broker.starts_with("mqtt://127.0.0.1:"),
        "{}",
        report.broker
    );
}
