//! MQTT topics of protocol version 1, all under `vigil/v1/`.
//!
//! | topic | publisher → subscriber | payload |
//! |---|---|---|
//! | `vigil/v1/dev/{device}/up` | board → gateway (or server, for a site without gateway) | [`crate::UplinkFrame`] |
//! | `vigil/v1/dev/{device}/down` | gateway (or server) → board | [`crate::DownlinkFrame`] |
//! | `vigil/v1/dev/{device}/state` | board (retained; its MQTT will) | [`crate::DeviceState`] |
//! | `vigil/v1/site/{site}/gw/{gateway}/batch` | gateway → server | [`crate::Batch`] |
//! | `vigil/v1/site/{site}/gw/{gateway}/status` | gateway → server | [`crate::GatewayStatus`] |
//! | `vigil/v1/site/{site}/gw/{gateway}/ack` | gateway → server | [`crate::LocalAck`] |
//! | `vigil/v1/site/{site}/gw/{gateway}/down` | server → gateway, relayed to the board | [`crate::DownlinkFrame`] |

use core::fmt::Write as _;

use crate::ids::{is_valid_id, DeviceId, GatewayId, SiteId};
use crate::limits::MAX_TOPIC_LEN;

/// The prefix every version-1 topic starts with.
pub const PREFIX: &str = "vigil/v1/";
/// Subscription filter for every board's uplink.
pub const DEVICE_UP_FILTER: &str = "vigil/v1/dev/+/up";
/// Subscription filter for every board's state (will) messages.
pub const DEVICE_STATE_FILTER: &str = "vigil/v1/dev/+/state";
/// Subscription filter for every gateway's batches.
pub const GATEWAY_BATCH_FILTER: &str = "vigil/v1/site/+/gw/+/batch";
/// Subscription filter for every gateway's status reports.
pub const GATEWAY_STATUS_FILTER: &str = "vigil/v1/site/+/gw/+/status";
/// Subscription filter for every gateway's local acknowledgements.
pub const GATEWAY_ACK_FILTER: &str = "vigil/v1/site/+/gw/+/ack";

/// A parsed Vigil topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    DeviceUp(DeviceId),
    DeviceDown(DeviceId),
    DeviceState(DeviceId),
    GatewayBatch { site: SiteId, gateway: GatewayId },
    GatewayStatus { site: SiteId, gateway: GatewayId },
    GatewayAck { site: SiteId, gateway: GatewayId },
    GatewayDown { site: SiteId, gateway: GatewayId },
}

/// A topic string did not name a version-1 Vigil topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic does not start with `vigil/v1/`")]
    WrongPrefix,
    #[error("topic has an unknown shape")]
    UnknownShape,
    #[error("topic level is not a valid identifier")]
    InvalidId,
    #[error("topic longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
}

