//! The board's bounded RAM spool: every frame stays until a durable receipt covers it.
//!
//! Design: a small array of encoded frames with a per-entry send state. Urgent frames (calls,
//! falls, fire alarms, tamper, leak) are offered before routine ones; within a class the oldest
//! goes first. A PUBACK only says the broker has a frame, so a published frame stays here until
//! the gateway's [`DurableReceipt`] covers its `seq`, and is offered again if the receipt does
//! not come in time (the gateway may have lost it). When the spool is full, the oldest routine
//! frame is dropped and counted; an urgent frame is never dropped: a new urgent frame that finds
//! the spool full of urgent frames is refused, and the caller keeps it and tries again.

use heapless::Vec;
use vigil_protocol::limits::MAX_FRAME_BYTES;
use vigil_protocol::{DurableReceipt, EncodeError, UplinkFrame};

use crate::hal::Millis;

/// Where a spooled frame is in its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Waiting to be published (again).
    Queued,
    /// Published with this MQTT packet id; no PUBACK yet.
    InFlight { packet_id: u16, sent_at: Millis },
    /// The broker acknowledged it at `acked_at`; waiting for the durable receipt.
    Published { acked_at: Millis },
}

/// One frame in the spool, encoded in at most `B` bytes.
#[derive(Debug, Clone)]
pub struct SpooledFrame<const B: usize> {
    pub seq: u32,
    pub urgent: bool,
    pub state: SendState,
    pub bytes: Vec<u8, B>,
}

/// Why a frame could not be spooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full of urgent frames; the urgent frame must be offered again")]
    FullOfUrgent,
    #[error("the frame could not be encoded (or is larger than this spool's slots): {0}")]
    Encode(#[from] EncodeError),
}

/// What happened when a frame was spooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    Stored,
    /// Stored after dropping the oldest routine frame, whose `seq` this is.
    StoredDroppingRoutine {
        dropped_seq: u32,
    },
    /// The new frame was routine and the spool held only urgent frames: it was dropped.
    DroppedNewRoutine,
}

/// Counters a board reports in its heartbeat or logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolCounters {
    pub routine_dropped: u32,
    pub urgent_refused: u32,
    pub receipts_ignored: u32,
    pub resent_for_missing_receipt: u32,
}

/// A spool of at most `N` frames of at most `B` encoded bytes each.
///
/// `B` is the largest frame the board makes (see `meter::MAX_REPORT_BYTES`,
/// `pendant::MAX_FRAME_BYTES`, `fire::MAX_FRAME_BYTES`), so a pendant does not reserve a meter's
/// slot size; a frame that does not fit is refused with [`SpoolError::Encode`].
#[derive(Debug)]
pub struct Spool<const N: usize, const B: usize = MAX_FRAME_BYTES> {
    boot_id: u32,
    entries: Vec<SpooledFrame<B>, N>,
    counters: SpoolCounters,
}

impl<const N: usize, const B: usize> Spool<N, B> {
    pub fn new(boot_id: u32) -> Self {
        Self {
            boot_id,
            entries: Vec::new(),
            counters: SpoolCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn counters(&self) -> SpoolCounters {
        self.counters
    }

    pub fn entries(&self) -> impl Iterator<Item = &SpooledFrame<B>> {
        self.entries.iter()
    }

    /// Encodes and keeps `frame` until a receipt covers it.
    pub fn push(&mut self, frame: &UplinkFrame) -> Result<Admitted, SpoolError> {
        // Encoded in place: no second frame-sized buffer on the stack.
        let mut bytes = Vec::<u8, B>::new();
        // Cannot fail: resizing to the capacity.
        let _ = bytes.resize(B, 0);
        let n = frame.encode(&mut bytes)?;
        bytes.truncate(n);
        let entry = SpooledFrame {
            seq: frame.seq,
            urgent: frame.is_urgent(),
            state: SendState::Queued,
            bytes,
        };
        let mut admitted = Admitted::Stored;
        if self.entries.is_full() {
            match self.oldest_routine() {
                Some(i) => {
                    let dropped = self.entries.remove(i);
                    self.counters.routine_dropped += 1;
                    admitted = Admitted::StoredDroppingRoutine {
                        dropped_seq: dropped.seq,
                    };
                }
                None if entry.urgent => {
                    self.counters.urgent_refused += 1;
                    return Err(SpoolError::FullOfUrgent);
                }
                None => {
                    self.counters.routine_dropped += 1;
                    return Ok(Admitted::DroppedNewRoutine);
                }
            }
        }
        // Cannot fail: there is room now.
        let _ = self.entries.push(entry);
        Ok(admitted)
    }

    fn oldest_routine(&self) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.urgent)
            .min_by_key(|(_, e)| e.seq)
            .map(|(i, _)| i)
    }

