use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Notify;
use vigil_protocol::{Batch, GatewayStatus, LocalAck, Topic, UplinkFrame};

use crate::config::MqttUrl;

/// Everything that reached the upstream broker from one gateway.
#[derive(Debug, Default)]
pub struct Collected {
    /// Distinct frames by `(device, boot, seq)`.
    pub frames: HashSet<(String, u32, u32)>,
    /// Each device's `(boot, seq)` in order of first arrival.
    pub first_arrivals: HashMap<String, Vec<(u32, u32)>>,
    /// Decoded frames of urgent kinds, in arrival order.
    pub urgent: Vec<UplinkFrame>,
    /// Batch entries received, duplicates included.
    pub entries: u64,
    pub batches: u64,
    pub bad_entries: u64,
    pub statuses: Vec<GatewayStatus>,
    pub acks: Vec<LocalAck>,
}

impl Collected {
    /// Devices whose frames first arrived out of `(boot, seq)` order.
    pub fn out_of_order_devices(&self) -> Vec<String> {
        self.first_arrivals
            .iter()
            .filter(|(_, v)| v.windows(2).any(|w| w[0] >= w[1]))
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// A subscriber on the upstream broker that decodes a gateway's batches, status reports and
/// local acknowledgements, deduplicating frames by `(device, boot, seq)` as the server does.
pub struct UpstreamCollector {
    collected: Arc<Mutex<Collected>>,
    changed: Arc<Notify>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl UpstreamCollector {
    /// Subscribes to `vigil/v1/site/{site}/gw/{gateway}/+` and returns once subscribed.
    pub async fn start(url: &MqttUrl, site: &str, gateway: &str) -> Result<Self, String> {
        let mut opts =
            MqttOptions::new(super::unique_name("collector"), url.host.clone(), url.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 1_024);
        let filter = format!("vigil/v1/site/{site}/gw/{gateway}/+");
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| e.to_string())?;
        let subscribed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(format!(
                            "cannot reach the test MQTT broker at {}:{} ({e}); start Mosquitto or set VIGIL_TEST_MQTT_URL",
                            url.host, url.port
                        ))
                    }
                }
            }
        })
        .await
        .map_err(|_| "timed out subscribing to the test MQTT broker".to_owned())?;
        subscribed?;
        let collected = Arc::new(Mutex::new(Collected::default()));
        let changed = Arc::new(Notify::new());
        let (c, n) = (collected.clone(), changed.clone());
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let mut col = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        record(&mut col, &p.topic, &p.payload);
                        drop(col);
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Ok(Self {
            collected,
            changed,
            client,
            task,
        })
    }

    /// Runs `f` over what has been collected so far.
    pub fn with<R>(&self, f: impl FnOnce(&Collected) -> R) -> R {
        f(&self
            .collected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Waits until `pred` holds; `Err` with the last state's summary on timeout.
    pub async fn wait_for(
        &self,
        secs: u64,
        pred: impl Fn(&Collected) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            if self.with(&pred) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.with(|c| {
                    format!(
                        "timed out after {secs} s: {} distinct frames, {} entries, {} batches, {} statuses, {} acks",
                        c.frames.len(),
                        c.entries,
                        c.batches,
                        c.statuses.len(),
                        c.acks.len()
                    )
                }));
            }
        }
    }

    /// A client on the upstream broker (e.g. to publish downlinks as the server would).
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

impl Drop for UpstreamCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(c: &mut Collected, topic: &str, payload: &[u8]) {
    match Topic::parse(topic) {
        Ok(Topic::GatewayBatch { .. }) => {
            let Ok(batch) = Batch::decode(payload) else {
                c.bad_entries += 1;
                return;
            };
            c.batches += 1;
            for e in batch.entries() {
                c.entries += 1;
                let Ok(f) = e.decode_frame() else {
                    c.bad_entries += 1;
                    continue;
                };
                let key = (f.device_id.to_string(), f.boot_id, f.seq);
                if c.frames.insert(key) {
                    c.first_arrivals
                        .entry(f.device_id.to_string())
                        .or_default()
                        .push((f.boot_id, f.seq));
                    if f.is_urgent() {
                        c.urgent.push(f);
                    }
                }
            }
        }
        Ok(Topic::GatewayStatus { .. }) => {
            if let Ok(s) = GatewayStatus::decode(payload) {
                c.statuses.push(s);
            }
        }
        Ok(Topic::GatewayAck { .. }) => {
            if let Ok(a) = LocalAck::decode(payload) {
                c.acks.push(a);
            }
        }
        Ok(_) | Err(_) => {}
    }
}
