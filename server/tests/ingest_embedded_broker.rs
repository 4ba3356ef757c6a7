//! `vigil server` without a broker URL: the embedded rumqttd takes gateway batches.

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::oneshot;
use vigil_server::config::ServerConfig;
use vigil_server::run::{run_with, Attachments, RunError};
use vigil_server::store::ReadingsQuery;

#[tokio::test]
async fn a_server_without_a_broker_url_ingests_through_its_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.broker.embedded.port = 0;
    config.database.data_dir = dir.path().to_owned();
    config.ingest.max_batch_delay_ms = 5;
    let sink = Collector::new("e-");
    let stats = std::sync::Arc::new(vigil_server::ingest::IngestStats::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(run_with(
        config,
        Attachments {
            sink: sink.clone(),
            stats: stats.clone(),
            ready: Some(ready_tx),
            // This test publishes ids nobody registered.
            directory: Some(std::sync::Arc::new(vigil_server::ingest::AcceptAllDevices)),
            ..Default::default()
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    let ready = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("ready in time")
        .expect("server starts");
    let broker = ready.broker.expect("an embedded broker was started");
    assert_ne!(broker.mqtt.port(), 0, "port 0 resolves to a real port");
    assert_eq!(ready.broker_url, format!("mqtt://{}", broker.mqtt));
    tokio::time::timeout(Duration::from_secs(30), stats.subscribed(2))
        .await
        .expect("ingest subscribes on the embedded broker");

    let now = now_ms() as u64;
    let frames: Vec<_> = (1..=5)
        .map(|s| (now, meter("e-m1", 1, s, 5, 3000)))
        .collect();
    let payload = batch("site-e", "gw-1", 1, &frames);
    let topic = "vigil/v1/site/site-e/gw/gw-1/batch".to_owned();
    publish(
        &ready.broker_url,
        vec![(topic.clone(), payload.clone()), (topic, payload)],
    )
    .await;
    sink.wait_until("five frames", |v| v.len() == 5).await;
    tokio::time::timeout(Duration::from_secs(30), stats.acknowledged(2))
        .await
        .expect("both copies acknowledged");
    let page = ready
        .store
        .readings(ReadingsQuery {
            device: device("e-m1"),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(page.readings.len(), 5);
    assert_eq!(
        sink.seen().len(),
        5,
        "the second copy was recognised as a duplicate"
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_busy_embedded_broker_port_is_a_clear_error_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.broker.embedded.port = port;
    config.database.data_dir = dir.path().to_owned();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        run_with(config, Attachments::default(), std::future::pending()),
    )
    .await
    .expect("fails at once");
    let err = result.unwrap_err();
    assert!(matches!(err, RunError::Broker(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&port.to_string()), "{message}");
    assert!(message.contains("--mqtt-port"), "{message}");
}
