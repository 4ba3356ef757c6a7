//! Duplicate detection on `(device_id, boot_id, seq)` without a unique index on the readings.
//!
//! Design: per device and boot, an anti-replay window (RFC 4303 §3.4.3, as IPsec does it):
//!
//! - `base`: the lowest `seq` the bitmap covers. Every `seq` below `base` is *settled*: it was
//!   either seen, or it is listed in `gaps`.
//! - `bits`: one bit per `seq` in `[base, base + WINDOW)`, set when that frame was stored.
//! - `gaps`: half-open ranges below `base` that were never seen when the window slid past
//!   them. A frame that arrives late into a gap is new (the gap shrinks); any other frame
//!   below `base` is a duplicate. So a frame older than the window that was never seen is
//!   *not* dropped: urgent frames overtaking routine ones, or a gateway's offline backlog
//!   arriving after live traffic, are both stored exactly once.
//! - At most [`MAX_GAPS`] ranges are kept. When a device leaves more holes than that (a board
//!   losing every other frame for hours), the oldest range is forgotten and `unknown_below`
//!   rises to its end. Below that mark nothing is known any more, and a frame there is
//!   *admitted as unverifiable* (stored, counted): in a safety system a possible duplicate
//!   reading is harmless, a lost call or fall is not.
//!
//! The window is a plain value: the store loads it with the device's state, calls
//! [`ReplayWindow::admit`] for each frame, and writes it back in the same transaction as
//! the readings, so a crash between the two cannot happen.

use thiserror::Error;

/// Sequence numbers covered by the bitmap.
pub const WINDOW: u32 = 1024;
/// Most never-seen ranges remembered below the window.
pub const MAX_GAPS: usize = 256;

const WORDS: usize = (WINDOW / 64) as usize;
const ENCODING_VERSION: u8 = 1;

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First time seen, inside or above the window.
    New,
    /// First time seen, below the window, filling a recorded gap.
    LateFill,
    /// Already stored: drop it (and acknowledge it).
    Duplicate,
    /// Below what the window still remembers: stored, possibly a second time.
    Unverifiable,
}

impl Admission {
    /// Whether the frame is to be stored.
    pub fn is_stored(self) -> bool {
        match self {
            Admission::New | Admission::LateFill | Admission::Unverifiable => true,
            Admission::Duplicate => false,
        }
    }
}

