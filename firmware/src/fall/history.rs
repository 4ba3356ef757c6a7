//! Bounded histories the fall detector looks back into when an impact arrives: the recent
//! magnitudes (for the drop before the impact) and coarse posture blocks (for the posture
//! the wearer had before the fall).

use super::geometry::VecSum;

/// Ticks of magnitude history kept. Rounding the decimation keeps the processing rate
/// below 75 Hz whatever the input rate, so 80 ticks always cover the one-second
/// pre-impact window (1.6 s at 50 Hz).
pub(crate) const MAGNITUDE_TICKS: usize = 80;
/// Length of one posture block.
pub(crate) const POSTURE_BLOCK_MS: u32 = 250;
/// Posture blocks kept: 3 s.
pub(crate) const POSTURE_BLOCKS: usize = 12;

/// One processed tick: its magnitude and how long it lasted.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MagnitudeTick {
    pub mg: u16,
    pub dt_ms: u16,
}

/// Ring of the last [`MAGNITUDE_TICKS`] magnitudes, newest last.
// Design: a plain array ring rather than a heapless deque: it is always full after the
// first second, and reading it newest-first is the only access pattern.
#[derive(Debug, Clone)]
pub(crate) struct MagnitudeHistory {
    ticks: [MagnitudeTick; MAGNITUDE_TICKS],
    next: usize,
    len: usize,
}

impl MagnitudeHistory {
    pub(crate) const fn new() -> Self {
        Self {
            ticks: [MagnitudeTick { mg: 0, dt_ms: 0 }; MAGNITUDE_TICKS],
            next: 0,
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, tick: MagnitudeTick) {
        self.ticks[self.next] = tick;
        self.next = (self.next + 1) % MAGNITUDE_TICKS;
        self.len = (self.len + 1).min(MAGNITUDE_TICKS);
    }

    /// Newest first.
    pub(crate) fn iter_newest_first(&self) -> impl Iterator<Item = MagnitudeTick> + '_ {
        (1..=self.len)
            .map(move |back| self.ticks[(self.next + MAGNITUDE_TICKS - back) % MAGNITUDE_TICKS])
    }
}

/// A closed posture block: the sum of the vectors in it and when it ended.
///
/// `i32` sums suffice: a 250 ms block holds at most 19 ticks at the highest processing
/// rate (under 75 Hz), and 19 · 32 768 is far below 2³¹.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PostureBlock {
    pub sum: [i32; 3],
    pub end_ms: u64,
}

/// Ring of coarse posture blocks plus the block being filled.
#[derive(Debug, Clone)]
pub(crate) struct PostureHistory {
    blocks: [PostureBlock; POSTURE_BLOCKS],
    next: usize,
    len: usize,
    open: VecSum,
    open_ms: u32,
}

impl PostureHistory {
    pub(crate) const fn new() -> Self {
        const EMPTY: PostureBlock = PostureBlock {
            sum: [0; 3],
            end_ms: 0,
        };
        Self {
            blocks: [EMPTY; POSTURE_BLOCKS],
            next: 0,
            len: 0,
            open: VecSum { x: 0, y: 0, z: 0 },
            open_ms: 0,
        }
    }

    pub(crate) fn push(&mut self, now_ms: u64, dt_ms: u32, x: i32, y: i32, z: i32) {
        self.open.add(x, y, z);
        self.open_ms += dt_ms;
        if self.open_ms >= POSTURE_BLOCK_MS {
            self.blocks[self.next] = PostureBlock {
                sum: [self.open.x, self.open.y, self.open.z].map(saturate_i32),
                end_ms: now_ms,
            };
            self.next = (self.next + 1) % POSTURE_BLOCKS;
            self.len = (self.len + 1).min(POSTURE_BLOCKS);
            self.open = VecSum::default();
            self.open_ms = 0;
        }
    }

    /// The oldest closed block's sum, if any block has closed.
    pub(crate) fn oldest(&self) -> Option<VecSum> {
        if self.len == 0 {
            return None;
        }
        let [x, y, z] = self.blocks[(self.next + POSTURE_BLOCKS - self.len) % POSTURE_BLOCKS].sum;
        let mut sum = VecSum::default();
        sum.add(x, y, z);
        Some(sum)
    }

    /// Sum of the closed blocks that ended within `[from_ms, to_ms]`.
    pub(crate) fn sum_ending_within(&self, from_ms: u64, to_ms: u64) -> VecSum {
        let mut total = VecSum::default();
        for back in 1..=self.len {
            let block = &self.blocks[(self.next + POSTURE_BLOCKS - back) % POSTURE_BLOCKS];
            if block.end_ms >= from_ms && block.end_ms <= to_ms {
                let [x, y, z] = block.sum;
                total.add(x, y, z);
            }
        }
        total
    }
}

fn saturate_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}
