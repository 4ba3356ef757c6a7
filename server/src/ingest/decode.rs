//! From one MQTT message to frames and quarantine records: no I/O, no clock.

use bytes::Bytes;
use vigil_protocol::topic::TopicError;
use vigil_protocol::{Batch, DecodeError, Topic, UplinkFrame};

use super::DeviceDirectory;
use crate::store::{IncomingFrame, Quarantined};

/// What became of one message.
#[derive(Debug, Default)]
pub struct DecodedMessage {
    pub frames: Vec<IncomingFrame>,
    pub quarantine: Vec<Quarantined>,
}

/// Why a message (or one entry of a batch) was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("topic is not one the server ingests: {0}")]
    Topic(#[from] TopicError),
    #[error("topic {topic} is not an ingest topic")]
    NotIngestTopic { topic: String },
    #[error("topic names {in_topic} but the payload says {in_payload}")]
    TopicMismatch {
        in_topic: String,
        in_payload: String,
    },
    #[error("device {0} is not in the registry")]
    UnknownDevice(String),
    #[error("topic is not UTF-8")]
    TopicNotUtf8,
}

impl Rejection {
    /// Stable reason code for counters and the quarantine table.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Decode(e) => e.code(),
            Rejection::Topic(_) | Rejection::NotIngestTopic { .. } | Rejection::TopicNotUtf8 => {
                "unknown_topic"
            }
            Rejection::TopicMismatch { .. } => "topic_mismatch",
            Rejection::UnknownDevice(_) => "unknown_device",
        }
    }
}

/// Limits that apply while decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Bytes of a rejected payload kept in quarantine.
    pub quarantine_payload_bytes: usize,
}