impl Topic {
    /// Parses a topic string.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        let rest = topic.strip_prefix(PREFIX).ok_or(TopicError::WrongPrefix)?;
        let mut levels = rest.split('/');
        let first = levels.next();
        let parts: [Option<&str>; 5] = [
            first,
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
        ];
        if levels.next().is_some() {
            return Err(TopicError::UnknownShape);
        }
        let id = |s: &str| {
            if is_valid_id(s) {
                Ok(())
            } else {
                Err(TopicError::InvalidId)
            }
        };
        match parts {
            [Some("dev"), Some(dev), Some(leaf), None, None] => {
                id(dev)?;
                let dev = DeviceId::new(dev).map_err(|_| TopicError::InvalidId)?;
                match leaf {
                    "up" => Ok(Topic::DeviceUp(dev)),
                    "down" => Ok(Topic::DeviceDown(dev)),
                    "state" => Ok(Topic::DeviceState(dev)),
                    _ => Err(TopicError::UnknownShape),
                }
            }
            [Some("site"), Some(site), Some("gw"), Some(gw), Some(leaf)] => {
                let site = SiteId::new(site).map_err(|_| TopicError::InvalidId)?;
                let gateway = GatewayId::new(gw).map_err(|_| TopicError::InvalidId)?;
                match leaf {
                    "batch" => Ok(Topic::GatewayBatch { site, gateway }),
                    "status" => Ok(Topic::GatewayStatus { site, gateway }),
                    "ack" => Ok(Topic::GatewayAck { site, gateway }),
                    "down" => Ok(Topic::GatewayDown { site, gateway }),
                    _ => Err(TopicError::UnknownShape),
                }
            }
            _ => Err(TopicError::UnknownShape),
        }
    }

    /// The topic as a string.
    pub fn to_topic_string(&self) -> heapless::String<MAX_TOPIC_LEN> {
        let mut s = heapless::String::new();
        // Cannot overflow: ids are at most 32 bytes, so the longest topic is 83 bytes.
        let _ = match self {
            Topic::DeviceUp(d) => write!(s, "{PREFIX}dev/{d}/up"),
            Topic::DeviceDown(d) => write!(s, "{PREFIX}dev/{d}/down"),
            Topic::DeviceState(d) => write!(s, "{PREFIX}dev/{d}/state"),
            Topic::GatewayBatch { site, gateway } => {
                write!(s, "{PREFIX}site/{site}/gw/{gateway}/batch")
            }
            Topic::GatewayStatus { site, gateway } => {
                write!(s, "{PREFIX}site/{site}/gw/{gateway}/status")
            }
            Topic::GatewayAck { site, gateway } => {
                write!(s, "{PREFIX}site/{site}/gw/{gateway}/ack")
            }
            Topic::GatewayDown { site, gateway } => {
                write!(s, "{PREFIX}site/{site}/gw/{gateway}/down")
            }
        };
        s
    }
}

impl core::fmt::Display for Topic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_topic_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_round_trips_through_its_string() {
        let d = DeviceId::new("pendant-7").unwrap();
        let site = SiteId::new("home-12").unwrap();
        let gw = GatewayId::new("gw-1").unwrap();
        let all = [
            Topic::DeviceUp(d.clone()),
            Topic::DeviceDown(d.clone()),
            Topic::DeviceState(d),
            Topic::GatewayBatch {
                site: site.clone(),
                gateway: gw.clone(),
            },
            Topic::GatewayStatus {
                site: site.clone(),
                gateway: gw.clone(),
            },
            Topic::GatewayAck {
                site: site.clone(),
                gateway: gw.clone(),
            },
            Topic::GatewayDown { site, gateway: gw },
        ];
        for t in all {
            assert_eq!(Topic::parse(&t.to_topic_string()), Ok(t));
        }
        assert_eq!(
            Topic::parse("vigil/v1/site/home-12/gw/gw-1/batch")
                .unwrap()
                .to_topic_string()
                .as_str(),
            "vigil/v1/site/home-12/gw/gw-1/batch"
        );
    }

    #[test]
    fn malformed_topics_are_rejected_with_the_reason() {
        assert_eq!(
            Topic::parse("vigil/v2/dev/a/up"),
            Err(TopicError::WrongPrefix)
        );
        assert_eq!(
            Topic::parse("vigil/v1/dev/a/sideways"),
            Err(TopicError::UnknownShape)
        );
        assert_eq!(
            Topic::parse("vigil/v1/dev/a/up/extra"),
            Err(TopicError::UnknownShape)
        );
        assert_eq!(
            Topic::parse("vigil/v1/dev/+/up"),
            Err(TopicError::InvalidId)
        );
        assert_eq!(Topic::parse("vigil/v1/dev//up"), Err(TopicError::InvalidId));
        assert_eq!(
            Topic::parse("vigil/v1/site/s/gw/g"),
            Err(TopicError::UnknownShape)
        );
        assert_eq!(Topic::parse(&"x".repeat(200)), Err(TopicError::TooLong));
    }
}
