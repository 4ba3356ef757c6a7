//! The broker connection of ingest: rumqttc's MQTT 5 client with manual acknowledgements.
//!
//! - Subscriptions are shared (`$share/{group}/…`) when a group is configured, so several
//!   server instances split the load; QoS 1.
//! - The session is persistent (`clean_start = false`, a session expiry): after a crash, the
//!   broker redelivers every message this instance had not acknowledged, and the replay
//!   windows absorb the ones that had in fact been committed.
//! - Flow control: MQTT 5 `receive_maximum` caps unacknowledged messages in flight, and the
//!   request channel is larger than that cap, so the writer's acknowledgements never wait.
//! - Payloads up to [`MAX_PACKET_BYTES`] are accepted so that an oversize batch reaches the
//!   decoder and is quarantined with a reason; larger packets are dropped by the broker.

// The MQTT driver stamps the server receive time; cores take time passed in.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;
use vigil_protocol::topic::{DEVICE_UP_FILTER, GATEWAY_BATCH_FILTER};

use super::decode::{decode_message, DecodeLimits};
use super::writer::{run_writer, Acknowledger, CrashAfterCommit, Inbound, WriterSettings};
use super::{BrokerAddress, DeviceDirectory, FrameSink, IngestError, IngestStats};
use crate::store::SharedStore;

/// Largest MQTT packet ingest accepts (8 × the largest valid batch).
pub const MAX_PACKET_BYTES: u32 = 8 * vigil_protocol::limits::MAX_BATCH_BYTES as u32;
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How to reach and use the broker.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub address: BrokerAddress,
    pub client_id: String,
    pub shared_group: String,
    pub receive_maximum: u16,
    pub session_expiry_s: u32,
    pub keep_alive_s: u16,
}

impl MqttSettings {
    /// The subscription filters, shared when a group is set.
    pub fn filters(&self) -> Vec<String> {
        [GATEWAY_BATCH_FILTER, DEVICE_UP_FILTER]
            .into_iter()
            .map(|f| {
                if self.shared_group.is_empty() {
                    f.to_owned()
                } else {
                    format!("$share/{}/{f}", self.shared_group)
                }
            })
            .collect()
    }

    fn options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(&self.client_id, &self.address.host, self.address.port);
        o.set_keep_alive(Duration::from_secs(u64::from(self.keep_alive_s.max(5))));
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(self.session_expiry_s));
        o.set_receive_maximum(Some(self.receive_maximum));
        o.set_max_packet_size(Some(MAX_PACKET_BYTES));
        o.set_manual_acks(true);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        o.set_network_options(net);
        o
    }
}

/// Acknowledges through the MQTT client.
pub struct MqttAcker(AsyncClient);

#[async_trait]
impl Acknowledger for MqttAcker {
    type Token = Publish;

    async fn ack(&self, publish: Publish) {
        // Fails only when the event loop is gone; the broker then redelivers on reconnect.
        if let Err(e) = self.0.ack(&publish).await {
            tracing::warn!(error = %e, "acknowledgement not sent; the broker will redeliver");
        }
    }
}

/// Everything ingest needs besides the broker.
pub struct IngestParts {
    pub store: SharedStore,
    pub directory: Arc<dyn DeviceDirectory>,
    pub sink: Arc<dyn FrameSink>,
    pub stats: Arc<IngestStats>,
    pub writer: WriterSettings,
    pub limits: DecodeLimits,
    pub crash_after_commit: Option<CrashAfterCommit>,
}

/// Runs ingest until `shutdown` resolves: then stops taking messages, lets the writer commit
/// and acknowledge what it holds, and disconnects.
pub async fn run_ingest(
    settings: MqttSettings,
    parts: IngestParts,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), IngestError> {
    let cap = usize::from(settings.receive_maximum) + 64;
    let (client, mut eventloop) = AsyncClient::new(settings.options(), cap);
    let (tx, rx) = mpsc::channel::<Inbound<Publish>>(usize::from(settings.receive_maximum));
    let mut writer = tokio::spawn(run_writer(
        rx,
        parts.store,
        Arc::new(MqttAcker(client.clone())),
        parts.sink,
        Arc::clone(&parts.stats),
        parts.writer,
        parts.crash_after_commit,
    ));
    let filters = settings.filters();
    tokio::pin!(shutdown);
    let mut tx = Some(tx);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown, if tx.is_some() => {
                tracing::info!("ingest stopping: committing what is held");
                tx = None;
                continue;
            }
            done = &mut writer => return finish(done, &client, &mut eventloop, tx.is_none()).await,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(broker = %format!("{}:{}", settings.address.host, settings.address.port),
                    session_present = ack.session_present, "connected to the MQTT broker");
                for f in &filters {
                    if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                        tracing::error!(filter = %f, error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_)));
                if refused {
                    metrics::counter!("vigil_ingest_broker_errors_total").increment(1);
                    tracing::error!(reasons = ?ack.return_codes,
                        "the broker refused a subscription: nothing will arrive on it");
                } else {
                    tracing::debug!(reasons = ?ack.return_codes, "subscribed");
                    parts.stats.subscriptions.send_modify(|n| *n += 1);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let Some(sender) = &tx else {
                    // Stopping: not taken, not acknowledged; the broker keeps it.
                    continue;
                };
                metrics::counter!("vigil_ingest_messages_total").increment(1);
                IngestStats::add(&parts.stats.messages, 1);
                let decoded = decode_message(
                    &publish.topic,
                    &publish.payload,
                    now_ms(),
                    &*parts.directory,
                    parts.limits,
                );
                let inbound = Inbound {
                    decoded,
                    token: strip_payload(publish),
                };
                tokio::select! {
                    sent = sender.send(inbound) => if sent.is_err() {
                        return Err(IngestError::ConnectionGone);
                    },
                    done = &mut writer => return finish(done, &client, &mut eventloop, false).await,
                }
            }
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("vigil_ingest_broker_errors_total").increment(1);
                tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                    done = &mut writer => return finish(done, &client, &mut eventloop, false).await,
                }
            }
        }
    }
}

/// The acknowledgement needs only the packet id and QoS; the payload is released early.
fn strip_payload(mut publish: Publish) -> Publish {
    publish.payload = Bytes::new();
    publish
}

async fn finish(
    writer: Result<Result<(), IngestError>, tokio::task::JoinError>,
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    graceful: bool,
) -> Result<(), IngestError> {
    let result = writer.unwrap_or(Err(IngestError::ConnectionGone));
    if graceful && result.is_ok() {
        // Send the writer's last acknowledgements and a DISCONNECT; bounded in time.
        let _ = client.try_disconnect();
        let drain = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
    result
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
