//! The gateway's driver loop: it owns the spool, the batch planner and the console's state,
//! and turns board messages, upstream events, console commands and timers into I/O. The
//! decisions live in the sans-IO parts (`validate`, `spool`, `batching`, `status`,
//! `console::alarms`, `relay`); this file only wires them to the sockets and the clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, QoS};
use tracing::{debug, error, info, warn};
use vigil_protocol::{
    encode_batch, BatchEntry, BatchHeader, ButtonKind, DeviceId, DownlinkFrame, GatewayId,
    LocalAck, SiteId, Topic, UplinkBody,
};

use crate::batching::{BatchId, BatchPlanner};
use crate::broker::{Inbound, Outbound};
use crate::console::alarms::{AckError, Alarm, AlarmBoard};
use crate::console::{AckCommand, LinkView};
use crate::provisioning::Provisioning;
use crate::quarantine::Quarantine;
use crate::relay::route_downlink;
use crate::spool::{Arrival, Outcome, Spool, SpoolError};
use crate::status::{BoardLiveness, Counters, StatusHead};
use crate::uplink::UplinkEvent;
use crate::validate::{validate, BoardMessage, Refusal};

/// Unix time in milliseconds: the one clock read, here in the driver.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Removals are committed (without fsync) at least this often…
const FLUSH_EVERY_MS: u64 = 250;
/// …and fsynced at least this often while any are pending.
const SYNC_EVERY_MS: u64 = 5_000;
/// Local acknowledgements in flight at once.
const MAX_ACKS_INFLIGHT: usize = 16;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Tag {
    Batch(BatchId),
    LocalAck(u64),
    Status,
}

pub(crate) struct Core {
    pub site: SiteId,
    pub gateway: GatewayId,
    pub topics: Topics,
    pub provisioning: Arc<Provisioning>,
    pub counters: Arc<Counters>,
    pub spool: Spool,
    pub quarantine: Quarantine,
    pub planner: BatchPlanner,
    pub outbound: Outbound,
    pub alarms: Arc<Mutex<AlarmBoard>>,
    pub boards: Arc<Mutex<BoardLiveness>>,
    pub link_view: Arc<Mutex<LinkView>>,
    pub status_interval_ms: u64,
    pub client: Option<AsyncClient>,
    pub fifo: VecDeque<Tag>,
    pub by_pkid: HashMap<u16, Tag>,
    pub batch_alarms: HashMap<BatchId, Vec<String>>,
    pub acks_inflight: Vec<u64>,
    pub batch_seq: u64,
    pub next_status_ms: u64,
    pub next_flush_ms: u64,
    pub next_sync_ms: u64,
    pub next_expire_ms: u64,
    pub buf: Vec<u8>,
    /// Downlinks from the server, held to be given again when their board is next heard
    /// from: the embedded broker delivers them at QoS 0, so a board that was offline would
    /// otherwise miss a "help is coming".
    pub held_downlinks: HashMap<DeviceId, Vec<(String, Vec<u8>, u64)>>,
}

/// How long a server downlink is held for its board.
const HOLD_DOWNLINK_MS: u64 = 10 * 60 * 1000;
/// Most downlinks held per board.
const MAX_HELD_DOWNLINKS: usize = 4;

pub(crate) struct Topics {
    pub batch: String,
    pub ack: String,
    pub status: String,
}

impl Topics {
    pub fn new(site: &SiteId, gateway: &GatewayId) -> Self {
        let t = |f: fn(SiteId, GatewayId) -> Topic| {
            f(site.clone(), gateway.clone())
                .to_topic_string()
                .to_string()
        };
        Self {
            batch: t(|site, gateway| Topic::GatewayBatch { site, gateway }),
            ack: t(|site, gateway| Topic::GatewayAck { site, gateway }),
            status: t(|site, gateway| Topic::GatewayStatus { site, gateway }),
        }
    }
}

