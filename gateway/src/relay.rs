//! Downlinks from the server ("help is coming", configuration) on the gateway's `…/down`
//! topic, checked and passed to the board's own `vigil/v1/dev/{id}/down` topic.

use vigil_protocol::{DecodeError, DownlinkBody, DownlinkFrame, Topic};

use crate::provisioning::Provisioning;

/// Why a downlink from upstream was not relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("malformed downlink: {0}")]
    Malformed(DecodeError),
    #[error("downlink for device {0}, which is not provisioned on this gateway")]
    UnknownDevice(String),
    #[error("durable receipts come from the gateway, never from upstream")]
    ReceiptFromUpstream,
}

/// The board topic and payload to publish for a downlink received from upstream.
pub fn route_downlink(
    payload: &[u8],
    provisioning: &Provisioning,
) -> Result<(String, DownlinkFrame), RelayError> {
    let frame = DownlinkFrame::decode(payload).map_err(RelayError::Malformed)?;
    match frame.body {
        DownlinkBody::Receipt(_) => return Err(RelayError::ReceiptFromUpstream),
        DownlinkBody::HelpComing(_) | DownlinkBody::Config(_) => {}
    }
    if provisioning.device(&frame.device_id).is_none() {
        return Err(RelayError::UnknownDevice(frame.device_id.to_string()));
    }
    let topic = Topic::DeviceDown(frame.device_id.clone())
        .to_topic_string()
        .to_string();
    Ok((topic, frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::{hash_secret_with, low_cost_argon2};
    use vigil_protocol::{DeviceId, DurableReceipt, HelpComing};

    fn provisioning() -> Provisioning {
        let h = hash_secret_with(&low_cost_argon2(), "x").unwrap();
        Provisioning::from_toml(&format!("[[device]]\nid = \"p1\"\nsecret_hash = \"{h}\"\n"))
            .unwrap()
    }

    fn encode(device: &str, body: DownlinkBody) -> Vec<u8> {
        let f = DownlinkFrame {
            device_id: DeviceId::new(device).unwrap(),
            body,
        };
        let mut buf = [0u8; 512];
        let n = f.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn help_coming_is_routed_to_the_boards_own_downlink_topic() {
        let help = DownlinkBody::HelpComing(HelpComing {
            boot_id: 1,
            seq: 9,
            alert_id: 77,
        });
        let (topic, frame) = route_downlink(&encode("p1", help.clone()), &provisioning()).unwrap();
        assert_eq!(topic, "vigil/v1/dev/p1/down");
        assert_eq!(frame.body, help);
    }

    #[test]
    fn downlinks_for_strangers_forged_receipts_and_garbage_are_refused() {
        let help = DownlinkBody::HelpComing(HelpComing {
            boot_id: 1,
            seq: 9,
            alert_id: 77,
        });
        let p = provisioning();
        assert_eq!(
            route_downlink(&encode("p2", help), &p),
            Err(RelayError::UnknownDevice("p2".into()))
        );
        let receipt = DownlinkBody::Receipt(DurableReceipt {
            boot_id: 1,
            held_through: 100,
            also_held: heapless::Vec::new(),
        });
        assert_eq!(
            route_downlink(&encode("p1", receipt), &p),
            Err(RelayError::ReceiptFromUpstream)
        );
        assert!(matches!(
            route_downlink(&[1, 2, 3], &p),
            Err(RelayError::Malformed(_))
        ));
    }
}
