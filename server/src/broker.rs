//! The embedded MQTT broker (`rumqttd`), started when no broker URL is configured, so that a
//! fresh machine needs nothing else.
//!
//! It listens twice: MQTT 3.1.1 on the configured address for gateways and boards, and
//! MQTT 5 on a free loopback port for this server's own ingest (shared subscriptions,
//! receive maximum, persistent session). rumqttd keeps messages in memory only and has no
//! shutdown API: its threads live as long as the process. That is why the gateway confirms
//! durability to boards at the application level (ARCHITECTURE.md section 1).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use thiserror::Error;

use crate::config::EmbeddedBrokerConfig;

/// Where the embedded broker listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedBroker {
    /// MQTT 3.1.1 listener for gateways and boards.
    pub mqtt: SocketAddr,
    /// MQTT 5 listener on loopback, used by ingest.
    pub ingest: SocketAddr,
}

/// The embedded broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error(
        "port {port} on {bind} is already in use (another MQTT broker?): choose another with \
         --mqtt-port (or VIGIL_EMBEDDED_BROKER_PORT, or [broker.embedded] port), 0 for any \
         free port, or use that broker with --broker-url mqtt://{bind}:{port}"
    )]
    PortInUse { bind: String, port: u16 },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the broker thread: {0}")]
    Thread(std::io::Error),
    #[error("the embedded broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
}

/// Largest payload the embedded broker accepts: 8 × the largest valid batch, as ingest does.
const MAX_PAYLOAD: usize = crate::ingest::mqtt::MAX_PACKET_BYTES as usize;

/// Starts the broker and returns once both listeners accept connections.
pub async fn start(config: &EmbeddedBrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
    let mqtt = reserve(&config.bind, config.port)?;
    let ingest = reserve("127.0.0.1", 0)?;
    let rumqttd_config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 100_000,
            max_outgoing_packet_count: 1000,
            // rumqttd keeps recent messages in an in-memory commit log: 4 × 32 MiB bounds it.
            // A subscriber that falls a whole log behind loses messages, which the gateway's
            // application-level receipts (ARCHITECTURE.md section 1) make good.
            max_segment_size: 32 * 1024 * 1024,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), listener("v4", mqtt))])),
        v5: Some(HashMap::from([("1".to_owned(), listener("v5", ingest))])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("vigil-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(rumqttd_config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    for addr in [mqtt, ingest] {
        wait_listening(addr).await?;
    }
    tracing::info!(%mqtt, %ingest, "embedded MQTT broker listening");
    Ok(EmbeddedBroker { mqtt, ingest })
}

fn listener(name: &str, listen: SocketAddr) -> rumqttd::ServerSettings {
    rumqttd::ServerSettings {
        name: format!("vigil-{name}"),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// Checks that `bind:port` is free and resolves port 0 to a concrete free port.
///
/// rumqttd binds its own listeners and cannot be handed one, so the port is released again
/// before rumqttd takes it; another process could take it in between, in which case the
/// broker fails to start and [`wait_listening`] reports it.
fn reserve(bind: &str, port: u16) -> Result<SocketAddr, BrokerError> {
    match TcpListener::bind((bind, port)) {
        Ok(l) => l.local_addr().map_err(|source| BrokerError::Bind {
            addr: format!("{bind}:{port}"),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(BrokerError::PortInUse {
            bind: bind.to_owned(),
            port,
        }),
        Err(source) => Err(BrokerError::Bind {
            addr: format!("{bind}:{port}"),
            source,
        }),
    }
}

async fn wait_listening(addr: SocketAddr) -> Result<(), BrokerError> {
    let target = match addr.ip() {
        ip if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        _ => addr,
    };
    let probe = async {
        loop {
            if tokio::net::TcpStream::connect(target).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), probe)
        .await
        .map_err(|_| BrokerError::NotListening(addr))
}
