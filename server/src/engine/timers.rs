//! The earliest deadline among many detectors, without a scan per tick.
//!
//! Design: a min-heap of `(deadline, key)` with lazy deletion. `scheduled` holds each key's
//! current deadline; a heap entry that no longer matches it is stale and skipped when it
//! surfaces. A detector whose deadline moves on every frame (a heartbeat pushes the offline
//! deadline forward) leaves stale entries behind, so the heap is rebuilt from `scheduled`
//! once it holds more than twice as many entries as there are live deadlines.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use crate::alerts::Timestamp;

#[derive(Debug)]
pub struct DeadlineQueue<K: Ord + Hash + Clone> {
    heap: BinaryHeap<Reverse<(Timestamp, K)>>,
    scheduled: HashMap<K, Timestamp>,
}

impl<K: Ord + Hash + Clone> Default for DeadlineQueue<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            scheduled: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> DeadlineQueue<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or clears) `key`'s deadline.
    pub fn schedule(&mut self, key: K, deadline: Option<Timestamp>) {
        match deadline {
            None => {
                self.scheduled.remove(&key);
            }
            Some(at) => {
                if self.scheduled.get(&key) == Some(&at) {
                    return;
                }
                self.scheduled.insert(key.clone(), at);
                self.heap.push(Reverse((at, key)));
                if self.heap.len() > 2 * self.scheduled.len() + 1024 {
                    self.compact();
                }
            }
        }
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.scheduled.get(key) == Some(at) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes one key whose deadline is at or before `now` (its deadline is cleared; the
    /// caller schedules it again after handling it).
    pub fn pop_due(&mut self, now: Timestamp) -> Option<K> {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                return None;
            }
            let Reverse((at, key)) = self.heap.pop()?;
            if self.scheduled.get(&key) == Some(&at) {
                self.scheduled.remove(&key);
                return Some(key);
            }
        }
        None
    }

    /// Live deadlines.
    pub fn len(&self) -> usize {
        self.scheduled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scheduled.is_empty()
    }

    /// Heap entries, live and stale (for the memory figures).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    fn compact(&mut self) {
        self.heap = self
            .scheduled
            .iter()
            .map(|(k, at)| Reverse((*at, k.clone())))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_s(s)
    }

    #[test]
    fn due_keys_come_out_in_deadline_order_and_moved_deadlines_do_not_fire_early() {
        let mut q = DeadlineQueue::new();
        q.schedule("a", Some(t(10)));
        q.schedule("b", Some(t(5)));
        q.schedule("a", Some(t(20))); // moved later: the entry at 10 is stale
        q.schedule("c", Some(t(7)));
        q.schedule("c", None);
        assert_eq!(q.next_deadline(), Some(t(5)));
        assert_eq!(q.pop_due(t(15)), Some("b"));
        assert_eq!(q.pop_due(t(15)), None, "a moved to 20, c was cleared");
        assert_eq!(q.next_deadline(), Some(t(20)));
        assert_eq!(q.pop_due(t(20)), Some("a"));
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn a_deadline_moved_on_every_frame_keeps_the_heap_bounded() {
        let mut q = DeadlineQueue::new();
        for i in 0..100_000u64 {
            q.schedule(i % 10, Some(t(1_000 + i)));
        }
        assert_eq!(q.len(), 10);
        assert!(q.heap_len() <= 2 * 10 + 1024 + 1, "{}", q.heap_len());
        assert_eq!(q.next_deadline(), Some(t(1_000 + 99_990)));
    }
}
