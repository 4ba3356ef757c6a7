//! The upstream MQTT connection (rumqttc). This driver only does I/O: it connects, reports
//! what happens to the gateway's core as [`UplinkEvent`]s, and reconnects with backoff.
//!
//! Design: every connection gets a fresh `AsyncClient`/`EventLoop` pair, handed to the core
//! once the broker accepted it. rumqttc's `publish()` does not return the packet id, so the
//! core matches `Outgoing::Publish(pkid)` events to its publishes in order; a fresh pair per
//! connection means a publish made for a dead connection can never be mistaken for one on
//! the next (its channel is gone with it), and the core re-plans everything unacknowledged.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Upstream;

/// What happened on the upstream connection.
#[derive(Debug)]
pub enum UplinkEvent {
    /// Connected (and subscribed to the gateway's downlink topic); publish with this client.
    Connected(AsyncClient),
    Disconnected,
    /// A publish was written to the socket with this packet id (0 for QoS 0).
    Published(u16),
    /// The broker acknowledged the publish with this packet id.
    Acked(u16),
    /// A message arrived on the gateway's downlink topic.
    Downlink(Vec<u8>),
}

/// Reconnection delays: doubling from `min_ms` up to `max_ms`, reset after a good connection.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64) -> Self {
        Self {
            min_ms,
            max_ms,
            next_ms: min_ms,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay_ms(&mut self) -> u64 {
        let d = self.next_ms;
        self.next_ms = (self.next_ms * 2).min(self.max_ms);
        d
    }

    pub fn reset(&mut self) {
        self.next_ms = self.min_ms;
    }
}

/// Requests in the client's channel beyond the in-flight window (status, acks).
const CHANNEL_SLACK: usize = 64;

/// Runs the upstream connection until the core stops listening.
pub async fn run(
    upstream: Upstream,
    downlink_topic: String,
    max_inflight: usize,
    events: mpsc::Sender<UplinkEvent>,
) {
    let mut backoff = Backoff::new(upstream.reconnect_min_ms, upstream.reconnect_max_ms);
    loop {
        let mut opts = MqttOptions::new(
            upstream.client_id.clone(),
            upstream.url.host.clone(),
            upstream.url.port,
        );
        opts.set_keep_alive(Duration::from_secs(upstream.keep_alive_s));
        opts.set_clean_session(true);
        opts.set_inflight(u16::try_from(max_inflight + CHANNEL_SLACK).unwrap_or(u16::MAX));
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        if let (Some(u), Some(p)) = (&upstream.username, &upstream.password) {
            opts.set_credentials(u.clone(), p.clone());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, max_inflight + CHANNEL_SLACK);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(5);
        eventloop.set_network_options(net);
        let mut connected = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if client
                        .try_subscribe(downlink_topic.clone(), QoS::AtLeastOnce)
                        .is_err()
                    {
                        break;
                    }
                    connected = true;
                    backoff.reset();
                    info!(broker = %upstream.url.host, port = upstream.url.port, "uplink connected");
                    if events
                        .send(UplinkEvent::Connected(client.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if events.send(UplinkEvent::Published(pkid)).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if events.send(UplinkEvent::Acked(ack.pkid)).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if events
                        .send(UplinkEvent::Downlink(p.payload.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "uplink connection lost");
                    break;
                }
            }
        }
        if connected && events.send(UplinkEvent::Disconnected).await.is_err() {
            return;
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(backoff.next_delay_ms())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_resets_after_a_good_connection() {
        let mut b = Backoff::new(100, 1_000);
        let d: Vec<_> = (0..6).map(|_| b.next_delay_ms()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1_000, 1_000]);
        b.reset();
        assert_eq!(b.next_delay_ms(), 100);
    }
}