    /// The next queued frame to publish: urgent before routine, oldest first.
    pub fn next_queued(&self) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state == SendState::Queued)
            .min_by_key(|(_, e)| (!e.urgent, e.seq))
            .map(|(i, _)| i)
    }

    pub fn entry(&self, index: usize) -> Option<&SpooledFrame<B>> {
        self.entries.get(index)
    }

    pub fn mark_in_flight(&mut self, index: usize, packet_id: u16, now: Millis) {
        if let Some(e) = self.entries.get_mut(index) {
            e.state = SendState::InFlight {
                packet_id,
                sent_at: now,
            };
        }
    }

    /// A PUBACK for `packet_id`; returns whether a frame was waiting for it.
    pub fn handle_puback(&mut self, packet_id: u16, now: Millis) -> bool {
        for e in self.entries.iter_mut() {
            if let SendState::InFlight { packet_id: p, .. } = e.state {
                if p == packet_id {
                    e.state = SendState::Published { acked_at: now };
                    return true;
                }
            }
        }
        false
    }

    /// Drops every frame the receipt covers; returns how many. Receipts for another boot,
    /// duplicates and receipts older than ones already seen are harmless: covering is
    /// idempotent, and a frame the receipt does not cover stays.
    pub fn handle_receipt(&mut self, receipt: &DurableReceipt) -> usize {
        if receipt.boot_id != self.boot_id {
            self.counters.receipts_ignored += 1;
            return 0;
        }
        let before = self.entries.len();
        self.entries
            .retain(|e| !receipt.covers(receipt.boot_id, e.seq));
        before - self.entries.len()
    }

    /// Puts every frame not yet covered back in the queue (after a reconnect: the old
    /// session's packet ids mean nothing any more).
    pub fn requeue_all(&mut self) {
        for e in self.entries.iter_mut() {
            e.state = SendState::Queued;
        }
    }

    /// Frames published but not covered by a receipt within `receipt_timeout_ms` are offered
    /// again; returns how many.
    pub fn requeue_unreceipted(&mut self, now: Millis, receipt_timeout_ms: u32) -> usize {
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if let SendState::Published { acked_at } = e.state {
                if now.saturating_sub(acked_at) >= u64::from(receipt_timeout_ms) {
                    e.state = SendState::Queued;
                    n += 1;
                }
            }
        }
        self.counters.resent_for_missing_receipt += n as u32;
        n
    }

    /// The earliest time a published frame's receipt times out.
    pub fn next_receipt_deadline(&self, receipt_timeout_ms: u32) -> Option<Millis> {
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                SendState::Published { acked_at } => Some(acked_at + u64::from(receipt_timeout_ms)),
                SendState::Queued | SendState::InFlight { .. } => None,
            })
            .min()
    }

    /// In-flight frames, as `(index, packet_id, sent_at)`.
    pub fn in_flight(&self) -> impl Iterator<Item = (usize, u16, Millis)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.state {
                SendState::InFlight { packet_id, sent_at } => Some((i, packet_id, sent_at)),
                SendState::Queued | SendState::Published { .. } => None,
            })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec as StdVec;

    use vigil_protocol::{
        ButtonEvent, ButtonKind, DeviceId, FirmwareVersion, Heartbeat, UplinkBody,
    };

    use super::*;

    fn routine(seq: u32) -> UplinkFrame {
        frame(
            seq,
            UplinkBody::Heartbeat(Heartbeat {
                battery_mv: 3000,
                rssi_dbm: -60,
                firmware: FirmwareVersion::new("1.0.0").unwrap(),
            }),
        )
    }

    fn urgent(seq: u32) -> UplinkFrame {
        frame(
            seq,
            UplinkBody::Button(ButtonEvent {
                kind: ButtonKind::Press,
                cancels_seq: None,
            }),
        )
    }

    fn frame(seq: u32, body: UplinkBody) -> UplinkFrame {
        UplinkFrame {
            device_id: DeviceId::new("p-1").unwrap(),
            boot_id: 3,
            seq,
            uptime_ms: u64::from(seq) * 1000,
            wall_ms: None,
            body,
        }
    }

    fn receipt(boot_id: u32, held_through: u32, also: &[u32]) -> DurableReceipt {
        DurableReceipt {
            boot_id,
            held_through,
            also_held: heapless::Vec::from_slice(also).unwrap(),
        }
    }

    fn drain_order<const N: usize>(s: &mut Spool<N>) -> StdVec<u32> {
        let mut order = StdVec::new();
        while let Some(i) = s.next_queued() {
            order.push(s.entry(i).unwrap().seq);
            s.mark_in_flight(i, order.len() as u16, 0);
        }
        order
    }

    #[test]
    fn urgent_frames_are_offered_before_older_routine_frames() {
        let mut s = Spool::<8>::new(3);
        for f in [routine(1), routine(2), urgent(3), routine(4), urgent(5)] {
            s.push(&f).unwrap();
        }
        assert_eq!(drain_order(&mut s), [3, 5, 1, 2, 4]);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_routine_frame_and_counts_it() {
        let mut s = Spool::<3>::new(3);
        s.push(&routine(1)).unwrap();
        s.push(&urgent(2)).unwrap();
        s.push(&routine(3)).unwrap();
        assert_eq!(
            s.push(&urgent(4)),
            Ok(Admitted::StoredDroppingRoutine { dropped_seq: 1 })
        );
        assert_eq!(
            s.push(&routine(5)),
            Ok(Admitted::StoredDroppingRoutine { dropped_seq: 3 })
        );
        assert_eq!(s.counters().routine_dropped, 2);
        assert_eq!(drain_order(&mut s), [2, 4, 5]);
    }

    #[test]
    fn an_urgent_frame_is_never_dropped_when_the_spool_is_full_of_urgent_frames() {
        let mut s = Spool::<2>::new(3);
        s.push(&urgent(1)).unwrap();
        s.push(&urgent(2)).unwrap();
        assert_eq!(s.push(&routine(3)), Ok(Admitted::DroppedNewRoutine));
        assert_eq!(s.push(&urgent(4)), Err(SpoolError::FullOfUrgent));
        assert_eq!(s.counters().urgent_refused, 1);
        assert_eq!(s.entries().map(|e| e.seq).collect::<StdVec<_>>(), [1, 2]);
    }

    #[test]
    fn a_published_frame_stays_until_a_receipt_covers_it() {
        let mut s = Spool::<4>::new(3);
        s.push(&routine(1)).unwrap();
        s.push(&routine(2)).unwrap();
        s.mark_in_flight(0, 7, 100);
        assert!(s.handle_puback(7, 150));
        assert_eq!(s.len(), 2);
        assert_eq!(s.handle_receipt(&receipt(3, 1, &[])), 1);
        assert_eq!(s.entries().map(|e| e.seq).collect::<StdVec<_>>(), [2]);
    }

    #[test]
    fn out_of_order_receipts_remove_only_what_they_cover() {
        let mut s = Spool::<8>::new(3);
        for seq in 1..=5 {
            s.push(&routine(seq)).unwrap();
        }
        // The gateway holds 4 (an urgent frame that overtook) but not yet 2, 3, 5.
        assert_eq!(s.handle_receipt(&receipt(3, 1, &[4])), 2);
        // An older, duplicate receipt changes nothing.
        assert_eq!(s.handle_receipt(&receipt(3, 0, &[])), 0);
        assert_eq!(s.handle_receipt(&receipt(3, 1, &[4])), 0);
        assert_eq!(s.entries().map(|e| e.seq).collect::<StdVec<_>>(), [2, 3, 5]);
        assert_eq!(s.handle_receipt(&receipt(3, 5, &[])), 3);
        assert!(s.is_empty());
    }

    #[test]
    fn a_receipt_for_another_boot_is_ignored_and_counted() {
        let mut s = Spool::<4>::new(3);
        s.push(&routine(1)).unwrap();
        assert_eq!(s.handle_receipt(&receipt(2, 100, &[])), 0);
        assert_eq!(s.len(), 1);
        assert_eq!(s.counters().receipts_ignored, 1);
    }

    #[test]
    fn a_frame_without_a_receipt_in_time_is_offered_again() {
        let mut s = Spool::<4>::new(3);
        s.push(&routine(1)).unwrap();
        s.mark_in_flight(0, 1, 0);
        s.handle_puback(1, 1_000);
        assert_eq!(s.next_receipt_deadline(30_000), Some(31_000));
        assert_eq!(s.requeue_unreceipted(30_999, 30_000), 0);
        assert_eq!(s.next_queued(), None);
        assert_eq!(s.requeue_unreceipted(31_000, 30_000), 1);
        assert_eq!(s.next_queued(), Some(0));
    }

    #[test]
    fn a_frame_larger_than_the_slot_size_is_refused_with_a_typed_error() {
        let mut s = Spool::<4, 32>::new(3);
        assert_eq!(
            s.push(&routine(1)),
            Err(SpoolError::Encode(EncodeError::BufferTooSmall))
        );
        assert!(s.is_empty());
    }

    #[test]
    fn an_unknown_puback_changes_nothing() {
        let mut s = Spool::<4>::new(3);
        s.push(&routine(1)).unwrap();
        s.mark_in_flight(0, 1, 0);
        assert!(!s.handle_puback(2, 10));
        assert_eq!(s.in_flight().count(), 1);
    }

    mod invariants {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push { urgent: bool },
            Receipt { through: u32 },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => any::<bool>().prop_map(|urgent| Op::Push { urgent }),
                1 => (0u32..40).prop_map(|through| Op::Receipt { through }),
            ]
        }

        proptest! {
            #[test]
            fn no_accepted_urgent_frame_is_ever_lost_and_every_drop_is_counted(
                ops in prop::collection::vec(op(), 1..60),
            ) {
                let mut s = Spool::<5>::new(3);
                let mut seq = 0;
                let mut covered = 0;
                let mut urgent_kept = BTreeSet::new();
                // Routine frames accepted and neither dropped nor covered, as a model.
                let mut routine_alive = BTreeSet::new();
                let mut drops = 0;
                for op in ops {
                    match op {
                        Op::Push { urgent: u } => {
                            seq += 1;
                            let f = if u { urgent(seq) } else { routine(seq) };
                            match s.push(&f) {
                                Ok(admitted) => {
                                    if let Admitted::StoredDroppingRoutine { dropped_seq } = admitted {
                                        // The oldest routine frame goes first.
                                        prop_assert_eq!(routine_alive.first().copied(), Some(dropped_seq));
                                        prop_assert!(routine_alive.remove(&dropped_seq));
                                        drops += 1;
                                    }
                                    match (u, admitted) {
                                        (true, Admitted::DroppedNewRoutine) => prop_assert!(false, "urgent dropped"),
                                        (true, _) => { urgent_kept.insert(seq); }
                                        (false, Admitted::DroppedNewRoutine) => drops += 1,
                                        (false, _) => { routine_alive.insert(seq); }
                                    }
                                }
                                Err(SpoolError::FullOfUrgent) => prop_assert!(u),
                                Err(e) => prop_assert!(false, "{e}"),
                            }
                        }
                        Op::Receipt { through } => {
                            s.handle_receipt(&receipt(3, through, &[]));
                            covered = covered.max(through);
                            routine_alive.retain(|q| *q > through);
                        }
                    }
                    prop_assert!(s.len() <= 5);
                    let held: BTreeSet<u32> = s.entries().map(|e| e.seq).collect();
                    for u in &urgent_kept {
                        prop_assert!(*u <= covered || held.contains(u), "urgent {u} lost");
                    }
                    let routine_held: BTreeSet<u32> =
                        s.entries().filter(|e| !e.urgent).map(|e| e.seq).collect();
                    prop_assert_eq!(&routine_held, &routine_alive);
                    prop_assert_eq!(s.counters().routine_dropped, drops);
                }
                let order: StdVec<bool> = drain_order(&mut s)
                    .iter()
                    .map(|q| urgent_kept.contains(q))
                    .collect();
                prop_assert!(order.windows(2).all(|w| w[0] || !w[1]), "urgent first: {order:?}");
            }
        }
    }
}
