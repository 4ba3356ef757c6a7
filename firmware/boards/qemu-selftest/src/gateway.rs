//! The other end of the board's link inside the self-test: a minimal MQTT broker with the
//! gateway's behaviour (durable receipts, "help is coming"), so the frames the board encodes
//! are checked byte for byte as a real gateway would decode them.

use heapless::Vec;
use mqttrs::{
    decode_slice, encode_slice, Connack, ConnectReturnCode, Packet, Pid, Publish, QoS, QosPid,
    Suback, SubscribeReturnCodes,
};
use vigil_firmware::mqtt::MqttClient;
use vigil_protocol::limits::MAX_RECEIPT_EXTRA;
use vigil_protocol::{
    DeviceId, DeviceState, DownlinkBody, DownlinkFrame, DurableReceipt, UplinkFrame,
};

const BUF: usize = 720;

pub struct Gateway {
    device: DeviceId,
    down_topic: heapless::String<128>,
    open: bool,
    inbox: Vec<u8, BUF>,
    pub received: Vec<UplinkFrame, 4>,
    /// How many of `received` the test has looked at.
    pub seen: usize,
    pub will: Option<DeviceState>,
    pub online: Option<bool>,
    pub connects: u32,
    pub subscribed: bool,
    pub protocol_errors: u32,
    outbox: Vec<DownlinkBody, 4>,
    next_pid: u16,
}

impl Gateway {
    pub fn new(device: DeviceId) -> Self {
        let down_topic = vigil_protocol::Topic::DeviceDown(device.clone()).to_topic_string();
        Self {
            device,
            down_topic,
            open: false,
            inbox: Vec::new(),
            received: Vec::new(),
            seen: 0,
            will: None,
            online: None,
            connects: 0,
            subscribed: false,
            protocol_errors: 0,
            outbox: Vec::new(),
            next_pid: 1,
        }
    }

    pub fn open(&mut self) {
        self.open = true;
        self.inbox.clear();
    }

    pub fn close(&mut self) {
        self.open = false;
        self.subscribed = false;
    }

    pub fn queue_downlink(&mut self, body: DownlinkBody) {
        if self.outbox.push(body).is_err() {
            self.protocol_errors += 1;
        }
    }

    /// Confirms durably every frame received so far, as the gateway does after its fsync.
    pub fn queue_receipt(&mut self, boot_id: u32) {
        let mut held_through = 0;
        while self.received.iter().any(|f| f.seq == held_through + 1) {
            held_through += 1;
        }
        let mut also_held = Vec::<u32, MAX_RECEIPT_EXTRA>::new();
        for f in &self.received {
            if f.seq > held_through {
                let _ = also_held.push(f.seq);
            }
        }
        self.queue_downlink(DownlinkBody::Receipt(DurableReceipt {
            boot_id,
            held_through,
            also_held,
        }));
    }

    /// Moves bytes both ways once; returns whether anything moved.
    #[inline(never)]
    pub fn exchange<const N: usize, const B: usize>(
        &mut self,
        client: &mut MqttClient<N, B>,
        now: u64,
    ) -> bool {
        if !self.open {
            return false;
        }
        let mut moved = false;
        let n = client.transmit_buffer().len().min(BUF - self.inbox.len());
        if n > 0 {
            let _ = self.inbox.extend_from_slice(&client.transmit_buffer()[..n]);
            client.mark_transmitted(n, now);
            moved = true;
        }
        let mut reply = [0u8; BUF];
        let mut len = 0;
        while let Some(total) = packet_len(&self.inbox) {
            let mut raw = [0u8; BUF];
            raw[..total].copy_from_slice(&self.inbox[..total]);
            self.inbox.copy_within(total.., 0);
            self.inbox.truncate(self.inbox.len() - total);
            len += self.handle(&raw[..total], &mut reply[len..]);
        }
        if self.subscribed {
            while !self.outbox.is_empty() && len + 200 <= BUF {
                let body = self.outbox.remove(0);
                len += self.encode_downlink(body, &mut reply[len..]);
            }
        }
        if len > 0 {
            client.handle_bytes(&reply[..len], now);
            moved = true;
        }
        moved
    }

    #[inline(never)]
    fn handle(&mut self, raw: &[u8], out: &mut [u8]) -> usize {
        let packet = match decode_slice(raw) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => {
                self.protocol_errors += 1;
                return 0;
            }
        };
        let answer = match packet {
            Packet::Connect(c) => {
                self.connects += 1;
                self.will = c
                    .last_will
                    .and_then(|w| DeviceState::decode(w.message).ok());
                Some(Packet::Connack(Connack {
                    session_present: false,
                    code: ConnectReturnCode::Accepted,
                }))
            }
            Packet::Subscribe(s) => {
                self.subscribed = s
                    .topics
                    .iter()
                    .any(|t| t.topic_path.as_str() == self.down_topic.as_str());
                Some(Packet::Suback(Suback {
                    pid: s.pid,
                    return_codes: s
                        .topics
                        .iter()
                        .map(|_| SubscribeReturnCodes::Success(QoS::AtLeastOnce))
                        .collect(),
                }))
            }
            Packet::Publish(p) => {
                if p.topic_name.ends_with("/up") {
                    match UplinkFrame::decode(p.payload) {
                        Ok(f) if f.device_id == self.device => {
                            if !self.received.iter().any(|r| r.seq == f.seq)
                                && self.received.push(f).is_err()
                            {
                                self.protocol_errors += 1;
                            }
                        }
                        Ok(_) | Err(_) => self.protocol_errors += 1,
                    }
                } else if p.topic_name.ends_with("/state") {
                    self.online = DeviceState::decode(p.payload).ok().map(|s| s.online);
                }
                match p.qospid {
                    QosPid::AtLeastOnce(pid) => Some(Packet::Puback(pid)),
                    QosPid::AtMostOnce | QosPid::ExactlyOnce(_) => None,
                }
            }
            Packet::Pingreq => Some(Packet::Pingresp),
            Packet::Puback(_) => None,
            _ => {
                self.protocol_errors += 1;
                None
            }
        };
        match answer {
            Some(a) => encode_slice(&a, out).unwrap_or(0),
            None => 0,
        }
    }

    #[inline(never)]
    fn encode_downlink(&mut self, body: DownlinkBody, out: &mut [u8]) -> usize {
        let mut payload = [0u8; 160];
        let Ok(n) = (DownlinkFrame {
            device_id: self.device.clone(),
            body,
        })
        .encode(&mut payload) else {
            self.protocol_errors += 1;
            return 0;
        };
        let pid = self.next_pid;
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        let Ok(pid) = Pid::try_from(pid) else {
            return 0;
        };
        encode_slice(
            &Packet::Publish(Publish {
                dup: false,
                qospid: QosPid::AtLeastOnce(pid),
                retain: false,
                topic_name: self.down_topic.as_str(),
                payload: &payload[..n],
            }),
            out,
        )
        .unwrap_or(0)
    }
}

/// Length of the first whole packet in `buf`, if it is complete.
fn packet_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + remaining;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}
