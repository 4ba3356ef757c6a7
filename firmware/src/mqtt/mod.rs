//! The board's MQTT 3.1.1 client state, sans-IO, with the spool it publishes from.
//!
//! The packet codec is `mqttrs`; this module owns the session: CONNECT with a will on the
//! device's `state` topic, the subscription to its `down` topic, QoS 1 publishing from the
//! [`Spool`] with retry, keepalive pings, and reconnection with exponential backoff and jitter.
//! It never touches a socket or a clock: a driver (see [`crate::link`]) feeds it bytes and
//! transport events with the time, writes out [`MqttClient::transmit_buffer`], and opens or
//! closes the transport when [`MqttClient::poll_event`] says so.

use heapless::{Deque, String, Vec};
use mqttrs::{decode_slice, Packet, Publish, QosPid, SubscribeReturnCodes};
use vigil_protocol::limits::{MAX_FRAME_BYTES, MAX_TOPIC_LEN};
use vigil_protocol::{DownlinkBody, DownlinkFrame, Topic, UplinkFrame};

use crate::hal::Millis;
use crate::spool::{Admitted, Spool, SpoolError};

mod wire;

use wire::{packet_length, plausible_for_client, SmallPacket};

/// Largest MQTT packet this client sends or accepts: a frame, its topic and the headers.
const MAX_PACKET: usize = MAX_FRAME_BYTES + MAX_TOPIC_LEN + 8;
const TX_CAPACITY: usize = MAX_PACKET + 64;
const RX_CAPACITY: usize = MAX_PACKET;
/// Room kept in the transmit buffer for acknowledgements and pings.
const CONTROL_RESERVE: usize = 16;
const EVENT_CAPACITY: usize = 4;

/// Timing and limits of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttConfig {
    pub keep_alive_s: u16,
    /// How long to wait for CONNACK, SUBACK or PINGRESP before the link counts as dead.
    pub response_timeout_ms: u32,
    /// How long to wait for a PUBACK before publishing again with the DUP flag.
    pub publish_retry_ms: u32,
    /// Unanswered re-publishes in a row after which the link counts as dead.
    pub max_publish_retries: u8,
    /// How long a published frame waits for the gateway's durable receipt before it is
    /// published again.
    pub receipt_timeout_ms: u32,
    pub backoff_min_ms: u32,
    pub backoff_max_ms: u32,
    pub max_in_flight: u8,
    /// Ask the broker to keep the session (CONNECT without clean session), so QoS 1
    /// downlinks — a "help is coming", a durable receipt — sent while the board is offline are
    /// queued and delivered when it reconnects.
    pub persistent_session: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            keep_alive_s: 60,
            response_timeout_ms: 10_000,
            publish_retry_ms: 5_000,
            max_publish_retries: 3,
            receipt_timeout_ms: 60_000,
            backoff_min_ms: 1_000,
            backoff_max_ms: 300_000,
            max_in_flight: 4,
            persistent_session: true,
        }
    }
}

/// What the driver or the board must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttEvent {
    /// Open the transport now, then call `handle_transport_open` (or `_closed` on failure).
    OpenTransport,
    /// The link is dead: close the transport. The client already counts as disconnected.
    CloseTransport,
    /// The broker accepted the session.
    Connected,
    /// The session ended; frames not yet covered by a receipt stay spooled.
    Disconnected,
    /// A downlink for this board (receipts are also applied to the spool before this).
    Downlink(DownlinkBody),
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No transport; the next attempt is at `reconnect_at`.
    Down {
        reconnect_at: Millis,
    },
    /// Waiting for the driver to open the transport.
    Opening,
    AwaitConnack {
        since: Millis,
    },
    Up,
}

/// Counters for the heartbeat and the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqttCounters {
    pub connects: u32,
    pub connect_refusals: u32,
    pub link_failures: u32,
    pub publish_retries: u32,
    pub malformed_packets: u32,
    pub bad_downlinks: u32,
    pub foreign_downlinks: u32,
    pub events_lost: u32,
}

