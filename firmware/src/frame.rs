//! Stamps report bodies into uplink frames with this boot's identity and sequence numbers.

use vigil_protocol::{DeviceId, UplinkBody, UplinkFrame};

use crate::hal::Millis;

/// Gives every frame of this boot its `(device_id, boot_id, seq)`.
#[derive(Debug, Clone)]
pub struct FrameStamper {
    device_id: DeviceId,
    boot_id: u32,
    next_seq: u32,
}

impl FrameStamper {
    /// `boot_id` comes from [`crate::hal::next_boot_id`]; `seq` starts at 1 every boot.
    pub fn new(device_id: DeviceId, boot_id: u32) -> Self {
        Self {
            device_id,
            boot_id,
            next_seq: 1,
        }
    }

    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    pub fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// The `seq` the next frame will get.
    pub fn peek_seq(&self) -> u32 {
        self.next_seq
    }

    /// Wraps `body` into the next frame, made at `now`.
    pub fn stamp(&mut self, body: UplinkBody, now: Millis) -> UplinkFrame {
        let seq = self.next_seq;
        // A board that sends a frame a second needs 136 years to wrap; on wrap the boot_id
        // would have to change, which only a reboot does, so saturate instead of reusing seqs.
        self.next_seq = self.next_seq.saturating_add(1);
        UplinkFrame {
            device_id: self.device_id.clone(),
            boot_id: self.boot_id,
            seq,
            uptime_ms: now,
            wall_ms: None,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::{ButtonEvent, ButtonKind};

    #[test]
    fn heartbeats_carry_the_crate_version_not_the_fallback() {
        assert_eq!(firmware_version().as_str(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_heartbeat_is_due_once_per_interval_and_a_shorter_interval_applies_at_once() {
        let mut h = HeartbeatSchedule::new(60_000, 0);
        assert!(!h.due(59_999));
        assert!(h.due(60_000));
        assert!(!h.due(60_001));
        h.set_interval(10_000, 61_000);
        assert_eq!(h.next_deadline(), 71_000);
    }

    #[test]
    fn frames_carry_consecutive_seqs_from_one_and_the_boot_id() {
        let mut s = FrameStamper::new(DeviceId::new("p-1").unwrap(), 7);
        let body = UplinkBody::Button(ButtonEvent {
            kind: ButtonKind::Press,
            cancels_seq: None,
        });
        let a = s.stamp(body.clone(), 10);
        let b = s.stamp(body, 20);
        assert_eq!((a.boot_id, a.seq, a.uptime_ms), (7, 1, 10));
        assert_eq!((b.seq, b.uptime_ms), (2, 20));
        assert_eq!(s.peek_seq(), 3);
    }
}

/// This firmware's version as it appears in heartbeats.
pub fn firmware_version() -> vigil_protocol::FirmwareVersion {
    // The crate version is a short semver string, always a valid FirmwareVersion.
    vigil_protocol::FirmwareVersion::new(env!("CARGO_PKG_VERSION"))
        .unwrap_or_else(|_| fallback_version())
}

#[cold]
fn fallback_version() -> vigil_protocol::FirmwareVersion {
    match vigil_protocol::FirmwareVersion::new("unknown") {
        Ok(v) => v,
        Err(_) => panic!("\"unknown\" is a valid firmware version"),
    }
}

/// When the next heartbeat is due; the interval is configurable by downlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatSchedule {
    interval_ms: u64,
    next_at: Millis,
}

impl HeartbeatSchedule {
    pub fn new(interval_ms: u64, now: Millis) -> Self {
        Self {
            interval_ms,
            next_at: now + interval_ms,
        }
    }

    pub fn set_interval(&mut self, interval_ms: u64, now: Millis) {
        self.interval_ms = interval_ms;
        self.next_at = self.next_at.min(now + interval_ms);
    }

    /// Whether a heartbeat is due at `now`; if so the next one is scheduled.
    pub fn due(&mut self, now: Millis) -> bool {
        if now < self.next_at {
            return false;
        }
        self.next_at = now + self.interval_ms;
        true
    }

    pub fn next_deadline(&self) -> Millis {
        self.next_at
    }
}

#[cfg(test)]
mod worst_case {
    //! The slot sizes boards give their spools hold the largest frame each board can make.
    extern crate std;

    use vigil_protocol::{
        ButtonEvent, ButtonKind, FallEvent, FireReport, Heartbeat, MeterReading, SensorKind,
        SignalClass, ZoneId,
    };

    use super::*;

    fn longest(body: UplinkBody) -> UplinkFrame {
        UplinkFrame {
            device_id: DeviceId::new(&"d".repeat(32)).unwrap(),
            boot_id: u32::MAX,
            seq: u32::MAX,
            uptime_ms: u64::MAX,
            wall_ms: Some(u64::MAX),
            body,
        }
    }

    fn fits(frame: &UplinkFrame, max: usize) -> usize {
        let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
        let n = frame.encode(&mut buf).unwrap();
        assert!(n <= max, "{} bytes > {max}: {frame:?}", n);
        n
    }

    #[test]
    fn the_largest_pendant_frames_fit_its_slot_size() {
        let max = crate::pendant::MAX_FRAME_BYTES;
        fits(
            &longest(UplinkBody::Heartbeat(Heartbeat {
                battery_mv: u16::MAX,
                rssi_dbm: -128,
                firmware: vigil_protocol::FirmwareVersion::new(&"9".repeat(24)).unwrap(),
            })),
            max,
        );
        fits(
            &longest(UplinkBody::Fall(FallEvent {
                free_fall_ms: u32::MAX,
                peak_mg: 200_000,
                stillness_ms: u32::MAX,
                orientation_change_deg: 180,
                cancelled: true,
            })),
            max,
        );
        fits(
            &longest(UplinkBody::Button(ButtonEvent {
                kind: ButtonKind::Cancel,
                cancels_seq: Some(u32::MAX),
            })),
            max,
        );
    }

    #[test]
    fn the_largest_meter_report_fits_its_slot_size() {
        let n = fits(
            &longest(UplinkBody::Meter(MeterReading {
                total_ml: u64::MAX,
                flow_ml_per_min: u32::MAX,
                battery_mv: u16::MAX,
                tamper: true,
                leak: true,
                slot_s: 3600,
                slots_ml: core::iter::repeat_n(u32::MAX, 60).collect(),
            })),
            crate::meter::MAX_REPORT_BYTES,
        );
        assert!(
            n > crate::meter::MAX_REPORT_BYTES - 32,
            "slot size not wasteful"
        );
    }

    #[test]
    fn the_largest_fire_report_fits_its_slot_size() {
        fits(
            &longest(UplinkBody::Fire(FireReport {
                sensor: SensorKind::CableTemperature,
                value: i32::MIN,
                unit: SensorKind::CableTemperature.unit(),
                signal: SignalClass::Supervisory,
                zone: ZoneId::new(&"z".repeat(32)).unwrap(),
                self_test: true,
            })),
            crate::fire::MAX_FRAME_BYTES,
        );
    }
}
