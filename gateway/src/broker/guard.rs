//! Per-board topic ACLs in front of the embedded broker.
//!
//! rumqttd 0.20 authenticates logins but has no per-topic ACLs, and its local link does not
//! say who published a message. So boards connect to the gateway's own listener, and each
//! connection is relayed to rumqttd (on a loopback port) through a guard that reads the
//! board's MQTT packets with rumqttd's own v4 codec: the login must name a device id, a
//! board may publish only to its own `…/up` and `…/state` topics (its will included) and
//! subscribe only to its own `…/down`. A violation closes the connection and is counted
//! and quarantined; everything else is forwarded byte for byte.

use bytes::BytesMut;
use rumqttd::protocol::v4::{self, V4};
use rumqttd::protocol::{Packet, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use vigil_protocol::{DeviceId, Topic};

use super::Inbound;
use crate::validate::Refusal;

/// Largest MQTT packet a board may send.
pub const MAX_BOARD_PACKET: usize = 8 * 1024;

/// What the guard knows about one board connection (sans-IO).
#[derive(Debug, Default)]
pub struct BoardSession {
    device: Option<DeviceId>,
}

impl BoardSession {
    /// Checks one packet from the board; `Err` means: refuse it and close the connection.
    pub fn check(&mut self, packet: &Packet) -> Result<(), Refusal> {
        match packet {
            Packet::Connect(connect, _, will, _, _) => {
                if self.device.is_some() {
                    return Err(Refusal::Protocol {
                        detail: "second CONNECT on one connection".into(),
                    });
                }
                let device = DeviceId::new(&connect.client_id).map_err(|_| Refusal::BadLogin {
                    client_id: connect.client_id.clone(),
                })?;
                if let Some(will) = will {
                    self.check_publish(&device, &String::from_utf8_lossy(&will.topic))?;
                }
                self.device = Some(device);
                Ok(())
            }
            Packet::Publish(p, _) => {
                let device = self.logged_in()?;
                self.check_publish(&device, &String::from_utf8_lossy(&p.topic))
            }
            Packet::Subscribe(s, _) => {
                let device = self.logged_in()?;
                let own = Topic::DeviceDown(device).to_topic_string();
                match s.filters.iter().find(|f| f.path != own.as_str()) {
                    Some(f) => Err(Refusal::SubscribeNotAllowed {
                        filter: f.path.clone(),
                    }),
                    None => Ok(()),
                }
            }
            Packet::PubAck(..)
            | Packet::PubRec(..)
            | Packet::PubRel(..)
            | Packet::PubComp(..)
            | Packet::PingReq(_)
            | Packet::Unsubscribe(..)
            | Packet::Disconnect(..) => self.logged_in().map(|_| ()),
            Packet::ConnAck(..)
            | Packet::PingResp(_)
            | Packet::SubAck(..)
            | Packet::UnsubAck(..) => Err(Refusal::Protocol {
                detail: "a server-to-client packet from a board".into(),
            }),
        }
    }

    fn logged_in(&self) -> Result<DeviceId, Refusal> {
        self.device.clone().ok_or_else(|| Refusal::Protocol {
            detail: "packet before CONNECT".into(),
        })
    }

    fn check_publish(&self, device: &DeviceId, topic: &str) -> Result<(), Refusal> {
        match Topic::parse(topic) {
            Ok(Topic::DeviceUp(d) | Topic::DeviceState(d)) if d == *device => Ok(()),
            _ => Err(Refusal::NotAPublishTopic {
                topic: topic.to_owned(),
            }),
        }
    }
}

/// Relays one board connection to the broker at `broker`, enforcing the ACLs.
pub async fn relay(
    board: TcpStream,
    broker: std::net::SocketAddr,
    refusals: mpsc::Sender<Inbound>,
) {
    let Ok(upstream) = TcpStream::connect(broker).await else {
        return;
    };
    let _ = board.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut board_rx, mut board_tx) = board.into_split();
    let (mut broker_rx, mut broker_tx) = upstream.into_split();
    let to_board = async move {
        let _ = tokio::io::copy(&mut broker_rx, &mut board_tx).await;
    };
    let from_board = async move {
        let mut session = BoardSession::default();
        let mut buf = BytesMut::with_capacity(4 * 1024);
        loop {
            match v4::check(buf.iter(), MAX_BOARD_PACKET) {
                Ok(header) => {
                    let raw = buf.split_to(header.frame_length());
                    let verdict = V4
                        .read_mut(&mut raw.clone(), MAX_BOARD_PACKET)
                        .map_err(|e| Refusal::Protocol {
                            detail: e.to_string(),
                        })
                        .and_then(|packet| session.check(&packet).map(|()| packet));
                    match verdict {
                        Ok(_) => {
                            if broker_tx.write_all(&raw).await.is_err() {
                                return;
                            }
                        }
                        Err(refusal) => {
                            let _ = refusals
                                .send(Inbound::Refused {
                                    refusal,
                                    raw: raw.to_vec(),
                                })
                                .await;
                            return;
                        }
                    }
                }
                Err(rumqttd::protocol::Error::InsufficientBytes(_)) => {
                    match board_rx.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                Err(e) => {
                    let refusal = Refusal::Protocol {
                        detail: e.to_string(),
                    };
                    let raw = buf.split().to_vec();
                    let _ = refusals.send(Inbound::Refused { refusal, raw }).await;
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = to_board => {}
        () = from_board => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rumqttd::protocol::{
        Connect, Filter, LastWill, Publish, QoS, RetainForwardRule, Subscribe,
    };

    fn connect(client: &str, will: Option<&str>) -> Packet {
        Packet::Connect(
            Connect {
                keep_alive: 5,
                client_id: client.into(),
                clean_session: true,
            },
            None,
            will.map(|t| LastWill {
                topic: Bytes::copy_from_slice(t.as_bytes()),
                message: Bytes::new(),
                qos: QoS::AtLeastOnce,
                retain: false,
            }),
            None,
            None,
        )
    }

    fn publish(topic: &str) -> Packet {
        Packet::Publish(
            Publish::new(
                Bytes::copy_from_slice(topic.as_bytes()),
                Bytes::from_static(&[1]),
                false,
            ),
            None,
        )
    }

    fn subscribe(filter: &str) -> Packet {
        Packet::Subscribe(
            Subscribe {
                pkid: 1,
                filters: vec![Filter {
                    path: filter.into(),
                    qos: QoS::AtLeastOnce,
                    nolocal: false,
                    preserve_retain: false,
                    retain_forward_rule: RetainForwardRule::Never,
                }],
            },
            None,
        )
    }

    #[test]
    fn a_board_may_use_its_own_topics() {
        let mut s = BoardSession::default();
        s.check(&connect("p1", Some("vigil/v1/dev/p1/state")))
            .unwrap();
        s.check(&publish("vigil/v1/dev/p1/up")).unwrap();
        s.check(&subscribe("vigil/v1/dev/p1/down")).unwrap();
    }

    #[test]
    fn a_board_may_not_publish_or_subscribe_as_another_board() {
        let mut s = BoardSession::default();
        s.check(&connect("p1", None)).unwrap();
        assert_eq!(
            s.check(&publish("vigil/v1/dev/p2/up"))
                .unwrap_err()
                .reason(),
            "acl_topic"
        );
        assert_eq!(
            s.check(&publish("vigil/v1/dev/p1/down"))
                .unwrap_err()
                .reason(),
            "acl_topic"
        );
        assert_eq!(
            s.check(&subscribe("vigil/v1/dev/p2/down"))
                .unwrap_err()
                .reason(),
            "acl_subscribe"
        );
        assert_eq!(
            s.check(&subscribe("vigil/v1/#")).unwrap_err().reason(),
            "acl_subscribe"
        );
    }

    #[test]
    fn a_will_on_another_topic_or_a_login_that_is_no_device_id_is_refused() {
        let mut s = BoardSession::default();
        assert_eq!(
            s.check(&connect("p1", Some("vigil/v1/dev/p2/state")))
                .unwrap_err()
                .reason(),
            "acl_topic"
        );
        let mut s = BoardSession::default();
        assert_eq!(
            s.check(&connect("a/b", None)).unwrap_err().reason(),
            "bad_login"
        );
        let mut s = BoardSession::default();
        assert_eq!(
            s.check(&publish("vigil/v1/dev/p1/up"))
                .unwrap_err()
                .reason(),
            "mqtt_protocol"
        );
    }
}