/// A small xorshift generator, seeded by the board from a real entropy source; only used to
/// spread reconnections so that boards of a site do not all come back at once.
#[derive(Debug, Clone)]
struct Jitter(u32);

impl Jitter {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// The client state; `N` is the spool's capacity in frames, `B` the largest encoded frame.
#[derive(Debug)]
pub struct MqttClient<const N: usize, const B: usize = MAX_FRAME_BYTES> {
    config: MqttConfig,
    device_id: vigil_protocol::DeviceId,
    boot_id: u32,
    up_topic: String<MAX_TOPIC_LEN>,
    down_topic: String<MAX_TOPIC_LEN>,
    state_topic: String<MAX_TOPIC_LEN>,
    spool: Spool<N, B>,
    state: SessionState,
    tx: Vec<u8, TX_CAPACITY>,
    rx: Vec<u8, RX_CAPACITY>,
    events: Deque<MqttEvent, EVENT_CAPACITY>,
    next_pid: u16,
    last_tx: Millis,
    ping_sent: Option<Millis>,
    suback_wait: Option<(u16, Millis)>,
    subscribed: bool,
    failures_in_a_row: u32,
    retries_in_a_row: u32,
    jitter: Jitter,
    counters: MqttCounters,
    /// The board's secret for the gateway's login (user name = device id), if it has one.
    login_secret: Vec<u8, MAX_LOGIN_SECRET>,
}

/// Longest login secret a board keeps, in bytes.
pub const MAX_LOGIN_SECRET: usize = 64;

/// A login secret longer than [`MAX_LOGIN_SECRET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a login secret of {0} bytes; at most {MAX_LOGIN_SECRET} are kept")]
pub struct SecretTooLong(pub usize);

impl<const N: usize, const B: usize> MqttClient<N, B> {
    /// A client for `device_id` in boot `boot_id`; it asks for its first connection at `now`.
    /// `jitter_seed` must come from an entropy source (radio noise, ADC LSBs, a unique id
    /// mixed with the boot_id): boards seeded alike reconnect in step.
    pub fn new(
        config: MqttConfig,
        device_id: &vigil_protocol::DeviceId,
        boot_id: u32,
        jitter_seed: u32,
        now: Millis,
    ) -> Self {
        Self {
            config,
            device_id: device_id.clone(),
            boot_id,
            up_topic: Topic::DeviceUp(device_id.clone()).to_topic_string(),
            down_topic: Topic::DeviceDown(device_id.clone()).to_topic_string(),
            state_topic: Topic::DeviceState(device_id.clone()).to_topic_string(),
            spool: Spool::new(boot_id),
            state: SessionState::Down { reconnect_at: now },
            tx: Vec::new(),
            rx: Vec::new(),
            events: Deque::new(),
            next_pid: 1,
            last_tx: now,
            ping_sent: None,
            suback_wait: None,
            subscribed: false,
            failures_in_a_row: 0,
            retries_in_a_row: 0,
            jitter: Jitter(jitter_seed | 1),
            counters: MqttCounters::default(),
            login_secret: Vec::new(),
        }
    }

    /// Logs in with user name = device id and this secret from the next CONNECT on, as the
    /// gateway's broker requires of provisioned boards (`docs/gateway.md`). Empty: no login.
    pub fn set_login_secret(&mut self, secret: &[u8]) -> Result<(), SecretTooLong> {
        self.login_secret = Vec::from_slice(secret).map_err(|_| SecretTooLong(secret.len()))?;
        Ok(())
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, SessionState::Up)
    }

    pub fn counters(&self) -> MqttCounters {
        self.counters
    }

    pub fn spool(&self) -> &Spool<N, B> {
        &self.spool
    }

    /// Spools `frame` and publishes it as soon as the session allows.
    pub fn submit(&mut self, frame: &UplinkFrame, now: Millis) -> Result<Admitted, SpoolError> {
        let admitted = self.spool.push(frame)?;
        self.fill_tx(now);
        Ok(admitted)
    }

