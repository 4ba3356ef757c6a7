//! `vigil server` with default attachments takes its device directory from the registry:
//! frames of unregistered devices are quarantined, registered ones are stored, and a device
//! registered while the server runs is accepted without a restart — at once when written
//! through the server's registry, within `[registry] refresh_s` when written by another
//! instance on the same database.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::sync::oneshot;
use vigil_server::config::ServerConfig;
use vigil_server::ingest::IngestStats;
use vigil_server::registry::{
    Device, Registry, RegistryStore, Resident, Site, SiteFilter, SqliteRegistry, REGISTRY_FILE,
};
use vigil_server::run::{run_with, Attachments, Ready};
use vigil_server::store::{ReadingsQuery, SharedStore};

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("fixture decodes")
}

fn meter_json(id: &str) -> Device {
    from(json!({"id": id, "kind": "meter", "site_id": "home-r", "resident_id": "res-r"}))
}

async fn stored(store: &SharedStore, id: &str) -> usize {
    store
        .readings(ReadingsQuery {
            device: device(id),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            after: None,
            limit: 100,
        })
        .await
        .unwrap()
        .readings
        .len()
}

async fn send(ready: &Ready, stats: &IngestStats, batch_seq: u64, devices: &[&str]) {
    let before = stats.acked_count();
    let now = now_ms() as u64;
    let frames: Vec<_> = devices
        .iter()
        .map(|d| (now, meter(d, 1, batch_seq as u32, 5, 3000)))
        .collect();
    publish(
        &ready.broker_url,
        vec![(
            "vigil/v1/site/home-r/gw/gw-1/batch".into(),
            batch("home-r", "gw-1", batch_seq, &frames),
        )],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(30), stats.acknowledged(before + 1))
        .await
        .expect("the batch is committed and acknowledged");
}

#[tokio::test]
async fn the_registry_decides_which_devices_are_ingested_and_follows_changes_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Registered before the server starts.
    let outside: Arc<dyn RegistryStore> =
        Arc::new(SqliteRegistry::open(&dir.path().join(REGISTRY_FILE)).unwrap());
    let other_instance = Registry::new(Arc::clone(&outside));
    let all = SiteFilter::All;
    other_instance
        .create(
            &all,
            from::<Site>(
                json!({"id": "home-r", "kind": "household", "name": "Flat 9",
                "address": "9 Main Street", "timezone": "Europe/Rome"}),
            ),
        )
        .await
        .unwrap();
    other_instance
        .create(
            &all,
            from::<Resident>(json!({"id": "res-r", "site_id": "home-r", "name": "Ada"})),
        )
        .await
        .unwrap();
    other_instance
        .create(&all, meter_json("rg-known"))
        .await
        .unwrap();

    let mut config = ServerConfig::default();
    config.broker.embedded.port = 0;
    config.database.data_dir = dir.path().to_owned();
    config.ingest.max_batch_delay_ms = 5;
    config.registry.refresh_s = 1;
    let stats = Arc::new(IngestStats::default());
    let sink = Collector::new("rg-");
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(run_with(
        config,
        Attachments {
            stats: stats.clone(),
            sink: sink.clone(),
            ready: Some(ready_tx),
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
    tokio::time::timeout(Duration::from_secs(30), stats.subscribed(2))
        .await
        .expect("ingest subscribes");
    assert!(ready.registry.view().device(&device("rg-known")).is_some());

    // A registered and an unregistered device in one batch.
    send(&ready, &stats, 1, &["rg-known", "rg-stranger"]).await;
    assert_eq!(stored(&ready.store, "rg-known").await, 1);
    assert_eq!(stored(&ready.store, "rg-stranger").await, 0);
    let q = ready.store.quarantined(100).await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].reason, "unknown_device");
    assert!(q[0].detail.contains("rg-stranger"), "{}", q[0].detail);
    assert!(q[0].topic.contains("home-r"), "{}", q[0].topic);
    assert_eq!(IngestStats::get(&stats.quarantined), 1);
    assert_eq!(sink.seen(), vec![("rg-known".to_owned(), 1, 1)]);

    // Registered through the server's registry (as the API does): known when the write
    // returns.
    ready
        .registry_service
        .create(&all, meter_json("rg-late"))
        .await
        .unwrap();
    assert!(ready.registry.view().device(&device("rg-late")).is_some());
    send(&ready, &stats, 2, &["rg-late"]).await;
    assert_eq!(stored(&ready.store, "rg-late").await, 1);

    // Registered by another instance on the same database: known after the next periodic
    // refresh (1 s here).
    let mut changes = ready.registry.changes();
    changes.borrow_and_update();
    other_instance
        .create(&all, meter_json("rg-elsewhere"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while ready
            .registry
            .view()
            .device(&device("rg-elsewhere"))
            .is_none()
        {
            changes.changed().await.expect("cache alive");
        }
    })
    .await
    .expect("the periodic refresh picks up the other instance's device");
    send(&ready, &stats, 3, &["rg-elsewhere", "rg-stranger"]).await;
    assert_eq!(stored(&ready.store, "rg-elsewhere").await, 1);
    assert_eq!(stored(&ready.store, "rg-stranger").await, 0);
    assert_eq!(IngestStats::get(&stats.quarantined), 2);

    // Deleting a device makes its frames unknown again.
    ready
        .registry_service
        .delete::<Device>(&all, "rg-known")
        .await
        .unwrap();
    send(&ready, &stats, 4, &["rg-known"]).await;
    assert_eq!(stored(&ready.store, "rg-known").await, 1, "only the first");
    assert_eq!(IngestStats::get(&stats.quarantined), 3);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}
