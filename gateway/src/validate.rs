//! Every message from the boards' broker is checked here before anything else sees it.

use vigil_protocol::topic::TopicError;
use vigil_protocol::{DecodeError, DeviceId, DeviceState, Topic, UplinkFrame};

use crate::provisioning::Provisioning;

/// A message a board may send, decoded.
// Built once per message and consumed at once; boxing the frame would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardMessage {
    /// A frame on the board's own `…/up` topic; `raw` is forwarded upstream unchanged.
    Uplink { frame: UplinkFrame, raw: Vec<u8> },
    /// The board's online state or its will on `…/state`.
    State(DeviceState),
}

/// Why a message was refused. Each variant has its own counter and quarantine reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("topic {topic:?} is not a board topic: {error}")]
    BadTopic { topic: String, error: TopicError },
    #[error("boards may publish only to their own up and state topics, not {topic:?}")]
    NotAPublishTopic { topic: String },
    #[error("device {device} is not provisioned on this gateway")]
    UnknownDevice { device: String },
    #[error("frame of device {frame_device} published on the topic of device {topic_device}")]
    DeviceMismatch {
        topic_device: String,
        frame_device: String,
    },
    #[error("malformed frame: {0}")]
    Malformed(DecodeError),
    #[error("login with client id {client_id:?}, which is not a device id")]
    BadLogin { client_id: String },
    #[error("boards may subscribe only to their own downlink topic, not {filter:?}")]
    SubscribeNotAllowed { filter: String },
    #[error("MQTT protocol violation: {detail}")]
    Protocol { detail: String },
}

impl Refusal {
    /// A short, stable name used for counters and quarantine records.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadTopic { .. } => "bad_topic",
            Self::NotAPublishTopic { .. } => "acl_topic",
            Self::UnknownDevice { .. } => "unknown_device",
            Self::DeviceMismatch { .. } => "acl_device_mismatch",
            Self::Malformed(_) => "malformed",
            Self::BadLogin { .. } => "bad_login",
            Self::SubscribeNotAllowed { .. } => "acl_subscribe",
            Self::Protocol { .. } => "mqtt_protocol",
        }
    }

    /// Every reason, for counters.
    pub const REASONS: [&'static str; 8] = [
        "bad_topic",
        "acl_topic",
        "unknown_device",
        "acl_device_mismatch",
        "malformed",
        "bad_login",
        "acl_subscribe",
        "mqtt_protocol",
    ];
}

/// Decodes and checks one message published on the boards' broker.
pub fn validate(
    provisioning: &Provisioning,
    topic: &str,
    payload: &[u8],
) -> Result<BoardMessage, Refusal> {
    let parsed = Topic::parse(topic).map_err(|error| Refusal::BadTopic {
        topic: topic.to_owned(),
        error,
    })?;
    let (topic_device, is_state) = match parsed {
        Topic::DeviceUp(d) => (d, false),
        Topic::DeviceState(d) => (d, true),
        Topic::DeviceDown(_)
        | Topic::GatewayBatch { .. }
        | Topic::GatewayStatus { .. }
        | Topic::GatewayAck { .. }
        | Topic::GatewayDown { .. } => {
            return Err(Refusal::NotAPublishTopic {
                topic: topic.to_owned(),
            })
        }
    };
    if provisioning.device(&topic_device).is_none() {
        return Err(Refusal::UnknownDevice {
            device: topic_device.to_string(),
        });
    }
    let check_device = |frame_device: &DeviceId| {
        if *frame_device == topic_device {
            Ok(())
        } else {
            Err(Refusal::DeviceMismatch {
                topic_device: topic_device.to_string(),
                frame_device: frame_device.to_string(),
            })
        }
    };
    if is_state {
        let state = DeviceState::decode(payload).map_err(Refusal::Malformed)?;
        check_device(&state.device_id)?;
        Ok(BoardMessage::State(state))
    } else {
        let frame = UplinkFrame::decode(payload).map_err(Refusal::Malformed)?;
        check_device(&frame.device_id)?;
        Ok(BoardMessage::Uplink {
            frame,
            raw: payload.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::{hash_secret_with, low_cost_argon2};
    use vigil_protocol::{Heartbeat, UplinkBody};

    fn provisioning() -> Provisioning {
        let h = hash_secret_with(&low_cost_argon2(), "x").unwrap();
        Provisioning::from_toml(&format!(
            "[[device]]\nid = \"a\"\nsecret_hash = \"{h}\"\n[[device]]\nid = \"b\"\nsecret_hash = \"{h}\"\n"
        ))
        .unwrap()
    }

    fn frame(device: &str) -> Vec<u8> {
        let f = UplinkFrame {
            device_id: DeviceId::new(device).unwrap(),
            boot_id: 1,
            seq: 1,
            uptime_ms: 10,
            wall_ms: None,
            body: UplinkBody::Heartbeat(Heartbeat {
                battery_mv: 3000,
                rssi_dbm: -70,
                firmware: vigil_protocol::FirmwareVersion::new("1.0").unwrap(),
            }),
        };
        let mut buf = [0u8; 512];
        let n = f.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_frame_on_its_own_topic_is_accepted() {
        let p = provisioning();
        let m = validate(&p, "vigil/v1/dev/a/up", &frame("a")).unwrap();
        assert!(
            matches!(m, BoardMessage::Uplink { ref frame, .. } if frame.device_id.as_str() == "a")
        );
    }

    #[test]
    fn a_frame_claiming_another_device_is_refused_as_an_acl_violation() {
        let p = provisioning();
        let e = validate(&p, "vigil/v1/dev/a/up", &frame("b")).unwrap_err();
        assert_eq!(e.reason(), "acl_device_mismatch");
    }

    #[test]
    fn publishing_on_a_downlink_or_gateway_topic_is_refused() {
        let p = provisioning();
        for t in ["vigil/v1/dev/a/down", "vigil/v1/site/s/gw/g/batch"] {
            assert_eq!(
                validate(&p, t, &frame("a")).unwrap_err().reason(),
                "acl_topic"
            );
        }
    }

    #[test]
    fn unknown_devices_bad_topics_and_garbage_are_refused_with_their_reason() {
        let p = provisioning();
        assert_eq!(
            validate(&p, "vigil/v1/dev/zz/up", &frame("zz"))
                .unwrap_err()
                .reason(),
            "unknown_device"
        );
        assert_eq!(
            validate(&p, "other/topic", &frame("a"))
                .unwrap_err()
                .reason(),
            "bad_topic"
        );
        let e = validate(&p, "vigil/v1/dev/a/up", &[0xff, 0x00, 0x13]).unwrap_err();
        assert_eq!(e.reason(), "malformed");
        let mut truncated = frame("a");
        truncated.truncate(5);
        assert_eq!(
            validate(&p, "vigil/v1/dev/a/up", &truncated)
                .unwrap_err()
                .reason(),
            "malformed"
        );
    }
}
