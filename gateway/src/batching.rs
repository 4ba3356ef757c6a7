//! Which spooled frames go upstream next, and when (sans-IO).
//!
//! Urgent frames (calls, falls, fire alarms, tamper) go at once in their own batch, ahead of
//! any backlog and regardless of the drain rate. Routine frames go in arrival order, in
//! batches bounded by count and age, paced by a token bucket so that after an outage a
//! district's gateways do not all flood the server at once. Batches in flight are tracked
//! until the upstream broker acknowledges them; when the link drops, every unacknowledged
//! batch is planned again (a duplicate upstream, never a loss), and routine frames resume
//! from the oldest unacknowledged one so each device's frames keep their order.

use std::collections::{BTreeMap, VecDeque};

use vigil_protocol::limits::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};

use crate::spool::{FrameMeta, SpoolKey};

/// Batching and pacing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSettings {
    /// Most frames in one batch (at most the protocol's 500).
    pub max_frames: usize,
    /// A routine batch leaves once its oldest frame has waited this long.
    pub max_age_ms: u64,
    /// Most batches awaiting the broker's acknowledgement at once.
    pub max_inflight: usize,
    /// Routine frames per second sent upstream; 0 = unlimited.
    pub drain_rate_fps: u32,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_frames: MAX_BATCH_ENTRIES,
            max_age_ms: 1_000,
            max_inflight: 16,
            drain_rate_fps: 20_000,
        }
    }
}

/// Largest sum of frame lengths planned into one batch, leaving room for CBOR framing.
const MAX_BATCH_PAYLOAD: u64 = (MAX_BATCH_BYTES as u64) - 16 * 1024;

/// Identifies one planned batch until it is acknowledged.
pub type BatchId = u64;

/// A batch to encode and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    pub id: BatchId,
    pub keys: Vec<SpoolKey>,
    pub urgent: bool,
}

#[derive(Debug)]
struct Inflight {
    keys: Vec<SpoolKey>,
    urgent: bool,
}

/// The batching and pacing core.
#[derive(Debug)]
pub struct BatchPlanner {
    settings: BatchSettings,
    connected: bool,
    urgent: VecDeque<SpoolKey>,
    /// Every routine key at or above this one that is still spooled is unsent.
    routine_cursor: SpoolKey,
    inflight: BTreeMap<BatchId, Inflight>,
    next_id: BatchId,
    tokens: f64,
    refilled_ms: Option<u64>,
}

impl BatchPlanner {
    /// A planner for a spool whose urgent frames are `urgent_backlog` (in arrival order).
    pub fn new(settings: BatchSettings, urgent_backlog: Vec<SpoolKey>) -> Self {
        let max_frames = settings.max_frames.clamp(1, MAX_BATCH_ENTRIES);
        Self {
            settings: BatchSettings {
                max_frames,
                ..settings
            },
            connected: false,
            urgent: urgent_backlog.into(),
            routine_cursor: 0,
            inflight: BTreeMap::new(),
            next_id: 1,
            tokens: max_frames as f64,
            refilled_ms: None,
        }
    }

