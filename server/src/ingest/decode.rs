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
