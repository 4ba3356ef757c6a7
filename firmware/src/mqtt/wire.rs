//! Building MQTT packets into the transmit buffer, and the checks a received packet passes
//! before `mqttrs` decodes it.

use heapless::Vec;
use mqttrs::{
    encode_slice, Connect, LastWill, Packet, Pid, Protocol, Publish, QoS, QosPid, Subscribe,
    SubscribeTopic,
};
use vigil_protocol::DeviceState;

use super::{MqttClient, CONTROL_RESERVE, TX_CAPACITY};
use crate::hal::Millis;

impl<const N: usize, const B: usize> MqttClient<N, B> {
    #[inline(never)]
    pub(super) fn publish_entry(
        &mut self,
        index: usize,
        pid: u16,
        dup: bool,
        now: Millis,
    ) -> Result<(), mqttrs::Error> {
        let Some(entry) = self.spool.entry(index) else {
            return Ok(());
        };
        let packet_id = Pid::try_from(pid)?;
        let needed = entry.bytes.len() + self.up_topic.len() + 8;
        if TX_CAPACITY - self.tx.len() < needed + CONTROL_RESERVE {
            return Err(mqttrs::Error::WriteZero);
        }
        push_packet(
            &mut self.tx,
            &Packet::Publish(Publish {
                dup,
                qospid: QosPid::AtLeastOnce(packet_id),
                retain: false,
                topic_name: &self.up_topic,
                payload: &entry.bytes,
            }),
        )?;
        self.spool.mark_in_flight(index, pid, now);
        Ok(())
    }

    // Design: an `mqttrs::Packet` is about 1.3 KiB (its SUBSCRIBE variant holds five 256-byte
    // topic strings). Each packet is built in its own non-inlined function, so at most one
    // lives on the stack at a time instead of one per call site.

    #[inline(never)]
    pub(super) fn send_connect(&mut self) -> Result<(), mqttrs::Error> {
        let mut will = [0u8; 64];
        let will_len = DeviceState {
            device_id: self.device_id(),
            online: false,
            boot_id: self.boot_id,
        }
        .encode(&mut will)
        .map_err(|_| mqttrs::Error::WriteZero)?;
        push_packet(
            &mut self.tx,
            &Packet::Connect(Connect {
                protocol: Protocol::MQTT311,
                keep_alive: self.config.keep_alive_s,
                client_id: self.device_id.as_str(),
                clean_session: !self.config.persistent_session,
                last_will: Some(LastWill {
                    topic: &self.state_topic,
                    message: &will[..will_len],
                    qos: QoS::AtLeastOnce,
                    retain: true,
                }),
                username: (!self.login_secret.is_empty()).then(|| self.device_id.as_str()),
                password: (!self.login_secret.is_empty()).then_some(&self.login_secret[..]),
            }),
        )
    }

    /// Announces the board online (retained, QoS 0: the will is what must be reliable).
    #[inline(never)]
    pub(super) fn send_online_state(&mut self) {
        let mut online = [0u8; 64];
        let state = DeviceState {
            device_id: self.device_id(),
            online: true,
            boot_id: self.boot_id,
        };
        if let Ok(n) = state.encode(&mut online) {
            let _ = push_packet(
                &mut self.tx,
                &Packet::Publish(Publish {
                    dup: false,
                    qospid: QosPid::AtMostOnce,
                    retain: true,
                    topic_name: &self.state_topic,
                    payload: &online[..n],
                }),
            );
        }
    }

    #[inline(never)]
    pub(super) fn send_subscribe(&mut self, pid: u16) -> Result<(), mqttrs::Error> {
        let packet = Packet::Subscribe(Subscribe {
            pid: Pid::try_from(pid)?,
            topics: core::iter::once(SubscribeTopic {
                topic_path: self.down_topic.as_str().into(),
                qos: QoS::AtLeastOnce,
            })
            .collect(),
        });
        push_packet(&mut self.tx, &packet)
    }

    #[inline(never)]
    pub(super) fn send_small(&mut self, packet: SmallPacket) -> Result<(), mqttrs::Error> {
        let packet = match packet {
            SmallPacket::Puback(pid) => Packet::Puback(pid),
            SmallPacket::Pingreq => Packet::Pingreq,
        };
        push_packet(&mut self.tx, &packet)
    }
}

/// Packets without a payload, built only inside [`MqttClient::send_small`].
#[derive(Clone, Copy)]
pub(super) enum SmallPacket {
    Puback(Pid),
    Pingreq,
}

/// Encodes `packet` at the end of `tx`, in place; on error `tx` is unchanged.
#[inline(never)]
pub(super) fn push_packet(
    tx: &mut Vec<u8, TX_CAPACITY>,
    packet: &Packet<'_>,
) -> Result<(), mqttrs::Error> {
    let start = tx.len();
    // Cannot fail: resizing to the capacity.
    let _ = tx.resize(TX_CAPACITY, 0);
    let result = encode_slice(packet, &mut tx[start..]);
    tx.truncate(start + *result.as_ref().unwrap_or(&0));
    result.map(|_| ())
}

/// The fixed header's length and the remaining length, once both are in `buf`.
pub(super) fn packet_length(buf: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((2 + i, remaining)));
        }
    }
    Err(())
}

/// Whether a packet has the minimum shape of one a broker may send to a client.
pub(super) fn plausible_for_client(raw: &[u8], header_len: usize) -> bool {
    let body = &raw[header_len..];
    match raw[0] >> 4 {
        2 | 4 | 11 => body.len() == 2,      // CONNACK, PUBACK, UNSUBACK
        9 => (3..=7).contains(&body.len()), // SUBACK: packet id + 1..=5 return codes
        13 => body.is_empty(),              // PINGRESP
        3 => {
            // PUBLISH: topic length, topic, packet id when QoS > 0.
            let qos = (raw[0] >> 1) & 0b11;
            let id_len = if qos > 0 { 2 } else { 0 };
            body.len() >= 2 && {
                let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                body.len() >= 2 + topic_len + id_len
            }
        }
        _ => false,
    }
}