    /// A newly spooled urgent frame.
    pub fn push_urgent(&mut self, key: SpoolKey) {
        self.urgent.push_back(key);
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn handle_connected(&mut self) {
        self.connected = true;
    }

    /// The link dropped: every batch in flight is planned again.
    pub fn handle_disconnected(&mut self) {
        self.connected = false;
        let mut urgent_again = Vec::new();
        for (_, batch) in std::mem::take(&mut self.inflight) {
            if batch.urgent {
                urgent_again.extend(batch.keys);
            } else if let Some(first) = batch.keys.first() {
                self.routine_cursor = self.routine_cursor.min(*first);
            }
        }
        urgent_again.sort_unstable();
        for k in urgent_again.into_iter().rev() {
            self.urgent.push_front(k);
        }
    }

    /// The broker acknowledged batch `id`: its keys may leave the spool.
    pub fn handle_ack(&mut self, id: BatchId) -> Option<(Vec<SpoolKey>, bool)> {
        self.inflight.remove(&id).map(|b| (b.keys, b.urgent))
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    fn refill(&mut self, now_ms: u64) {
        let rate = self.settings.drain_rate_fps;
        if rate == 0 {
            return;
        }
        let cap = (self.settings.max_frames as f64).max(f64::from(rate) / 10.0);
        if let Some(last) = self.refilled_ms {
            let dt = now_ms.saturating_sub(last) as f64 / 1000.0;
            self.tokens = (self.tokens + dt * f64::from(rate)).min(cap);
        }
        self.refilled_ms = Some(now_ms);
    }

    /// The next batch to publish now, if any.
    pub fn poll_batch(
        &mut self,
        now_ms: u64,
        index: &BTreeMap<SpoolKey, FrameMeta>,
    ) -> Option<PlannedBatch> {
        if !self.connected || self.inflight.len() >= self.settings.max_inflight {
            return None;
        }
        // Urgent frames first, whatever the pacing.
        let mut keys = Vec::new();
        let mut size = 0u64;
        while let Some(&k) = self.urgent.front() {
            if keys.len() >= self.settings.max_frames {
                break;
            }
            self.urgent.pop_front();
            if let Some(meta) = index.get(&k) {
                size += u64::from(meta.len);
                keys.push(k);
                if size >= MAX_BATCH_PAYLOAD {
                    break;
                }
            }
        }
        if !keys.is_empty() {
            return Some(self.launch(keys, true));
        }
        self.refill(now_ms);
        let (keys, oldest_ms, last) = self.routine_candidates(index);
        let first_ms = oldest_ms?;
        let full =
            keys.len() >= self.settings.max_frames || size_of(&keys, index) >= MAX_BATCH_PAYLOAD;
        if !full && now_ms < first_ms.saturating_add(self.settings.max_age_ms) {
            return None;
        }
        if self.settings.drain_rate_fps != 0 && self.tokens < keys.len() as f64 {
            return None;
        }
        if self.settings.drain_rate_fps != 0 {
            self.tokens -= keys.len() as f64;
        }
        self.routine_cursor = last + 1;
        Some(self.launch(keys, false))
    }

    fn routine_candidates(
        &self,
        index: &BTreeMap<SpoolKey, FrameMeta>,
    ) -> (Vec<SpoolKey>, Option<u64>, SpoolKey) {
        let mut keys = Vec::new();
        let mut oldest = None;
        let mut last = self.routine_cursor;
        let mut size = 0u64;
        for (&k, meta) in index.range(self.routine_cursor..) {
            if meta.urgent {
                continue;
            }
            if keys.len() >= self.settings.max_frames
                || size + u64::from(meta.len) > MAX_BATCH_PAYLOAD
            {
                break;
            }
            oldest.get_or_insert(meta.received_ms);
            size += u64::from(meta.len);
            keys.push(k);
            last = k;
        }
        (keys, oldest, last)
    }

    fn launch(&mut self, keys: Vec<SpoolKey>, urgent: bool) -> PlannedBatch {
        let id = self.next_id;
        self.next_id += 1;
        self.inflight.insert(
            id,
            Inflight {
                keys: keys.clone(),
                urgent,
            },
        );
        PlannedBatch { id, keys, urgent }
    }

    /// When [`Self::poll_batch`] may next return a batch without any new input.
    pub fn next_deadline(&self, now_ms: u64, index: &BTreeMap<SpoolKey, FrameMeta>) -> Option<u64> {
        if !self.connected || self.inflight.len() >= self.settings.max_inflight {
            return None;
        }
        if !self.urgent.is_empty() {
            return Some(now_ms);
        }
        let (keys, oldest, _) = self.routine_candidates(index);
        let oldest = oldest?;
        let full = keys.len() >= self.settings.max_frames;
        let by_age = if full {
            now_ms
        } else {
            oldest.saturating_add(self.settings.max_age_ms)
        };
        let rate = self.settings.drain_rate_fps;
        let by_tokens = if rate == 0 || self.tokens >= keys.len() as f64 {
            now_ms
        } else {
            let missing = keys.len() as f64 - self.tokens;
            now_ms + (missing * 1000.0 / f64::from(rate)).ceil() as u64
        };
        Some(by_age.max(by_tokens).max(now_ms))
    }
}

fn size_of(keys: &[SpoolKey], index: &BTreeMap<SpoolKey, FrameMeta>) -> u64 {
    keys.iter()
        .filter_map(|k| index.get(k))
        .map(|m| u64::from(m.len))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(SpoolKey, u64, bool)]) -> BTreeMap<SpoolKey, FrameMeta> {
        entries
            .iter()
            .map(|&(k, ms, urgent)| {
                (
                    k,
                    FrameMeta {
                        received_ms: ms,
                        len: 60,
                        urgent,
                    },
                )
            })
            .collect()
    }

    fn settings(max_frames: usize, rate: u32) -> BatchSettings {
        BatchSettings {
            max_frames,
            max_age_ms: 1_000,
            max_inflight: 4,
            drain_rate_fps: rate,
        }
    }

