//! Helpers shared by the server's integration tests: real PostgreSQL (a schema per test),
//! real Mosquitto, SQLite in a temporary directory, and frame builders.

// Test drivers read the real clock (unique names, wall-clock stamps for real brokers).
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use vigil_protocol::{
    encode_batch, BatchEntry, BatchHeader, ButtonEvent, ButtonKind, DeviceId, GatewayId, Heartbeat,
    MeterReading, SiteId, UplinkBody, UplinkFrame,
};
use vigil_server::store::postgres::PgStore;
use vigil_server::store::sqlite::SqliteStore;
use vigil_server::store::IncomingFrame;

pub fn pg_url() -> String {
    std::env::var("VIGIL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mqtt_url() -> String {
    std::env::var("VIGIL_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// A name unique to this test process and call: for schemas, client ids, site ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A fresh PostgreSQL schema; `url` connects with it as the search path.
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> Self {
        let name = unique("t_");
        execute(&pg_url(), &format!("CREATE SCHEMA {name}")).await;
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Self { name, url }
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url, 4)
            .await
            .expect("PostgreSQL store opens (is VIGIL_TEST_PG_URL reachable?)")
    }

    pub async fn drop_schema(self) {
        execute(&pg_url(), &format!("DROP SCHEMA {} CASCADE", self.name)).await;
    }
}

pub async fn execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} must be reachable for this test: {e}"));
    let driver = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = driver.await;
}

pub async fn sqlite_store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("vigil.sqlite3"))
        .await
        .expect("SQLite store opens")
}

pub fn device(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

pub fn meter(device: &str, boot: u32, seq: u32, volume_ml: u32, battery_mv: u16) -> UplinkFrame {
    let mut slots = heapless::Vec::new();
    slots.push(volume_ml).unwrap();
    UplinkFrame {
        device_id: DeviceId::new(device).unwrap(),
        boot_id: boot,
        seq,
        uptime_ms: u64::from(seq) * 60_000,
        wall_ms: None,
        body: UplinkBody::Meter(MeterReading {
            total_ml: u64::from(seq) * 1000,
            flow_ml_per_min: 0,
            battery_mv,
            tamper: false,
            leak: false,
            slot_s: 60,
            slots_ml: slots,
        }),
    }
}

pub fn press(device: &str, boot: u32, seq: u32) -> UplinkFrame {
    UplinkFrame {
        device_id: DeviceId::new(device).unwrap(),
        boot_id: boot,
        seq,
        uptime_ms: u64::from(seq) * 1000,
        wall_ms: None,
        body: UplinkBody::Button(ButtonEvent {
            kind: ButtonKind::Press,
            cancels_seq: None,
        }),
    }
}

pub fn heartbeat(device: &str, boot: u32, seq: u32, battery_mv: u16, rssi: i8) -> UplinkFrame {
    UplinkFrame {
        device_id: DeviceId::new(device).unwrap(),
        boot_id: boot,
        seq,
        uptime_ms: u64::from(seq) * 1000,
        wall_ms: None,
        body: UplinkBody::Heartbeat(Heartbeat {
            battery_mv,
            rssi_dbm: rssi,
            firmware: vigil_protocol::FirmwareVersion::new("1.2.3").unwrap(),
        }),
    }
}

pub fn encode(frame: &UplinkFrame) -> Vec<u8> {
    let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    let n = frame.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// A frame as ingest would hand it to the store, filed at `ts_ms` by its gateway.
pub fn incoming(frame: UplinkFrame, ts_ms: i64) -> IncomingFrame {
    IncomingFrame {
        raw: Bytes::from(encode(&frame)),
        frame,
        via: Some((
            SiteId::new("site-1").unwrap(),
            GatewayId::new("gw-1").unwrap(),
        )),
        gateway_received_ms: Some(ts_ms as u64),
        server_received_ms: ts_ms,
    }
}

/// Encodes a gateway batch of `(received_ms, frame)`.
pub fn batch(site: &str, gateway: &str, batch_seq: u64, frames: &[(u64, UplinkFrame)]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = frames.iter().map(|(_, f)| encode(f)).collect();
    let entries: Vec<BatchEntry<'_>> = frames
        .iter()
        .zip(&encoded)
        .map(|((ms, _), bytes)| BatchEntry {
            received_ms: *ms,
            frame: bytes,
        })
        .collect();
    let header = BatchHeader {
        gateway_id: GatewayId::new(gateway).unwrap(),
        site_id: SiteId::new(site).unwrap(),
        batch_seq,
    };
    let mut buf = vec![0u8; vigil_protocol::limits::MAX_BATCH_BYTES];
    let n = encode_batch(&header, &entries, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A frame sink that keeps `(device, boot, seq)` of the committed frames whose device id
/// starts with `prefix` (other tests share the broker), and lets a test await them.
pub struct Collector {
    prefix: String,
    seen: tokio::sync::watch::Sender<Vec<(String, u32, u32)>>,
}

impl Collector {
    pub fn new(prefix: &str) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            prefix: prefix.to_owned(),
            seen: tokio::sync::watch::Sender::new(Vec::new()),
        })
    }

    pub fn seen(&self) -> Vec<(String, u32, u32)> {
        self.seen.borrow().clone()
    }

    /// Waits (at most 30 s) until `pred` holds for the frames seen so far.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[(String, u32, u32)]) -> bool) {
        let mut rx = self.seen.subscribe();
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.wait_for(|v| pred(v)))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; seen {:?}", self.seen()))
            .expect("collector alive");
    }
}

#[async_trait::async_trait]
impl vigil_server::ingest::FrameSink for Collector {
    async fn committed(&self, frames: Vec<IncomingFrame>) {
        let mine: Vec<_> = frames
            .iter()
            .filter(|f| f.frame.device_id.as_str().starts_with(&self.prefix))
            .map(|f| {
                (
                    f.frame.device_id.as_str().to_owned(),
                    f.frame.boot_id,
                    f.frame.seq,
                )
            })
            .collect();
        if !mine.is_empty() {
            self.seen.send_modify(|v| v.extend(mine));
        }
    }
}

/// Publishes each `(topic, payload)` at QoS 1 with a plain MQTT 3.1.1 client and returns once
/// the broker acknowledged them all.
pub async fn publish(url: &str, messages: Vec<(String, Vec<u8>)>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let addr = vigil_server::ingest::BrokerAddress::parse(url).unwrap();
    let mut o = MqttOptions::new(unique("pub"), addr.host, addr.port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(o, 64);
    let n = messages.len();
    for (topic, payload) in messages {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let acks = async {
        let mut acked = 0;
        while acked < n {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("publisher to {url}: {e}"),
            }
        }
        client.disconnect().await.unwrap();
        while !matches!(
            eventloop.poll().await,
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_)
        ) {}
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), acks)
        .await
        .expect("broker acknowledges the publications");
}
