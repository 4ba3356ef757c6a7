//! Load mode's core: many boards' frame streams at a total rate, each board numbering its
//! frames `(boot_id, seq)` as real firmware does.
//!
//! Sans-IO: [`LoadGenerator::poll_frame`] hands out the frames due by `now`; the driver
//! encodes and publishes them (today: encodes only; the network side comes with the
//! gateway).

use std::time::Duration;

use vigil_protocol::{
    DeviceId, FireReport, FirmwareVersion, Heartbeat, MeterReading, SensorKind, SignalClass,
    UplinkBody, UplinkFrame, ZoneId,
};

/// One simulated board's frame numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardCounter {
    pub device_id: DeviceId,
    pub boot_id: u32,
    /// The `seq` of the last frame made (frames start at 1 after each boot).
    pub seq: u32,
}

impl BoardCounter {
    pub fn new(device_id: DeviceId, boot_id: u32) -> Self {
        Self {
            device_id,
            boot_id,
            seq: 0,
        }
    }

    /// Numbers the next frame of this boot.
    pub fn frame(&mut self, uptime: Duration, body: UplinkBody) -> UplinkFrame {
        self.seq = self.seq.wrapping_add(1);
        UplinkFrame {
            device_id: self.device_id.clone(),
            boot_id: self.boot_id,
            seq: self.seq,
            uptime_ms: uptime.as_millis() as u64,
            wall_ms: None,
            body,
        }
    }

    /// A reboot: the next boot's frames start again at 1.
    pub fn reboot(&mut self) {
        self.boot_id = self.boot_id.wrapping_add(1);
        self.seq = 0;
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("expected at least one board, found {0}")]
    NoBoards(usize),
    #[error("expected a rate above 0 frames/s, found {0}")]
    BadRate(f64),
    #[error("at most {max} boards, found {found}")]
    TooManyBoards { max: usize, found: usize },
    #[error("{0:?} is not a valid identifier")]
    InvalidId(String),
}

/// Board ids carry a six-digit index.
pub const MAX_BOARDS: usize = 1_000_000;

/// What kind of board a load-mode board plays (every 20th a fire node, every 7th a pendant,
/// the rest meters: roughly a district's mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Meter,
    Pendant,
    Fire,
}

const FIRMWARE: &str = "sim-load-1";
const ZONE: &str = "load-zone";

/// N boards sending R frames per second in total, evenly interleaved.
#[derive(Debug, Clone)]
pub struct LoadGenerator {
    boards: Vec<(BoardCounter, Role)>,
    rate_per_s: f64,
    /// Index of the next frame overall; frame k is due at k / rate, from board k mod N.
    next: u64,
    firmware: FirmwareVersion,
    zone: ZoneId,
}

impl LoadGenerator {
    pub fn new(boards: usize, rate_per_s: f64) -> Result<Self, LoadError> {
        if boards == 0 {
            return Err(LoadError::NoBoards(boards));
        }
        if boards > MAX_BOARDS {
            return Err(LoadError::TooManyBoards {
                max: MAX_BOARDS,
                found: boards,
            });
        }
        if !(rate_per_s.is_finite() && rate_per_s > 0.0) {
            return Err(LoadError::BadRate(rate_per_s));
        }
        let boards = (0..boards)
            .map(|i| {
                let role = match i {
                    i if i % 20 == 19 => Role::Fire,
                    i if i % 7 == 6 => Role::Pendant,
                    _ => Role::Meter,
                };
                let prefix = match role {
                    Role::Meter => "meter",
                    Role::Pendant => "pendant",
                    Role::Fire => "fire",
                };
                let name = format!("load-{prefix}-{i:06}");
                let id = DeviceId::new(&name).map_err(|_| LoadError::InvalidId(name))?;
                Ok((BoardCounter::new(id, 1), role))
            })
            .collect::<Result<_, LoadError>>()?;
        Ok(Self {
            boards,
            rate_per_s,
            next: 0,
            firmware: FirmwareVersion::new(FIRMWARE)
                .map_err(|_| LoadError::InvalidId(FIRMWARE.into()))?,
            zone: ZoneId::new(ZONE).map_err(|_| LoadError::InvalidId(ZONE.into()))?,
        })
    }