    pub fn poll_event(&mut self) -> Option<MqttEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the transport; call [`Self::mark_transmitted`] with how many went.
    pub fn transmit_buffer(&self) -> &[u8] {
        &self.tx
    }

    pub fn mark_transmitted(&mut self, n: usize, now: Millis) {
        let n = n.min(self.tx.len());
        if n == 0 {
            return;
        }
        self.tx.copy_within(n.., 0);
        self.tx.truncate(self.tx.len() - n);
        self.last_tx = now;
        self.fill_tx(now);
    }

    /// The transport is open: send CONNECT with the will.
    pub fn handle_transport_open(&mut self, now: Millis) {
        self.tx.clear();
        self.rx.clear();
        if self.send_connect().is_err() {
            self.link_failed(now);
            return;
        }
        self.state = SessionState::AwaitConnack { since: now };
    }

    /// The transport closed or could not be opened.
    pub fn handle_transport_closed(&mut self, now: Millis) {
        match self.state {
            SessionState::Down { .. } => {}
            SessionState::Opening | SessionState::AwaitConnack { .. } | SessionState::Up => {
                self.go_down(now);
            }
        }
    }

    /// Bytes read from the transport.
    pub fn handle_bytes(&mut self, mut bytes: &[u8], now: Millis) {
        while !bytes.is_empty() {
            let room = RX_CAPACITY - self.rx.len();
            let take = room.min(bytes.len());
            let _ = self.rx.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if !self.process_rx(now) {
                return;
            }
            if take == 0 {
                // A packet larger than the receive buffer: no valid peer sends one.
                self.counters.malformed_packets += 1;
                self.link_failed(now);
                return;
            }
        }
        self.fill_tx(now);
    }