impl Core {
    /// Validates, spools and confirms a burst of board messages.
    pub fn handle_inbound(&mut self, msgs: Vec<Inbound>, now: u64) {
        let mut arrivals = Vec::with_capacity(msgs.len());
        for m in msgs {
            let (topic, payload) = match m {
                Inbound::Message { topic, payload } => (topic, payload),
                Inbound::Refused { refusal, raw } => {
                    self.refuse(&refusal, "(board connection)", &raw, now);
                    continue;
                }
            };
            // The gateway's own downlinks come back through the catch-all subscription.
            if matches!(Topic::parse(&topic), Ok(Topic::DeviceDown(_))) {
                continue;
            }
            match validate(&self.provisioning, &topic, &payload) {
                Ok(BoardMessage::Uplink { frame, raw }) => {
                    Counters::add(&self.counters.frames_received, 1);
                    self.give_held_downlinks(&frame.device_id, now);
                    if let Ok(mut b) = self.boards.lock() {
                        b.observe_frame(&frame, now);
                    }
                    arrivals.push(Arrival {
                        frame,
                        raw,
                        received_ms: now,
                    });
                }
                Ok(BoardMessage::State(s)) => {
                    if s.online {
                        self.give_held_downlinks(&s.device_id, now);
                    }
                    if let Ok(mut b) = self.boards.lock() {
                        b.observe_state(&s.device_id, s.online, now);
                    }
                }
                Err(refusal) => self.refuse(&refusal, &topic, &payload, now),
            }
        }
        if arrivals.is_empty() {
            return;
        }
        let mut new_alarms = Vec::new();
        let provisioning = self.provisioning.clone();
        let admitted = self.spool.admit(&arrivals, |a| {
            let alarm = Alarm::from_frame(&a.frame, a.received_ms, &provisioning)?;
            let json = serde_json::to_vec(&alarm).ok()?;
            let key = alarm.key.clone();
            new_alarms.push(alarm);
            Some((key, json))
        });
        let (outcomes, receipts) = match admitted {
            Ok(x) => x,
            Err(e) => {
                // Nothing was confirmed: the boards keep these frames and send them again.
                Counters::add(&self.counters.spool_errors, 1);
                error!(error = %e, frames = arrivals.len(), "spool write failed; no receipts sent");
                return;
            }
        };
        let mut refused_full = 0;
        for (a, o) in arrivals.iter().zip(&outcomes) {
            match o {
                Outcome::Stored(key) => {
                    Counters::add(&self.counters.frames_spooled, 1);
                    if a.frame.is_urgent() {
                        self.planner.push_urgent(*key);
                        info!(device = %a.frame.device_id, seq = a.frame.seq, kind = a.frame.body.kind_name(), "urgent frame spooled");
                    }
                    if let UplinkBody::Button(b) = &a.frame.body {
                        if let (ButtonKind::Cancel, Some(seq)) = (b.kind, b.cancels_seq) {
                            self.cancel_alarm(a.frame.device_id.as_str(), a.frame.boot_id, seq);
                        }
                    }
                }
                Outcome::Duplicate => Counters::add(&self.counters.frames_duplicate, 1),
                Outcome::RefusedFull => refused_full += 1,
            }
        }
        if refused_full > 0 {
            Counters::add(&self.counters.frames_refused_spool_full, refused_full);
            warn!(
                refused = refused_full,
                spool_bytes = self.spool.bytes(),
                "spool full: routine frames refused (their boards keep them)"
            );
        }
        if let Ok(mut board) = self.alarms.lock() {
            for a in new_alarms {
                warn!(alarm = %a.key, kind = ?a.kind, resident = ?a.resident, room = ?a.room, "local alarm raised");
                board.insert(a);
            }
        }
        for r in receipts {
            self.send_to_board(&r);
        }
    }