/// The anti-replay window of one `(device, boot)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    base: u32,
    bits: [u64; WORDS],
    gaps: Vec<(u32, u32)>,
    unknown_below: u32,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// A window for a boot never seen before: nothing is settled yet.
    pub fn new() -> Self {
        Self {
            base: 0,
            bits: [0; WORDS],
            gaps: Vec::new(),
            unknown_below: 0,
        }
    }

    /// Decides about `seq` and records it when it is stored.
    pub fn admit(&mut self, seq: u32) -> Admission {
        if seq < self.base {
            return self.admit_below(seq);
        }
        let top = u64::from(self.base) + u64::from(WINDOW);
        if u64::from(seq) >= top {
            self.slide_to(seq - (WINDOW - 1));
        }
        let offset = (seq - self.base) as usize;
        let (word, bit) = (offset / 64, offset % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return Admission::Duplicate;
        }
        self.bits[word] |= 1 << bit;
        Admission::New
    }

    /// Whether `seq` has been stored, without changing anything.
    pub fn contains(&self, seq: u32) -> bool {
        if seq < self.base {
            return seq >= self.unknown_below && !self.in_gap(seq);
        }
        let offset = u64::from(seq - self.base);
        if offset >= u64::from(WINDOW) {
            return false;
        }
        let offset = offset as usize;
        self.bits[offset / 64] & (1 << (offset % 64)) != 0
    }

    /// The lowest sequence number the bitmap covers.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// The never-seen ranges below the window, oldest first.
    pub fn gaps(&self) -> &[(u32, u32)] {
        &self.gaps
    }

    fn in_gap(&self, seq: u32) -> bool {
        self.gap_index(seq).is_some()
    }

    fn gap_index(&self, seq: u32) -> Option<usize> {
        // Ranges are sorted and disjoint: the candidate is the last one starting at or below.
        let i = self.gaps.partition_point(|&(start, _)| start <= seq);
        let i = i.checked_sub(1)?;
        let (_, end) = self.gaps[i];
        (seq < end).then_some(i)
    }

    fn admit_below(&mut self, seq: u32) -> Admission {
        if seq < self.unknown_below {
            return Admission::Unverifiable;
        }
        let Some(i) = self.gap_index(seq) else {
            return Admission::Duplicate;
        };
        let (start, end) = self.gaps[i];
        match (seq == start, seq + 1 == end) {
            (true, true) => {
                self.gaps.remove(i);
            }
            (true, false) => self.gaps[i].0 = seq + 1,
            (false, true) => self.gaps[i].1 = seq,
            (false, false) => {
                self.gaps[i].1 = seq;
                self.gaps.insert(i + 1, (seq + 1, end));
                self.bound_gaps();
            }
        }
        Admission::LateFill
    }

    /// Moves the window's bottom up to `new_base`, turning every unseen `seq` it leaves
    /// behind into a gap.
    fn slide_to(&mut self, new_base: u32) {
        debug_assert!(new_base > self.base);
        let shift = new_base - self.base;
        let covered = shift.min(WINDOW);
        let mut run_start: Option<u32> = None;
        for offset in 0..covered {
            let seen = self.bits[(offset / 64) as usize] & (1 << (offset % 64)) != 0;
            let seq = self.base + offset;
            match (seen, run_start) {
                (false, None) => run_start = Some(seq),
                (true, Some(start)) => {
                    self.push_gap(start, seq);
                    run_start = None;
                }
                (false, Some(_)) | (true, None) => {}
            }
        }
        // Everything between the old window's top and the new base was never seen either.
        let end_unseen = if shift > WINDOW {
            new_base
        } else {
            self.base + covered
        };
        if let Some(start) = run_start {
            self.push_gap(start, end_unseen);
        } else if shift > WINDOW {
            self.push_gap(self.base + WINDOW, new_base);
        }
        self.shift_bits(shift);
        self.base = new_base;
        self.bound_gaps();
    }

    fn push_gap(&mut self, start: u32, end: u32) {
        if start >= end {
            return;
        }
        match self.gaps.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            Some(_) | None => self.gaps.push((start, end)),
        }
    }

    fn bound_gaps(&mut self) {
        while self.gaps.len() > MAX_GAPS {
            let (_, end) = self.gaps.remove(0);
            self.unknown_below = end;
            metrics::counter!("vigil_dedup_gap_ranges_forgotten_total").increment(1);
        }
    }

    fn shift_bits(&mut self, shift: u32) {
        if shift >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((shift / 64) as usize, shift % 64);
        let mut out = [0u64; WORDS];
        for (i, slot) in out.iter_mut().enumerate() {
            let src = i + words;
            if src >= WORDS {
                break;
            }
            let low = self.bits[src] >> bits;
            let high = if bits > 0 && src + 1 < WORDS {
                self.bits[src + 1] << (64 - bits)
            } else {
                0
            };
            *slot = low | high;
        }
        self.bits = out;
    }

    /// The window as bytes, for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + 4 + WORDS * 8 + 2 + self.gaps.len() * 8);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&self.unknown_below.to_le_bytes());
        for w in &self.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
        // `bound_gaps` keeps the count far below u16::MAX.
        out.extend_from_slice(&(self.gaps.len() as u16).to_le_bytes());
        for (start, end) in &self.gaps {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        out
    }

    /// Reads a window written by [`ReplayWindow::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WindowDecodeError> {
        let mut r = ByteReader(bytes);
        let version = r.take::<1>()?[0];
        if version != ENCODING_VERSION {
            return Err(WindowDecodeError::Version(version));
        }
        let base = u32::from_le_bytes(r.take()?);
        let unknown_below = u32::from_le_bytes(r.take()?);
        let mut bits = [0u64; WORDS];
        for w in &mut bits {
            *w = u64::from_le_bytes(r.take()?);
        }
        let n = u16::from_le_bytes(r.take()?) as usize;
        if n > MAX_GAPS {
            return Err(WindowDecodeError::Corrupt("too many gaps"));
        }
        let mut gaps = Vec::with_capacity(n);
        let mut previous_end = unknown_below;
        for _ in 0..n {
            let start = u32::from_le_bytes(r.take()?);
            let end = u32::from_le_bytes(r.take()?);
            if start < previous_end || end <= start || end > base {
                return Err(WindowDecodeError::Corrupt("gaps out of order"));
            }
            previous_end = end;
            gaps.push((start, end));
        }
        if !r.0.is_empty() {
            return Err(WindowDecodeError::Corrupt("trailing bytes"));
        }
        Ok(Self {
            base,
            bits,
            gaps,
            unknown_below,
        })
    }
}

struct ByteReader<'a>(&'a [u8]);