    /// Advances timers: reconnection, response timeouts, publish retries, keepalive, receipts.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.state {
            SessionState::Down { reconnect_at } => {
                if now >= reconnect_at {
                    self.state = SessionState::Opening;
                    self.push_event(MqttEvent::OpenTransport);
                }
            }
            SessionState::Opening => {}
            SessionState::AwaitConnack { since } => {
                if now >= since + u64::from(self.config.response_timeout_ms) {
                    self.link_failed(now);
                }
            }
            SessionState::Up => self.up_timeout(now),
        }
    }

    fn up_timeout(&mut self, now: Millis) {
        let response = u64::from(self.config.response_timeout_ms);
        let ping_late = self.ping_sent.is_some_and(|t| now >= t + response);
        let suback_late = self.suback_wait.is_some_and(|(_, t)| now >= t + response);
        if ping_late || suback_late {
            self.link_failed(now);
            return;
        }
        let retry = u64::from(self.config.publish_retry_ms);
        let mut due: Vec<(usize, u16), N> = Vec::new();
        // While earlier bytes still wait for a slow link (a modem at 115 200 Bd needs tens of
        // milliseconds per packet), a missing PUBACK says nothing about the broker.
        let link_idle = self.tx.is_empty();
        for (i, pid, sent_at) in self.spool.in_flight() {
            if link_idle && now >= sent_at + retry {
                let _ = due.push((i, pid));
            }
        }
        if !due.is_empty() {
            self.retries_in_a_row += 1;
            if self.retries_in_a_row > u32::from(self.config.max_publish_retries) {
                self.link_failed(now);
                return;
            }
            for (i, pid) in due {
                if self.publish_entry(i, pid, true, now).is_err() {
                    break;
                }
                self.counters.publish_retries += 1;
            }
        }
        self.spool
            .requeue_unreceipted(now, self.config.receipt_timeout_ms);
        let keep_alive = u64::from(self.config.keep_alive_s) * 1000;
        if keep_alive > 0
            && self.ping_sent.is_none()
            && now >= self.last_tx + keep_alive
            && self.send_small(SmallPacket::Pingreq).is_ok()
        {
            self.ping_sent = Some(now);
        }
        self.fill_tx(now);
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn next_deadline(&self) -> Option<Millis> {
        let response = u64::from(self.config.response_timeout_ms);
        match self.state {
            SessionState::Down { reconnect_at } => Some(reconnect_at),
            SessionState::Opening => None,
            SessionState::AwaitConnack { since } => Some(since + response),
            SessionState::Up => {
                let retry = u64::from(self.config.publish_retry_ms);
                let keep_alive = u64::from(self.config.keep_alive_s) * 1000;
                let candidates = [
                    self.ping_sent.map(|t| t + response),
                    self.suback_wait.map(|(_, t)| t + response),
                    self.spool.in_flight().map(|(_, _, t)| t + retry).min(),
                    self.spool
                        .next_receipt_deadline(self.config.receipt_timeout_ms),
                    (keep_alive > 0 && self.ping_sent.is_none())
                        .then_some(self.last_tx + keep_alive),
                ];
                candidates.into_iter().flatten().min()
            }
        }
    }

    fn device_id(&self) -> vigil_protocol::DeviceId {
        self.device_id.clone()
    }

    fn push_event(&mut self, event: MqttEvent) {
        if self.events.is_full() {
            // Downlinks matter more than link notices: make room by dropping the oldest.
            let _ = self.events.pop_front();
            self.counters.events_lost += 1;
        }
        let _ = self.events.push_back(event);
    }

    fn alloc_pid(&mut self) -> u16 {
        let pid = self.next_pid;
        self.next_pid = if pid == u16::MAX { 1 } else { pid + 1 };
        pid
    }

    /// Publishes queued frames while the session is up and the window allows.
    fn fill_tx(&mut self, now: Millis) {
        if !self.is_up() || !self.subscribed {
            return;
        }
        while self.spool.in_flight().count() < usize::from(self.config.max_in_flight) {
            let Some(index) = self.spool.next_queued() else {
                return;
            };
            let pid = self.alloc_pid();
            if self.publish_entry(index, pid, false, now).is_err() {
                return;
            }
        }
    }

    fn link_failed(&mut self, now: Millis) {
        self.counters.link_failures += 1;
        self.go_down(now);
        self.push_event(MqttEvent::CloseTransport);
    }

    fn go_down(&mut self, now: Millis) {
        let was_up = self.is_up();
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let delay = self.backoff_delay();
        self.state = SessionState::Down {
            reconnect_at: now + u64::from(delay),
        };
        self.tx.clear();
        self.rx.clear();
        self.ping_sent = None;
        self.suback_wait = None;
        self.subscribed = false;
        self.retries_in_a_row = 0;
        self.spool.requeue_all();
        if was_up {
            self.push_event(MqttEvent::Disconnected);
        }
    }

    /// "Equal jitter" backoff: half the capped exponential delay, plus a random part of the
    /// other half, so a retry is never immediate and boards spread out.
    fn backoff_delay(&mut self) -> u32 {
        let exp = self.failures_in_a_row.saturating_sub(1).min(20);
        let cap = self
            .config
            .backoff_min_ms
            .saturating_mul(1 << exp)
            .min(self.config.backoff_max_ms)
            .max(1);
        let half = cap / 2;
        half + self.jitter.next() % (cap - half + 1)
    }

    /// Handles every complete packet in the receive buffer; false when the link failed.
    fn process_rx(&mut self, now: Millis) -> bool {
        loop {
            let (header_len, remaining) = match packet_length(&self.rx) {
                Ok(Some(v)) => v,
                Ok(None) => return true,
                Err(()) => {
                    self.counters.malformed_packets += 1;
                    self.link_failed(now);
                    return false;
                }
            };
            let total = header_len + remaining;
            if total > RX_CAPACITY {
                self.counters.malformed_packets += 1;
                self.link_failed(now);
                return false;
            }
            if self.rx.len() < total {
                return true;
            }
            let mut packet_buf = [0u8; RX_CAPACITY];
            packet_buf[..total].copy_from_slice(&self.rx[..total]);
            self.rx.copy_within(total.., 0);
            self.rx.truncate(self.rx.len() - total);
            if !self.handle_packet(&packet_buf[..total], header_len, now) {
                return false;
            }
        }
    }

    #[inline(never)]
    fn handle_packet(&mut self, raw: &[u8], header_len: usize, now: Millis) -> bool {
        // Design: mqttrs indexes its input without bounds checks in a few places (packet ids,
        // PUBLISH payload bounds). Only packet types a client may receive are decoded, and only
        // after their minimum length is checked here, so malformed input is an error, not a panic.
        if !plausible_for_client(raw, header_len) {
            self.counters.malformed_packets += 1;
            self.link_failed(now);
            return false;
        }
        let packet = match decode_slice(raw) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => {
                self.counters.malformed_packets += 1;
                self.link_failed(now);
                return false;
            }
        };
        match packet {
            Packet::Connack(ack) => self.handle_connack(ack.code, now),
            Packet::Puback(pid) => {
                if self.spool.handle_puback(pid.get(), now) {
                    self.retries_in_a_row = 0;
                }
                true
            }
            Packet::Suback(ack) => {
                let granted = ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReturnCodes::Success(_)));
                if self.suback_wait.is_some_and(|(p, _)| p == ack.pid.get()) && granted {
                    self.suback_wait = None;
                    self.subscribed = true;
                    true
                } else {
                    // Without the subscription no receipt can arrive: start over.
                    self.link_failed(now);
                    false
                }
            }
            Packet::Pingresp => {
                self.ping_sent = None;
                true
            }
            Packet::Publish(p) => self.handle_publish(&p, now),
            Packet::Connect(_)
            | Packet::Pubrec(_)
            | Packet::Pubrel(_)
            | Packet::Pubcomp(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::Unsuback(_)
            | Packet::Pingreq
            | Packet::Disconnect => {
                self.counters.malformed_packets += 1;
                self.link_failed(now);
                false
            }
        }
    }

    fn handle_connack(&mut self, code: mqttrs::ConnectReturnCode, now: Millis) -> bool {
        if !matches!(self.state, SessionState::AwaitConnack { .. }) {
            self.counters.malformed_packets += 1;
            self.link_failed(now);
            return false;
        }
        if code != mqttrs::ConnectReturnCode::Accepted {
            self.counters.connect_refusals += 1;
            self.link_failed(now);
            return false;
        }
        self.state = SessionState::Up;
        self.counters.connects += 1;
        self.failures_in_a_row = 0;
        self.push_event(MqttEvent::Connected);
        self.send_online_state();
        let pid = self.alloc_pid();
        match self.send_subscribe(pid) {
            Ok(()) => {
                self.suback_wait = Some((pid, now));
                true
            }
            Err(_) => {
                self.link_failed(now);
                false
            }
        }
    }

    fn handle_publish(&mut self, p: &Publish<'_>, now: Millis) -> bool {
        match p.qospid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) => {
                let _ = self.send_small(SmallPacket::Puback(pid));
            }
            QosPid::ExactlyOnce(_) => {
                // We subscribe at QoS 1; a broker never sends QoS 2 to us.
                self.counters.malformed_packets += 1;
                self.link_failed(now);
                return false;
            }
        }
        if p.topic_name != self.down_topic.as_str() {
            self.counters.foreign_downlinks += 1;
            return true;
        }
        match DownlinkFrame::decode(p.payload) {
            Ok(frame) if frame.device_id == self.device_id => {
                if let DownlinkBody::Receipt(r) = &frame.body {
                    self.spool.handle_receipt(r);
                }
                self.push_event(MqttEvent::Downlink(frame.body));
            }
            Ok(_) => self.counters.foreign_downlinks += 1,
            Err(_) => self.counters.bad_downlinks += 1,
        }
        true
    }
}

#[cfg(test)]
mod tests;