    fn give_held_downlinks(&mut self, device: &DeviceId, now: u64) {
        let Some(held) = self.held_downlinks.remove(device) else {
            return;
        };
        for (topic, payload, until) in held {
            if now <= until && self.outbound.publish(topic, payload) {
                Counters::add(&self.counters.downlinks_relayed, 1);
                debug!(%device, "held downlink given again to its board");
            }
        }
    }

    fn refuse(&mut self, refusal: &Refusal, topic: &str, payload: &[u8], now: u64) {
        let reason = refusal.reason();
        self.counters.refuse(reason);
        warn!(reason, topic, detail = %refusal, "board message refused");
        if let Err(e) = self
            .quarantine
            .record(now, reason, refusal.to_string(), topic, payload)
        {
            warn!(error = %e, "cannot write quarantine file");
        }
    }

    fn cancel_alarm(&mut self, device: &str, boot: u32, seq: u32) {
        let updated = self
            .alarms
            .lock()
            .ok()
            .and_then(|mut b| b.cancel(device, boot, seq).cloned());
        if let Some(a) = updated {
            self.persist_alarm(&a);
        }
    }

    fn persist_alarm(&self, a: &Alarm) {
        let stored = serde_json::to_vec(a)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                self.spool
                    .put_alarm(&a.key, &json)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = stored {
            Counters::add(&self.counters.spool_errors, 1);
            warn!(alarm = %a.key, error = %e, "cannot store console alarm");
        }
    }

    fn send_to_board(&self, frame: &DownlinkFrame) {
        let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
        match frame.encode(&mut buf) {
            Ok(n) => {
                let topic = Topic::DeviceDown(frame.device_id.clone())
                    .to_topic_string()
                    .to_string();
                if self.outbound.publish(topic, buf[..n].to_vec()) {
                    Counters::add(&self.counters.receipts_sent, 1);
                } else {
                    warn!(device = %frame.device_id, "boards' broker link is gone; downlink dropped");
                }
            }
            Err(e) => warn!(error = %e, device = %frame.device_id, "cannot encode downlink"),
        }
    }