/// Decodes one message received on `topic` at `now_ms`. Never fails: whatever cannot be
/// accepted becomes a quarantine record with its reason; the rest of a batch is kept.
pub fn decode_message(
    topic: &[u8],
    payload: &Bytes,
    now_ms: i64,
    directory: &dyn DeviceDirectory,
    limits: DecodeLimits,
) -> DecodedMessage {
    let mut out = DecodedMessage::default();
    let topic_text = String::from_utf8_lossy(topic).into_owned();
    let reject = |out: &mut DecodedMessage, why: Rejection, bytes: &[u8]| {
        let keep = bytes.len().min(limits.quarantine_payload_bytes);
        tracing::warn!(topic = %topic_text, reason = why.code(), error = %why,
            "message quarantined");
        metrics::counter!("vigil_ingest_quarantined_total", "reason" => why.code()).increment(1);
        out.quarantine.push(Quarantined {
            received_ms: now_ms,
            topic: topic_text.clone(),
            reason: why.code().to_owned(),
            detail: why.to_string(),
            payload: bytes[..keep].to_vec(),
            payload_len: bytes.len(),
        });
    };
    let parsed = match std::str::from_utf8(topic) {
        Ok(t) => Topic::parse(t).map_err(Rejection::from),
        Err(_) => Err(Rejection::TopicNotUtf8),
    };
    match parsed {
        Err(why) => reject(&mut out, why, &payload[..]),
        Ok(Topic::GatewayBatch { site, gateway }) => {
            let batch = match Batch::decode(payload) {
                Ok(b) => b,
                Err(e) => {
                    reject(&mut out, e.into(), &payload[..]);
                    return out;
                }
            };
            if batch.header.site_id != site || batch.header.gateway_id != gateway {
                let why = Rejection::TopicMismatch {
                    in_topic: format!("site {site} gateway {gateway}"),
                    in_payload: format!(
                        "site {} gateway {}",
                        batch.header.site_id, batch.header.gateway_id
                    ),
                };
                reject(&mut out, why, &payload[..]);
                return out;
            }
            for entry in batch.entries() {
                let frame = match entry.decode_frame() {
                    Ok(f) => f,
                    Err(e) => {
                        reject(&mut out, e.into(), entry.frame);
                        continue;
                    }
                };
                if !directory.knows(&frame.device_id) {
                    let why = Rejection::UnknownDevice(frame.device_id.to_string());
                    reject(&mut out, why, entry.frame);
                    continue;
                }
                out.frames.push(IncomingFrame {
                    frame,
                    raw: payload.slice_ref(entry.frame),
                    via: Some((site.clone(), gateway.clone())),
                    gateway_received_ms: Some(entry.received_ms),
                    server_received_ms: now_ms,
                });
            }
        }
        Ok(Topic::DeviceUp(device)) => match UplinkFrame::decode(payload) {
            Err(e) => reject(&mut out, e.into(), &payload[..]),
            Ok(frame) if frame.device_id != device => {
                let why = Rejection::TopicMismatch {
                    in_topic: format!("device {device}"),
                    in_payload: format!("device {}", frame.device_id),
                };
                reject(&mut out, why, &payload[..]);
            }
            Ok(frame) if !directory.knows(&frame.device_id) => {
                let why = Rejection::UnknownDevice(frame.device_id.to_string());
                reject(&mut out, why, &payload[..]);
            }
            Ok(frame) => out.frames.push(IncomingFrame {
                frame,
                raw: payload.clone(),
                via: None,
                gateway_received_ms: None,
                server_received_ms: now_ms,
            }),
        },
        Ok(
            other @ (Topic::DeviceDown(_)
            | Topic::DeviceState(_)
            | Topic::GatewayStatus { .. }
            | Topic::GatewayAck { .. }
            | Topic::GatewayDown { .. }),
        ) => {
            let why = Rejection::NotIngestTopic {
                topic: other.to_string(),
            };
            reject(&mut out, why, &payload[..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::AcceptAllDevices;
    use vigil_protocol::{BatchEntry, BatchHeader, GatewayId, SiteId};

    const LIMITS: DecodeLimits = DecodeLimits {
        quarantine_payload_bytes: 8,
    };

    fn heartbeat(device: &str, seq: u32) -> Vec<u8> {
        let f = UplinkFrame {
            device_id: vigil_protocol::DeviceId::new(device).unwrap(),
            boot_id: 1,
            seq,
            uptime_ms: 1,
            wall_ms: None,
            body: vigil_protocol::UplinkBody::Heartbeat(vigil_protocol::Heartbeat {
                battery_mv: 3000,
                rssi_dbm: -50,
                firmware: vigil_protocol::FirmwareVersion::new("1").unwrap(),
            }),
        };
        let mut buf = [0u8; 512];
        let n = f.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn batch(site: &str, frames: &[&[u8]]) -> Bytes {
        let entries: Vec<BatchEntry<'_>> = frames
            .iter()
            .map(|f| BatchEntry {
                received_ms: 7,
                frame: f,
            })
            .collect();
        let header = BatchHeader {
            gateway_id: GatewayId::new("gw").unwrap(),
            site_id: SiteId::new(site).unwrap(),
            batch_seq: 1,
        };
        let mut buf = vec![0u8; 8192];
        let n = vigil_protocol::encode_batch(&header, &entries, &mut buf).unwrap();
        Bytes::copy_from_slice(&buf[..n])
    }

    fn decode(topic: &str, payload: Bytes) -> DecodedMessage {
        decode_message(topic.as_bytes(), &payload, 1000, &AcceptAllDevices, LIMITS)
    }

    #[test]
    fn one_bad_entry_is_quarantined_and_the_rest_of_the_batch_is_kept() {
        let good = heartbeat("hb-1", 1);
        let out = decode(
            "vigil/v1/site/s1/gw/gw/batch",
            batch("s1", &[&good, &[0xff, 0xff], &good]),
        );
        assert_eq!(out.frames.len(), 2);
        assert_eq!(out.quarantine.len(), 1);
        assert_eq!(out.quarantine[0].payload, vec![0xff, 0xff]);
        let f = &out.frames[0];
        assert_eq!(f.gateway_received_ms, Some(7));
        assert_eq!(f.server_received_ms, 1000);
        assert_eq!(
            &f.raw[..],
            &good[..],
            "the stored bytes are the board's frame"
        );
    }

    #[test]
    fn a_batch_whose_header_contradicts_its_topic_is_quarantined_whole() {
        let good = heartbeat("hb-1", 1);
        let out = decode("vigil/v1/site/s1/gw/gw/batch", batch("s2", &[&good]));
        assert!(out.frames.is_empty());
        assert_eq!(out.quarantine[0].reason, "topic_mismatch");
    }

    #[test]
    fn garbage_gets_the_decoder_reason_and_a_capped_copy() {
        let out = decode(
            "vigil/v1/site/s1/gw/gw/batch",
            Bytes::from_static(b"\x01 not a batch at all"),
        );
        assert_eq!(out.quarantine.len(), 1);
        let q = &out.quarantine[0];
        assert_eq!(q.reason, "malformed");
        assert_eq!(q.payload.len(), 8);
        assert_eq!(q.payload_len, 20);
        assert_eq!(q.topic, "vigil/v1/site/s1/gw/gw/batch");
    }

    #[test]
    fn a_direct_uplink_must_come_from_the_device_its_topic_names() {
        let ok = decode("vigil/v1/dev/hb-1/up", Bytes::from(heartbeat("hb-1", 3)));
        assert_eq!(ok.frames.len(), 1);
        assert_eq!(ok.frames[0].via, None);
        let bad = decode("vigil/v1/dev/hb-2/up", Bytes::from(heartbeat("hb-1", 3)));
        assert_eq!(bad.quarantine[0].reason, "topic_mismatch");
    }

    #[test]
    fn unknown_devices_and_foreign_topics_are_quarantined() {
        let nobody = |_: &vigil_protocol::DeviceId| false;
        let out = decode_message(
            b"vigil/v1/dev/hb-1/up",
            &Bytes::from(heartbeat("hb-1", 3)),
            1,
            &nobody,
            LIMITS,
        );
        assert_eq!(out.quarantine[0].reason, "unknown_device");
        for topic in [
            &b"vigil/v1/dev/hb-1/state"[..],
            b"vigil/v1/dev/a b/up",
            b"other/topic",
            b"vigil/v1/dev/\xff/up",
        ] {
            let out = decode_message(topic, &Bytes::new(), 1, &AcceptAllDevices, LIMITS);
            assert!(out.frames.is_empty());
            assert_eq!(out.quarantine[0].reason, "unknown_topic", "{topic:?}");
        }
    }
}
