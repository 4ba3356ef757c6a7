//! The alarms shown on the local console (sans-IO): calls, falls and fire alarms, with the
//! resident and room, whether they reached the server, and who acknowledged them locally.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_protocol::{ButtonKind, SignalClass, UplinkBody, UplinkFrame};

use crate::provisioning::Provisioning;

/// Acknowledged alarms stay listed this long, then are forgotten.
pub const KEEP_ACKED_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    Call,
    Fall,
    Fire,
}

/// One alarm on the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// `device/boot/seq` of the frame that raised it.
    pub key: String,
    pub kind: AlarmKind,
    pub device: String,
    pub boot_id: u32,
    pub seq: u32,
    pub detail: String,
    pub resident: Option<String>,
    pub room: Option<String>,
    pub received_ms: u64,
    /// The upstream broker acknowledged the batch carrying this alarm.
    pub reached_server: bool,
    /// The resident cancelled it from the pendant (it stays listed: staff still see it).
    pub cancelled_by_resident: bool,
    pub acked_by: Option<String>,
    pub acked_ms: Option<u64>,
}

impl Alarm {
    pub fn key_of(device: &str, boot_id: u32, seq: u32) -> String {
        format!("{device}/{boot_id}/{seq}")
    }

    /// The alarm a frame raises, if it raises one.
    pub fn from_frame(
        frame: &UplinkFrame,
        received_ms: u64,
        provisioning: &Provisioning,
    ) -> Option<Self> {
        let (kind, detail) = match &frame.body {
            UplinkBody::Button(b) => match b.kind {
                ButtonKind::Press => (AlarmKind::Call, "call button pressed".to_owned()),
                ButtonKind::LongPress | ButtonKind::Cancel => return None,
            },
            UplinkBody::Fall(f) => {
                if f.cancelled {
                    return None;
                }
                (
                    AlarmKind::Fall,
                    format!(
                        "fall: impact {:.1} g, still for {} s",
                        f64::from(f.peak_mg) / 1000.0,
                        f.stillness_ms / 1000
                    ),
                )
            }
            UplinkBody::Fire(f) => match f.signal {
                SignalClass::Alarm => (
                    AlarmKind::Fire,
                    format!("fire alarm: {} in zone {}", f.sensor.name(), f.zone),
                ),
                SignalClass::Normal | SignalClass::Supervisory | SignalClass::Trouble => {
                    return None
                }
            },
            UplinkBody::Meter(_) | UplinkBody::Heartbeat(_) => return None,
        };
        let device = provisioning.device(&frame.device_id);
        Some(Self {
            key: Self::key_of(frame.device_id.as_str(), frame.boot_id, frame.seq),
            kind,
            device: frame.device_id.to_string(),
            boot_id: frame.boot_id,
            seq: frame.seq,
            detail,
            resident: device.and_then(|d| d.resident.clone()),
            room: device.and_then(|d| d.room.clone()),
            received_ms,
            reached_server: false,
            cancelled_by_resident: false,
            acked_by: None,
            acked_ms: None,
        })
    }
}

/// Why a local acknowledgement was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("no alarm {0}")]
    NotFound(String),
    #[error("alarm {key} was already acknowledged by {by}")]
    AlreadyAcked { key: String, by: String },
    #[error("the acknowledgement could not be stored: {0}")]
    Storage(String),
}

/// Every alarm the console lists.
#[derive(Debug, Default)]
pub struct AlarmBoard {
    alarms: BTreeMap<String, Alarm>,
}

impl AlarmBoard {
    pub fn insert(&mut self, alarm: Alarm) {
        self.alarms.entry(alarm.key.clone()).or_insert(alarm);
    }

    pub fn get(&self, key: &str) -> Option<&Alarm> {
        self.alarms.get(key)
    }

    /// A cancel from the pendant for frame `(boot, cancels_seq)`; returns the updated alarm.
    pub fn cancel(&mut self, device: &str, boot_id: u32, seq: u32) -> Option<&Alarm> {
        let a = self.alarms.get_mut(&Alarm::key_of(device, boot_id, seq))?;
        a.cancelled_by_resident = true;
        Some(a)
    }

    /// The upstream broker has the alarm; returns the updated alarm if it changed.
    pub fn reached_server(&mut self, key: &str) -> Option<&Alarm> {
        let a = self.alarms.get_mut(key)?;
        if a.reached_server {
            return None;
        }
        a.reached_server = true;
        Some(a)
    }