    /// Publishes every batch the planner allows now.
    pub fn pump_uplink(&mut self, now: u64) -> Result<(), SpoolError> {
        let Some(client) = self.client.clone() else {
            return Ok(());
        };
        while let Some(batch) = self.planner.poll_batch(now, self.spool.index()) {
            let frames = self.spool.read(&batch.keys)?;
            let entries: Vec<BatchEntry<'_>> = frames
                .iter()
                .map(|f| BatchEntry {
                    received_ms: f.received_ms,
                    frame: &f.raw,
                })
                .collect();
            self.batch_seq += 1;
            let header = BatchHeader {
                gateway_id: self.gateway.clone(),
                site_id: self.site.clone(),
                batch_seq: self.batch_seq,
            };
            let n = match encode_batch(&header, &entries, &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    // Cannot happen within the planner's bounds; never lose the frames over it.
                    error!(error = %e, "cannot encode batch; it will be planned again");
                    self.planner.handle_disconnected();
                    self.planner.handle_connected();
                    return Ok(());
                }
            };
            if batch.urgent {
                let keys = frames
                    .iter()
                    .filter_map(|f| vigil_protocol::UplinkFrame::decode(&f.raw).ok())
                    .map(|f| Alarm::key_of(f.device_id.as_str(), f.boot_id, f.seq))
                    .collect();
                self.batch_alarms.insert(batch.id, keys);
            }
            let payload = self.buf[..n].to_vec();
            if client
                .try_publish(self.topics.batch.clone(), QoS::AtLeastOnce, false, payload)
                .is_err()
            {
                warn!("uplink request queue refused a batch; re-planning what is unacknowledged");
                self.reset_link_state();
                self.planner.handle_connected();
                return Ok(());
            }
            self.fifo.push_back(Tag::Batch(batch.id));
            Counters::add(&self.counters.batches_sent, 1);
            Counters::add(&self.counters.frames_sent_upstream, frames.len() as u64);
        }
        Ok(())
    }

    fn reset_link_state(&mut self) {
        self.planner.handle_disconnected();
        self.fifo.clear();
        self.by_pkid.clear();
        self.batch_alarms.clear();
        self.acks_inflight.clear();
    }

    pub fn handle_uplink(&mut self, ev: UplinkEvent, now: u64) -> Result<(), SpoolError> {
        match ev {
            UplinkEvent::Connected(client) => {
                self.reset_link_state();
                self.client = Some(client);
                self.planner.handle_connected();
                Counters::add(&self.counters.uplink_connects, 1);
                self.next_status_ms = now;
                self.send_local_acks()?;
            }
            UplinkEvent::Disconnected => {
                self.client = None;
                self.reset_link_state();
                Counters::add(&self.counters.uplink_disconnects, 1);
                warn!(spooled = self.spool.len(), "uplink down; spooling");
            }
            UplinkEvent::Published(pkid) => match self.fifo.pop_front() {
                Some(tag) if pkid != 0 => {
                    self.by_pkid.insert(pkid, tag);
                }
                Some(_) => {}
                None => debug!(pkid, "publish event without a matching request"),
            },
            UplinkEvent::Acked(pkid) => match self.by_pkid.remove(&pkid) {
                Some(Tag::Batch(id)) => {
                    if let Some((keys, _urgent)) = self.planner.handle_ack(id) {
                        Counters::add(&self.counters.batches_acked, 1);
                        Counters::add(&self.counters.frames_acked_upstream, keys.len() as u64);
                        self.spool.remove(&keys);
                    }
                    for key in self.batch_alarms.remove(&id).unwrap_or_default() {
                        let updated = self
                            .alarms
                            .lock()
                            .ok()
                            .and_then(|mut b| b.reached_server(&key).cloned());
                        if let Some(a) = updated {
                            info!(alarm = %a.key, "alarm reached the server's broker");
                            self.persist_alarm(&a);
                        }
                    }
                }
                Some(Tag::LocalAck(key)) => {
                    self.acks_inflight.retain(|k| *k != key);
                    self.spool.remove_local_ack(key)?;
                    self.send_local_acks()?;
                }
                Some(Tag::Status) | None => {}
            },
            UplinkEvent::Downlink(payload) => match route_downlink(&payload, &self.provisioning) {
                Ok((topic, frame)) => {
                    if self.outbound.publish(topic.clone(), payload.clone()) {
                        Counters::add(&self.counters.downlinks_relayed, 1);
                        info!(device = %frame.device_id, "downlink relayed to board");
                    }
                    let held = self.held_downlinks.entry(frame.device_id).or_default();
                    held.retain(|(_, _, until)| *until >= now);
                    if held.len() >= MAX_HELD_DOWNLINKS {
                        held.remove(0);
                    }
                    held.push((topic, payload, now + HOLD_DOWNLINK_MS));
                }
                Err(e) => {
                    Counters::add(&self.counters.downlinks_refused, 1);
                    warn!(error = %e, "downlink from upstream refused");
                }
            },
        }
        Ok(())
    }

    fn send_local_acks(&mut self) -> Result<(), SpoolError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        for (key, encoded) in self.spool.local_acks()? {
            if self.acks_inflight.len() >= MAX_ACKS_INFLIGHT {
                break;
            }
            if self.acks_inflight.contains(&key) {
                continue;
            }
            if client
                .try_publish(self.topics.ack.clone(), QoS::AtLeastOnce, false, encoded)
                .is_err()
            {
                break;
            }
            self.fifo.push_back(Tag::LocalAck(key));
            self.acks_inflight.push(key);
        }
        Ok(())
    }

    /// Records a local acknowledgement from the console and forwards it upstream.
    pub fn handle_ack(&mut self, cmd: AckCommand, now: u64) -> Result<(), SpoolError> {
        let result = self
            .alarms
            .lock()
            .map_err(|_| AckError::Storage("alarm board poisoned".into()))
            .and_then(|mut b| b.acknowledge(&cmd.key, cmd.by.as_str(), now).cloned());
        let result = match result {
            Ok(alarm) => self.store_ack(&alarm, &cmd, now).map(|()| alarm),
            Err(e) => Err(e),
        };
        let _ = cmd.reply.send(result);
        self.send_local_acks()
    }

    fn store_ack(&mut self, alarm: &Alarm, cmd: &AckCommand, now: u64) -> Result<(), AckError> {
        let device = vigil_protocol::DeviceId::new(&alarm.device)
            .map_err(|_| AckError::Storage("alarm names an invalid device".into()))?;
        let ack = LocalAck {
            gateway_id: self.gateway.clone(),
            device_id: device,
            boot_id: alarm.boot_id,
            seq: alarm.seq,
            acked_ms: now,
            by: cmd.by.clone(),
        };
        let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
        let n = ack
            .encode(&mut buf)
            .map_err(|e| AckError::Storage(e.to_string()))?;
        self.spool
            .put_local_ack(&buf[..n])
            .map_err(|e| AckError::Storage(e.to_string()))?;
        self.persist_alarm(alarm);
        Counters::add(&self.counters.local_acks, 1);
        info!(alarm = %alarm.key, by = %cmd.by, "alarm acknowledged on the local console");
        Ok(())
    }

    /// Timers: status reports, removal commits, alarm expiry; returns the next deadline.
    pub fn handle_timeout(&mut self, now: u64) -> Result<u64, SpoolError> {
        if now >= self.next_flush_ms {
            let durable = now >= self.next_sync_ms;
            if durable || self.spool.pending_removals() > 0 {
                self.spool.flush_removals(durable)?;
            }
            if durable {
                self.next_sync_ms = now + SYNC_EVERY_MS;
            }
            self.next_flush_ms = now + FLUSH_EVERY_MS;
        }
        if now >= self.next_status_ms {
            self.publish_status(now);
            self.next_status_ms = now + self.status_interval_ms;
        }
        if now >= self.next_expire_ms {
            let expired = self
                .alarms
                .lock()
                .map(|mut b| b.expire(now))
                .unwrap_or_default();
            if !expired.is_empty() {
                self.spool.delete_alarms(&expired)?;
            }
            self.next_expire_ms = now + 60_000;
        }
        if let Ok(mut v) = self.link_view.lock() {
            *v = LinkView {
                uplink_connected: self.client.is_some(),
                spool_frames: self.spool.len() as u64,
                oldest_unsent_ms: self.spool.oldest_received_ms(),
            };
        }
        let planner = self.planner.next_deadline(now, self.spool.index());
        Ok([
            Some(self.next_flush_ms),
            Some(self.next_status_ms),
            Some(self.next_expire_ms),
            planner,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + 1_000))
    }

    fn publish_status(&mut self, now: u64) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let head = StatusHead {
            gateway_id: self.gateway.clone(),
            site_id: self.site.clone(),
            now_ms: now,
            uplink_connected: true,
            spool_frames: self.spool.len() as u64,
            spool_bytes: self.spool.bytes(),
            oldest_received_ms: self.spool.oldest_received_ms(),
        };
        let reports = self
            .boards
            .lock()
            .map(|b| b.reports(&head))
            .unwrap_or_default();
        for r in reports {
            match r.encode(&mut self.buf) {
                Ok(n) => {
                    let payload = self.buf[..n].to_vec();
                    if client
                        .try_publish(self.topics.status.clone(), QoS::AtMostOnce, false, payload)
                        .is_ok()
                    {
                        self.fifo.push_back(Tag::Status);
                    }
                }
                Err(e) => warn!(error = %e, "cannot encode gateway status"),
            }
        }
    }
}
