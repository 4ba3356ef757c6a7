//! The engine's own broker connection: publishes downlinks ("help is coming") and receives
//! board wills (`vigil/v1/dev/+/state`) and gateway status reports
//! (`vigil/v1/site/+/gw/+/status`) for the health detectors.
//!
//! Ingest keeps its durable, acknowledged path for frames; wills and status reports are
//! liveness signals that matter only while they are fresh, so this connection is a clean
//! session and every instance receives them (each watches health on its own).

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, watch};
use vigil_protocol::topic::{Topic, DEVICE_STATE_FILTER, GATEWAY_STATUS_FILTER};
use vigil_protocol::{DeviceState, GatewayStatus};

use super::core::Downlink;
use super::task::EngineHandle;
use crate::ingest::BrokerAddress;

const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How the engine reaches the broker.
#[derive(Debug, Clone)]
pub struct EngineMqttSettings {
    pub address: BrokerAddress,
    pub client_id: String,
    pub keep_alive_s: u16,
}

/// Runs the connection until `stop` turns true.
pub async fn run_engine_mqtt(
    settings: EngineMqttSettings,
    engine: EngineHandle,
    mut downlinks: mpsc::Receiver<Downlink>,
    mut stop: watch::Receiver<bool>,
) {
    let mut o = MqttOptions::new(
        &settings.client_id,
        &settings.address.host,
        settings.address.port,
    );
    o.set_keep_alive(Duration::from_secs(u64::from(settings.keep_alive_s.max(5))));
    o.set_clean_start(true);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    net.set_connection_timeout(10);
    o.set_network_options(net);
    let (client, mut eventloop) = AsyncClient::new(o, 256);
    let mut buf = vec![0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    loop {
        tokio::select! {
            () = super::task::stopped(&mut stop) => break,
            d = downlinks.recv() => {
                let Some(d) = d else { break };
                match d.frame.encode(&mut buf) {
                    Ok(n) => {
                        if let Err(e) = client.try_publish(d.topic.clone(), QoS::AtLeastOnce, false, buf[..n].to_vec()) {
                            metrics::counter!("vigil_engine_downlinks_dropped_total").increment(1);
                            tracing::error!(topic = %d.topic, error = %e, "downlink not published");
                        } else {
                            tracing::info!(topic = %d.topic, device = %d.frame.device_id, "downlink published");
                        }
                    }
                    Err(e) => tracing::error!(error = ?e, "downlink could not be encoded"),
                }
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for f in [DEVICE_STATE_FILTER, GATEWAY_STATUS_FILTER] {
                        if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                            tracing::error!(filter = f, error = %e, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    handle_message(&engine, &topic, &p.payload).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "engine MQTT connection lost; reconnecting");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            },
        }
    }
    let _ = client.try_disconnect();
}

async fn handle_message(engine: &EngineHandle, topic: &str, payload: &[u8]) {
    match Topic::parse(topic) {
        Ok(Topic::DeviceState(device)) => match DeviceState::decode(payload) {
            Ok(state) if state.device_id == device => engine.device_state(state).await,
            Ok(state) => {
                metrics::counter!("vigil_engine_bad_status_total", "reason" => "device_mismatch")
                    .increment(1);
                tracing::warn!(topic, claimed = %state.device_id, "device state names another device");
            }
            Err(e) => {
                metrics::counter!("vigil_engine_bad_status_total", "reason" => "decode")
                    .increment(1);
                tracing::warn!(topic, error = ?e, "device state not readable");
            }
        },
        Ok(Topic::GatewayStatus { site, gateway }) => match GatewayStatus::decode(payload) {
            Ok(status) if status.site_id == site && status.gateway_id == gateway => {
                engine.gateway_status(status).await
            }
            Ok(_) => {
                metrics::counter!("vigil_engine_bad_status_total", "reason" => "gateway_mismatch")
                    .increment(1);
                tracing::warn!(topic, "gateway status names another site or gateway");
            }
            Err(e) => {
                metrics::counter!("vigil_engine_bad_status_total", "reason" => "decode")
                    .increment(1);
                tracing::warn!(topic, error = ?e, "gateway status not readable");
            }
        },
        Ok(_) | Err(_) => {
            metrics::counter!("vigil_engine_bad_status_total", "reason" => "topic").increment(1);
        }
    }
}
