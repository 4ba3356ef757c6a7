//! What the gateway holds durably for each board: the contiguous high-water mark of the
//! board's current boot plus the frames above it that overtook others.
//!
//! Design: the same window the server keeps for deduplication (ARCHITECTURE.md §12), here
//! to tell each board what it may drop from its own spool, and to spot frames a board sends
//! again after a lost receipt so they are not spooled twice.

use std::collections::BTreeSet;

use vigil_protocol::limits::MAX_RECEIPT_EXTRA;
use vigil_protocol::DurableReceipt;

/// Most out-of-order seqs remembered above the high-water mark; beyond this the highest are
/// forgotten (the board sends them again and they are spooled again: a duplicate, not a loss).
pub const MAX_REMEMBERED_EXTRA: usize = 256;

/// How a frame relates to what is already held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Not held before: spool it.
    New,
    /// Already held (the board did not get the receipt): confirm again, do not spool.
    Duplicate,
    /// A frame of an older boot than the board's current one: spool it, confirm it alone.
    OlderBoot,
}

/// One board's durable-receipt window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptWindow {
    boot_id: u32,
    held_through: u32,
    extras: BTreeSet<u32>,
}

impl ReceiptWindow {
    /// Classifies frame `(boot_id, seq)` and, when new, records it as held.
    ///
    /// Call only once the frame is durable (or in the same transaction that makes it so).
    pub fn record(&mut self, boot_id: u32, seq: u32) -> Held {
        if boot_id < self.boot_id {
            return Held::OlderBoot;
        }
        if boot_id > self.boot_id {
            *self = Self {
                boot_id,
                ..Self::default()
            };
        }
        if seq <= self.held_through || self.extras.contains(&seq) {
            return Held::Duplicate;
        }
        if seq == self.held_through + 1 {
            self.held_through = seq;
            while self.extras.remove(&(self.held_through + 1)) {
                self.held_through += 1;
            }
        } else {
            self.extras.insert(seq);
            while self.extras.len() > MAX_REMEMBERED_EXTRA {
                self.extras.pop_last();
            }
        }
        Held::New
    }

    /// Whether `(boot_id, seq)` is held.
    pub fn holds(&self, boot_id: u32, seq: u32) -> bool {
        boot_id == self.boot_id && (seq <= self.held_through || self.extras.contains(&seq))
    }

    /// The receipt to send the board now.
    pub fn receipt(&self) -> DurableReceipt {
        let mut also_held = heapless::Vec::new();
        for s in self.extras.iter().take(MAX_RECEIPT_EXTRA) {
            let _ = also_held.push(*s);
        }
        DurableReceipt {
            boot_id: self.boot_id,
            held_through: self.held_through,
            also_held,
        }
    }

    /// Serialises the window for the spool's `receipts` table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * self.extras.len());
        out.extend_from_slice(&self.boot_id.to_le_bytes());
        out.extend_from_slice(&self.held_through.to_le_bytes());
        for s in &self.extras {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads a window written by [`Self::to_bytes`]; `None` when the bytes are damaged.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 8 || bytes.len() % 4 != 0 {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            u32::from_le_bytes(b)
        };
        Some(Self {
            boot_id: word(0),
            held_through: word(1),
            extras: (2..bytes.len() / 4).map(word).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_frames_raise_the_high_water_mark() {
        let mut w = ReceiptWindow::default();
        for s in 1..=5 {
            assert_eq!(w.record(1, s), Held::New);
        }
        let r = w.receipt();
        assert_eq!((r.boot_id, r.held_through), (1, 5));
        assert!(r.also_held.is_empty());
    }

    #[test]
    fn an_urgent_frame_that_overtook_others_is_confirmed_as_an_extra_until_the_gap_fills() {
        let mut w = ReceiptWindow::default();
        w.record(3, 1);
        w.record(3, 4);
        w.record(3, 6);
        let r = w.receipt();
        assert_eq!(r.held_through, 1);
        assert_eq!(r.also_held.as_slice(), &[4, 6]);
        assert!(r.covers(3, 4) && !r.covers(3, 2));
        w.record(3, 2);
        w.record(3, 3);
        let r = w.receipt();
        assert_eq!(r.held_through, 4);
        assert_eq!(r.also_held.as_slice(), &[6]);
    }

    #[test]
    fn a_frame_sent_again_is_a_duplicate_and_a_new_boot_starts_over() {
        let mut w = ReceiptWindow::default();
        w.record(1, 1);
        w.record(1, 3);
        assert_eq!(w.record(1, 1), Held::Duplicate);
        assert_eq!(w.record(1, 3), Held::Duplicate);
        assert_eq!(w.record(2, 1), Held::New);
        assert_eq!(w.receipt().boot_id, 2);
        assert_eq!(w.record(1, 9), Held::OlderBoot);
        assert!(!w.holds(1, 1));
    }

    #[test]
    fn a_receipt_lists_at_most_the_protocol_limit_of_extras() {
        let mut w = ReceiptWindow::default();
        for s in (10..200).step_by(2) {
            w.record(1, s);
        }
        assert_eq!(w.receipt().also_held.len(), MAX_RECEIPT_EXTRA);
        assert_eq!(w.receipt().also_held[0], 10);
    }

    #[test]
    fn a_window_survives_its_byte_form() {
        let mut w = ReceiptWindow::default();
        w.record(7, 1);
        w.record(7, 2);
        w.record(7, 9);
        assert_eq!(ReceiptWindow::from_bytes(&w.to_bytes()), Some(w));
        assert_eq!(ReceiptWindow::from_bytes(&[1, 2, 3]), None);
    }
}