    #[test]
    fn routine_frames_wait_for_a_full_batch_or_the_age_bound() {
        let idx = index(&[(1, 0, false), (2, 10, false)]);
        let mut p = BatchPlanner::new(settings(3, 0), vec![]);
        p.handle_connected();
        assert_eq!(p.poll_batch(500, &idx), None);
        assert_eq!(p.next_deadline(500, &idx), Some(1_000));
        let b = p.poll_batch(1_000, &idx).unwrap();
        assert_eq!((b.keys, b.urgent), (vec![1, 2], false));
        let idx = index(&[
            (1, 0, false),
            (2, 10, false),
            (3, 20, false),
            (4, 20, false),
            (5, 20, false),
        ]);
        let b = p.poll_batch(30, &idx).unwrap();
        assert_eq!(b.keys, vec![3, 4, 5]);
    }

    #[test]
    fn an_alarm_goes_at_once_ahead_of_the_backlog_and_the_rate_limit() {
        let idx = index(&[(1, 0, false), (2, 0, false), (3, 5, true)]);
        let mut p = BatchPlanner::new(settings(500, 1), vec![]);
        p.handle_connected();
        p.push_urgent(3);
        let b = p.poll_batch(5, &idx).unwrap();
        assert_eq!((b.keys, b.urgent), (vec![3], true));
    }

    #[test]
    fn nothing_is_sent_while_the_link_is_down() {
        let idx = index(&[(1, 0, true)]);
        let mut p = BatchPlanner::new(settings(10, 0), vec![1]);
        assert_eq!(p.poll_batch(10_000, &idx), None);
        assert_eq!(p.next_deadline(10_000, &idx), None);
        p.handle_connected();
        assert!(p.poll_batch(10_000, &idx).is_some());
    }

    #[test]
    fn batches_in_flight_when_the_link_drops_are_sent_again_in_order() {
        let idx = index(&[
            (1, 0, false),
            (2, 0, false),
            (3, 0, false),
            (4, 0, false),
            (5, 0, true),
        ]);
        let mut p = BatchPlanner::new(settings(2, 0), vec![5]);
        p.handle_connected();
        let u = p.poll_batch(0, &idx).unwrap();
        let a = p.poll_batch(0, &idx).unwrap();
        let b = p.poll_batch(0, &idx).unwrap();
        assert_eq!(
            (u.keys.clone(), a.keys.clone(), b.keys.clone()),
            (vec![5], vec![1, 2], vec![3, 4])
        );
        assert_eq!(p.handle_ack(b.id).map(|x| x.0), Some(vec![3, 4]));
        p.handle_disconnected();
        p.handle_connected();
        let idx = index(&[(1, 0, false), (2, 0, false), (5, 0, true)]);
        assert_eq!(p.poll_batch(0, &idx).unwrap().keys, vec![5]);
        assert_eq!(p.poll_batch(0, &idx).unwrap().keys, vec![1, 2]);
        assert_eq!(p.poll_batch(0, &idx), None);
        assert_eq!(
            p.handle_ack(a.id),
            None,
            "a batch from a dropped link is never acknowledged"
        );
    }

    #[test]
    fn the_drain_rate_paces_the_backlog() {
        let entries: Vec<_> = (1..=1000).map(|k| (k, 0, false)).collect();
        let idx = index(&entries);
        let mut p = BatchPlanner::new(
            BatchSettings {
                max_frames: 100,
                max_age_ms: 0,
                max_inflight: 1000,
                drain_rate_fps: 200,
            },
            vec![],
        );
        p.handle_connected();
        let mut sent = 0;
        let mut now = 0;
        while now <= 2_000 {
            while let Some(b) = p.poll_batch(now, &idx) {
                sent += b.keys.len();
            }
            now += 10;
        }
        // 100 at the start (the bucket starts full) plus 200 per second for two seconds.
        assert!((450..=500).contains(&sent), "{sent}");
    }

    #[test]
    fn the_inflight_window_bounds_unacknowledged_batches() {
        let entries: Vec<_> = (1..=100).map(|k| (k, 0, false)).collect();
        let idx = index(&entries);
        let mut p = BatchPlanner::new(settings(5, 0), vec![]);
        p.handle_connected();
        let ids: Vec<_> = std::iter::from_fn(|| p.poll_batch(0, &idx))
            .map(|b| b.id)
            .collect();
        assert_eq!(ids.len(), 4);
        p.handle_ack(ids[0]);
        assert!(p.poll_batch(0, &idx).is_some());
    }
}
