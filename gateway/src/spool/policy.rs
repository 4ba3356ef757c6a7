//! Admission when the spool is full.
//!
//! Routine frames (meter readings, heartbeats, non-alarm fire reports) are refused once the
//! spool holds `max_bytes`; the board keeps a refused frame (it got no receipt for it) and
//! sends it again later, so nothing a board was told is durable is ever dropped. Urgent
//! frames (calls, falls, fire alarms, tamper and leak flags) are always admitted, above the
//! limit if need be: an alarm is never refused for a routine reading's sake.

/// Size bounds of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Routine frames are refused once the spool holds this many bytes.
    pub max_bytes: u64,
}

/// Bytes a frame is counted for: its encoding plus the record header and index overhead.
pub fn record_cost(frame_len: usize) -> u64 {
    frame_len as u64 + RECORD_OVERHEAD
}

/// Header (9 bytes) and key plus B-tree slot overhead, rounded.
pub const RECORD_OVERHEAD: u64 = 40;

/// Whether to admit a frame of `cost` bytes into a spool currently holding `used` bytes.
pub fn admits(limits: &SpoolLimits, used: u64, cost: u64, urgent: bool) -> bool {
    urgent || used.saturating_add(cost) <= limits.max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_frames_are_refused_at_the_limit_and_alarms_are_not() {
        let l = SpoolLimits { max_bytes: 1000 };
        assert!(admits(&l, 900, 100, false));
        assert!(!admits(&l, 901, 100, false));
        assert!(admits(&l, 901, 100, true));
        assert!(admits(&l, u64::MAX, 100, true));
    }
}
