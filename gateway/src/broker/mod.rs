//! The boards' side: the embedded broker (rumqttd) or an external local broker, seen by the
//! rest of the gateway as a stream of `(topic, payload)` messages in and downlinks out.
//!
//! With the embedded broker, a board logs in with client id = user name = its device id and
//! its secret (checked by rumqttd's auth hook against the provisioning file's argon2 hash).
//! rumqttd 0.20 has no per-topic ACLs, so boards connect through the gateway's guard
//! (`guard`), which enforces them per login before rumqttd sees a packet; the core then
//! checks that each frame names the device of its topic (`validate`).

mod guard;

pub use guard::BoardSession;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use rumqttd::{Broker, ConnectionSettings, Notification, RouterConfig, ServerSettings};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::MqttUrl;
use crate::provisioning::Provisioning;
use crate::status::Counters;

/// What the boards' side delivers to the core.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// A message a board published.
    Message { topic: String, payload: Vec<u8> },
    /// A packet the ACL guard refused (the connection was closed).
    Refused {
        refusal: crate::validate::Refusal,
        raw: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen for boards on {0}: {1}")]
    Port(SocketAddr, std::io::Error),
    #[error("embedded broker: {0}")]
    Link(String),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Sends downlinks to boards.
#[derive(Clone)]
pub enum Outbound {
    Embedded(std::sync::mpsc::Sender<(String, Vec<u8>)>),
    External(AsyncClient),
}

impl Outbound {
    /// Publishes to a board's topic; returns `false` when the broker link is gone or full.
    pub fn publish(&self, topic: String, payload: Vec<u8>) -> bool {
        match self {
            Self::Embedded(tx) => tx.send((topic, payload)).is_ok(),
            Self::External(c) => c
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .is_ok(),
        }
    }
}

/// The boards' broker as the gateway sees it.
pub struct BoardLink {
    pub inbound: mpsc::Receiver<Inbound>,
    pub outbound: Outbound,
    /// Where boards connect (embedded broker only).
    pub listen: Option<SocketAddr>,
}

/// Messages read from the boards' broker but not yet handled; beyond this the reader waits.
const INBOUND_QUEUE: usize = 20_000;

/// Starts the embedded broker with its guard listening on `listen` (port 0: any free port).
pub async fn start_embedded(
    listen: SocketAddr,
    provisioning: Arc<Provisioning>,
    counters: Arc<Counters>,
) -> Result<BoardLink, BrokerError> {
    let public = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| BrokerError::Port(listen, e))?;
    let listen = public
        .local_addr()
        .map_err(|e| BrokerError::Port(listen, e))?;
    // rumqttd binds its own listener and does not report its port, so pick a loopback one.
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let internal = std::net::TcpListener::bind(loopback)
        .and_then(|l| l.local_addr())
        .map_err(|e| BrokerError::Port(loopback, e))?;
    let mut server = ServerSettings {
        name: "boards".into(),
        listen: internal,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 8 * 1024,
            max_inflight_count: 256,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    server.set_auth_handler(move |client_id: String, user: String, pass: String| {
        let provisioning = provisioning.clone();
        let counters = counters.clone();
        async move {
            let who = client_id.clone();
            let ok = tokio::task::spawn_blocking(move || {
                provisioning.authenticate(&client_id, &user, &pass)
            })
            .await
            .unwrap_or(false);
            if !ok {
                Counters::add(&counters.auth_refused, 1);
                warn!(client_id = %who, "board login refused: bad credentials");
            }
            ok
        }
    });
    let config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1_000,
            // Per subscription filter; boards resend anything the gateway missed, so the log
            // only needs to cover a short stall of the core.
            max_segment_size: 8 << 20,
            max_segment_count: 4,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("boards".to_owned(), server)])),
        ..rumqttd::Config::default()
    };
    let mut broker = Broker::new(config);
    let (mut link_tx, mut link_rx) = broker
        .link("vigil-gateway")
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    link_tx
        .subscribe("#")
        .map_err(|e| BrokerError::Link(e.to_string()))?;

    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map(|_| ())
            .map_err(BrokerError::Thread)
    };
    spawn(
        "boards-broker",
        Box::new(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        }),
    )?;
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let in_tx_guard = in_tx.clone();
    spawn(
        "boards-reader",
        Box::new(move || loop {
            match link_rx.recv() {
                Ok(Some(Notification::Forward(f))) => {
                    let topic = String::from_utf8_lossy(&f.publish.topic).into_owned();
                    let msg = Inbound::Message {
                        topic,
                        payload: f.publish.payload.to_vec(),
                    };
                    if in_tx.blocking_send(msg).is_err() {
                        return;
                    }
                }
                Ok(Some(Notification::Unschedule)) => {
                    if link_rx.ready().is_err() {
                        return;
                    }
                }
                Ok(Some(other)) => debug!(?other, "ignored broker notification"),
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "embedded broker link closed");
                    return;
                }
            }
        }),
    )?;
    let (out_tx, out_rx) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
    spawn(
        "boards-writer",
        Box::new(move || {
            while let Ok((topic, payload)) = out_rx.recv() {
                if let Err(e) = link_tx.publish(topic, payload) {
                    warn!(error = %e, "embedded broker refused a downlink");
                    return;
                }
            }
        }),
    )?;
    let refusals = in_tx_guard;
    tokio::spawn(async move {
        loop {
            match public.accept().await {
                Ok((board, _)) => {
                    tokio::spawn(guard::relay(board, internal, refusals.clone()));
                }
                Err(e) => warn!(error = %e, "cannot accept a board connection"),
            }
        }
    });
    info!(%listen, "boards' broker listening");
    Ok(BoardLink {
        inbound: in_rx,
        outbound: Outbound::Embedded(out_tx),
        listen: Some(listen),
    })
}

/// Connects to an external local broker that authenticates boards and enforces ACLs itself.
pub fn start_external(url: &MqttUrl, client_id: &str) -> BoardLink {
    let mut opts = MqttOptions::new(client_id, url.host.clone(), url.port);
    opts.set_keep_alive(Duration::from_secs(15));
    opts.set_clean_session(false);
    opts.set_max_packet_size(16 * 1024, 16 * 1024);
    let (client, eventloop) = AsyncClient::new(opts, 1_024);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    tokio::spawn(read_external(client.clone(), eventloop, in_tx));
    BoardLink {
        inbound: in_rx,
        outbound: Outbound::External(client),
        listen: None,
    }
}

async fn read_external(client: AsyncClient, mut eventloop: EventLoop, tx: mpsc::Sender<Inbound>) {
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for filter in [
                    vigil_protocol::topic::DEVICE_UP_FILTER,
                    vigil_protocol::topic::DEVICE_STATE_FILTER,
                ] {
                    let _ = client.subscribe(filter, QoS::AtLeastOnce).await;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let msg = Inbound::Message {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "local broker connection lost; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