impl ByteReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], WindowDecodeError> {
        if self.0.len() < N {
            return Err(WindowDecodeError::Corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
}

/// A stored window could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowDecodeError {
    #[error("replay window encoding version {0}, expected {ENCODING_VERSION}")]
    Version(u8),
    #[error("replay window is corrupt: {0}")]
    Corrupt(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit_all(w: &mut ReplayWindow, seqs: impl IntoIterator<Item = u32>) -> Vec<Admission> {
        seqs.into_iter().map(|s| w.admit(s)).collect()
    }

    #[test]
    fn the_same_frames_twice_are_stored_once() {
        let mut w = ReplayWindow::new();
        assert!(admit_all(&mut w, 1..=100)
            .iter()
            .all(|a| *a == Admission::New));
        assert!(admit_all(&mut w, 1..=100)
            .iter()
            .all(|a| *a == Admission::Duplicate));
    }

    #[test]
    fn urgent_frames_overtaking_routine_ones_lose_nothing() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.admit(50), Admission::New);
        assert_eq!(w.admit(40), Admission::New);
        let late = admit_all(&mut w, 1..=60);
        assert_eq!(late.iter().filter(|a| a.is_stored()).count(), 58);
        assert_eq!(late[39], Admission::Duplicate);
        assert_eq!(late[49], Admission::Duplicate);
    }

    #[test]
    fn a_frame_older_than_the_window_that_was_never_seen_is_stored() {
        let mut w = ReplayWindow::new();
        for s in (1..=5000).filter(|s| s % 100 != 0) {
            assert_eq!(w.admit(s), Admission::New);
        }
        assert!(w.base() > 3000);
        assert_eq!(w.admit(100), Admission::LateFill);
        assert_eq!(w.admit(100), Admission::Duplicate);
        assert_eq!(w.admit(101), Admission::Duplicate);
        assert_eq!(w.admit(200), Admission::LateFill);
        assert_eq!(w.admit(0), Admission::LateFill, "seq 0 was never seen");
    }

    #[test]
    fn a_jump_far_ahead_keeps_the_whole_skipped_range_as_one_gap() {
        let mut w = ReplayWindow::new();
        w.admit(1);
        w.admit(1_000_000);
        assert_eq!(w.gaps(), &[(0, 1), (2, 1_000_000 - WINDOW + 1)]);
        assert_eq!(w.admit(500_000), Admission::LateFill);
        assert_eq!(w.admit(1_000_000 - 10), Admission::New);
        assert_eq!(w.admit(1), Admission::Duplicate);
    }

    #[test]
    fn slides_of_every_size_keep_the_bits_that_stay_in_the_window() {
        for step in [1u32, 63, 64, 65, 500, 1023, 1024, 1025, 3000] {
            let mut w = ReplayWindow::new();
            let mut seen = Vec::new();
            let mut s = 0;
            for _ in 0..40 {
                s += step;
                w.admit(s);
                seen.push(s);
            }
            for &s in &seen {
                assert!(w.contains(s), "step {step}: {s} must be known");
                assert_eq!(w.admit(s), Admission::Duplicate, "step {step}: {s}");
            }
            for s in 1..s {
                if !seen.contains(&s) && s >= w.base().saturating_sub(10_000) {
                    assert!(!w.contains(s), "step {step}: {s} was never seen");
                }
            }
        }
    }

    #[test]
    fn too_many_holes_make_the_oldest_ones_unverifiable_not_lost() {
        let mut w = ReplayWindow::new();
        let mut s = 1;
        for _ in 0..(MAX_GAPS as u32 + 50) * 2 {
            w.admit(s);
            s += 2;
        }
        // Push everything below the window.
        w.admit(s + 2 * WINDOW);
        assert!(w.gaps().len() <= MAX_GAPS);
        assert_eq!(w.admit(2), Admission::Unverifiable);
        let last_hole = w.gaps().last().unwrap().0;
        assert_eq!(w.admit(last_hole), Admission::LateFill);
    }

    #[test]
    fn the_window_survives_a_round_trip_through_bytes() {
        let mut w = ReplayWindow::new();
        for s in (1..3000).filter(|s| s % 11 != 0) {
            w.admit(s);
        }
        let back = ReplayWindow::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(back, w);
        assert!(ReplayWindow::from_bytes(&[]).is_err());
        assert!(ReplayWindow::from_bytes(&[9]).is_err());
        let mut bytes = w.to_bytes();
        bytes.push(0);
        assert!(ReplayWindow::from_bytes(&bytes).is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_frame_is_ever_lost_and_a_duplicate_is_only_admitted_when_unverifiable(
            seqs in proptest::collection::vec(0u32..5000, 1..2000)
        ) {
            let mut w = ReplayWindow::new();
            let mut stored = std::collections::HashSet::new();
            for s in seqs {
                let a = w.admit(s);
                let first_time = stored.insert(s);
                match a {
                    Admission::New | Admission::LateFill => {
                        proptest::prop_assert!(first_time, "seq {} stored twice", s)
                    }
                    Admission::Duplicate => {
                        proptest::prop_assert!(!first_time, "seq {} lost", s)
                    }
                    Admission::Unverifiable => {}
                }
            }
        }
    }
}