    pub fn boards(&self) -> usize {
        self.boards.len()
    }

    /// When the next frame is due, from the start.
    pub fn next_deadline(&self) -> Duration {
        Duration::from_secs_f64(self.next as f64 / self.rate_per_s)
    }

    /// The next frame due at or before `now`, if any.
    #[must_use]
    pub fn poll_frame(&mut self, now: Duration) -> Option<UplinkFrame> {
        let due = self.next_deadline();
        if due > now {
            return None;
        }
        let n = self.boards.len() as u64;
        let index = (self.next % n) as usize;
        let round = self.next / n;
        self.next += 1;
        let (firmware, zone) = (self.firmware.clone(), self.zone.clone());
        let (counter, role) = self.boards.get_mut(index)?;
        let body = match role {
            Role::Meter => {
                let slots: heapless::Vec<u32, 60> = (0..15u32)
                    .map(|m| {
                        if (m + index as u32) % 5 == 0 {
                            1_500
                        } else {
                            0
                        }
                    })
                    .collect();
                UplinkBody::Meter(MeterReading {
                    total_ml: (round + 1) * 4_500,
                    flow_ml_per_min: 0,
                    battery_mv: 3_000,
                    tamper: false,
                    leak: false,
                    slot_s: 60,
                    slots_ml: slots,
                })
            }
            Role::Pendant => UplinkBody::Heartbeat(Heartbeat {
                battery_mv: 2_950,
                rssi_dbm: -70,
                firmware,
            }),
            Role::Fire => UplinkBody::Fire(FireReport {
                sensor: SensorKind::Smoke,
                value: 12,
                unit: SensorKind::Smoke.unit(),
                signal: SignalClass::Normal,
                zone,
                self_test: false,
            }),
        };
        Some(counter.frame(due, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn each_board_numbers_its_frames_one_by_one_from_one() {
        let mut g = LoadGenerator::new(50, 1_000.0).unwrap();
        let mut seqs: HashMap<String, Vec<u32>> = HashMap::new();
        let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
        while let Some(f) = g.poll_frame(Duration::from_secs(1)) {
            let n = f.encode(&mut buf).expect("every load frame encodes");
            assert_eq!(UplinkFrame::decode(&buf[..n]).unwrap(), f);
            assert_eq!(f.boot_id, 1);
            seqs.entry(f.device_id.as_str().to_owned())
                .or_default()
                .push(f.seq);
        }
        assert_eq!(seqs.len(), 50);
        for (device, s) in seqs {
            assert_eq!(s, (1..=s.len() as u32).collect::<Vec<_>>(), "{device}");
        }
    }

    #[test]
    fn frames_come_due_at_the_requested_rate() {
        let mut g = LoadGenerator::new(1_000, 250.0).unwrap();
        let mut count = 0;
        while g.poll_frame(Duration::from_secs(4)).is_some() {
            count += 1;
        }
        assert_eq!(count, 1_001, "frames at 0 s, 4 ms, …, 4 s inclusive");
        assert_eq!(g.next_deadline(), Duration::from_millis(4_004));
    }

    #[test]
    fn a_reboot_starts_the_sequence_again_under_a_new_boot() {
        let mut c = BoardCounter::new(DeviceId::new("b").unwrap(), 7);
        let body = || {
            UplinkBody::Heartbeat(Heartbeat {
                battery_mv: 3_000,
                rssi_dbm: -60,
                firmware: FirmwareVersion::new("1").unwrap(),
            })
        };
        assert_eq!(c.frame(Duration::ZERO, body()).seq, 1);
        assert_eq!(c.frame(Duration::ZERO, body()).seq, 2);
        c.reboot();
        let f = c.frame(Duration::ZERO, body());
        assert_eq!((f.boot_id, f.seq), (8, 1));
    }

    #[test]
    fn nonsense_settings_are_refused() {
        assert_eq!(
            LoadGenerator::new(0, 1.0).unwrap_err(),
            LoadError::NoBoards(0)
        );
        assert!(matches!(
            LoadGenerator::new(1, 0.0),
            Err(LoadError::BadRate(_))
        ));
        assert!(matches!(
            LoadGenerator::new(1, f64::NAN),
            Err(LoadError::BadRate(_))
        ));
    }
}