    /// Records a local acknowledgement.
    pub fn acknowledge(&mut self, key: &str, by: &str, now_ms: u64) -> Result<&Alarm, AckError> {
        let a = self
            .alarms
            .get_mut(key)
            .ok_or_else(|| AckError::NotFound(key.to_owned()))?;
        if let Some(prev) = &a.acked_by {
            return Err(AckError::AlreadyAcked {
                key: key.to_owned(),
                by: prev.clone(),
            });
        }
        a.acked_by = Some(by.to_owned());
        a.acked_ms = Some(now_ms);
        Ok(a)
    }

    /// Forgets acknowledged alarms older than [`KEEP_ACKED_MS`]; returns their keys.
    pub fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let old: Vec<String> = self
            .alarms
            .values()
            .filter(|a| {
                a.acked_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) > KEEP_ACKED_MS)
            })
            .map(|a| a.key.clone())
            .collect();
        for k in &old {
            self.alarms.remove(k);
        }
        old
    }

    /// Alarms for the console: unacknowledged first, newest first within each group.
    pub fn listing(&self) -> Vec<Alarm> {
        let mut v: Vec<Alarm> = self.alarms.values().cloned().collect();
        v.sort_by(|a, b| {
            a.acked_by
                .is_some()
                .cmp(&b.acked_by.is_some())
                .then(b.received_ms.cmp(&a.received_ms))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::{hash_secret_with, low_cost_argon2};
    use vigil_protocol::{ButtonEvent, DeviceId};

    fn provisioning() -> Provisioning {
        let h = hash_secret_with(&low_cost_argon2(), "x").unwrap();
        Provisioning::from_toml(&format!(
            "[[device]]\nid = \"p1\"\nsecret_hash = \"{h}\"\nresident = \"Mr Li\"\nroom = \"12\"\n"
        ))
        .unwrap()
    }

    fn press(seq: u32, kind: ButtonKind, cancels: Option<u32>) -> UplinkFrame {
        UplinkFrame {
            device_id: DeviceId::new("p1").unwrap(),
            boot_id: 4,
            seq,
            uptime_ms: 0,
            wall_ms: None,
            body: UplinkBody::Button(ButtonEvent {
                kind,
                cancels_seq: cancels,
            }),
        }
    }

    #[test]
    fn a_call_shows_with_resident_and_room_until_acknowledged() {
        let p = provisioning();
        let mut board = AlarmBoard::default();
        let a = Alarm::from_frame(&press(7, ButtonKind::Press, None), 100, &p).unwrap();
        assert_eq!(
            (a.kind, a.resident.as_deref(), a.room.as_deref()),
            (AlarmKind::Call, Some("Mr Li"), Some("12"))
        );
        board.insert(a);
        assert!(board.reached_server("p1/4/7").is_some());
        assert!(board.reached_server("p1/4/7").is_none());
        board.acknowledge("p1/4/7", "Nurse Wang", 200).unwrap();
        assert!(matches!(
            board.acknowledge("p1/4/7", "someone", 201),
            Err(AckError::AlreadyAcked { .. })
        ));
        assert!(matches!(
            board.acknowledge("p1/4/8", "x", 1),
            Err(AckError::NotFound(_))
        ));
        assert_eq!(board.expire(200 + KEEP_ACKED_MS), Vec::<String>::new());
        assert_eq!(board.expire(201 + KEEP_ACKED_MS), vec!["p1/4/7".to_owned()]);
    }

    #[test]
    fn a_cancel_from_the_pendant_marks_the_call_but_keeps_it_listed() {
        let p = provisioning();
        let mut board = AlarmBoard::default();
        board.insert(Alarm::from_frame(&press(7, ButtonKind::Press, None), 1, &p).unwrap());
        assert!(Alarm::from_frame(&press(8, ButtonKind::Cancel, Some(7)), 2, &p).is_none());
        assert!(board.cancel("p1", 4, 7).unwrap().cancelled_by_resident);
        assert_eq!(board.listing().len(), 1);
    }

    #[test]
    fn unacknowledged_alarms_are_listed_first() {
        let p = provisioning();
        let mut board = AlarmBoard::default();
        board.insert(Alarm::from_frame(&press(1, ButtonKind::Press, None), 1, &p).unwrap());
        board.insert(Alarm::from_frame(&press(2, ButtonKind::Press, None), 2, &p).unwrap());
        board.insert(Alarm::from_frame(&press(3, ButtonKind::Press, None), 3, &p).unwrap());
        board.acknowledge("p1/4/3", "n", 4).unwrap();
        let keys: Vec<_> = board.listing().into_iter().map(|a| a.key).collect();
        assert_eq!(keys, vec!["p1/4/2", "p1/4/1", "p1/4/3"]);
    }
}
