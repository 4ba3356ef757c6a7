//! The spool on disk (redb) and its in-memory index.
//!
//! Fsync policy (group commit): frames that arrive together are written in one redb
//! transaction committed with `Durability::Immediate` (fsync) before any receipt for them
//! goes out. Removals of frames acknowledged upstream are committed without fsync and become
//! durable with the next fsynced commit (or the periodic one): a crash can only bring back
//! frames already delivered, which are then sent again (a duplicate the server drops), never
//! lose one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use vigil_protocol::{DeviceId, DownlinkBody, DownlinkFrame, DurableReceipt, UplinkFrame};

use super::policy::{admits, record_cost, SpoolLimits};
use super::receipts::{Held, ReceiptWindow};

const FRAMES: TableDefinition<u64, &[u8]> = TableDefinition::new("frames");
const RECEIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("receipts");
const ALARMS: TableDefinition<&str, &[u8]> = TableDefinition::new("alarms");
const ACKS: TableDefinition<u64, &[u8]> = TableDefinition::new("local_acks");

/// Position of a frame in the spool; increases with arrival, so it orders frames per device.
pub type SpoolKey = u64;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool database: {0}")]
    Database(#[from] redb::DatabaseError),
    #[error("spool transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("spool table: {0}")]
    Table(#[from] redb::TableError),
    #[error("spool storage: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("spool commit: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("spool directory: {0}")]
    Io(#[from] std::io::Error),
}

/// What the index keeps of each spooled frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub received_ms: u64,
    pub len: u32,
    pub urgent: bool,
}

/// A frame to spool.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub frame: UplinkFrame,
    pub raw: Vec<u8>,
    pub received_ms: u64,
}

/// What became of one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored(SpoolKey),
    /// Already held: confirmed again, not stored twice.
    Duplicate,
    /// Refused because the spool is full (routine frames only); no receipt covers it.
    RefusedFull,
}

/// A frame read back for sending.
#[derive(Debug, Clone)]
pub struct StoredFrame {
    pub key: SpoolKey,
    pub received_ms: u64,
    pub urgent: bool,
    pub raw: Vec<u8>,
}

/// The durable spool.
pub struct Spool {
    db: Database,
    index: BTreeMap<SpoolKey, FrameMeta>,
    next_key: SpoolKey,
    bytes: u64,
    limits: SpoolLimits,
    windows: HashMap<DeviceId, ReceiptWindow>,
    pending_removals: Vec<SpoolKey>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("frames", &self.index.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Spool {
    /// Opens or creates the spool in `dir` and rebuilds the index from disk.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("spool.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(FRAMES)?;
        txn.open_table(RECEIPTS)?;
        txn.open_table(ALARMS)?;
        txn.open_table(ACKS)?;
        txn.commit()?;
        let mut index = BTreeMap::new();
        let mut bytes = 0;
        let mut windows = HashMap::new();
        {
            let read = db.begin_read()?;
            let frames = read.open_table(FRAMES)?;
            for row in frames.iter()? {
                let (k, v) = row?;
                let v = v.value();
                if let Some((meta, _)) = split_record(v) {
                    bytes += record_cost(meta.len as usize);
                    index.insert(k.value(), meta);
                }
            }
            let receipts = read.open_table(RECEIPTS)?;
            for row in receipts.iter()? {
                let (k, v) = row?;
                if let (Ok(id), Some(w)) = (
                    DeviceId::new(k.value()),
                    ReceiptWindow::from_bytes(v.value()),
                ) {
                    windows.insert(id, w);
                }
            }
        }
        let next_key = index.keys().next_back().map_or(1, |k| k + 1);
        Ok(Self {
            db,
            index,
            next_key,
            bytes,
            limits,
            windows,
            pending_removals: Vec::new(),
        })
    }

    /// Frames held and not yet acknowledged upstream.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes counted against the limit.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn limits(&self) -> SpoolLimits {
        self.limits
    }

    /// Receive time of the oldest frame held.
    pub fn oldest_received_ms(&self) -> Option<u64> {
        self.index.values().next().map(|m| m.received_ms)
    }

    /// The index, in arrival order.
    pub fn index(&self) -> &BTreeMap<SpoolKey, FrameMeta> {
        &self.index
    }

    /// Stores `arrivals` in one fsynced transaction, together with the given alarm records
    /// (key, JSON) for the console, and returns each arrival's outcome and the receipts to
    /// send. Nothing is applied (and no receipt is due) when this returns an error.
    pub fn admit(
        &mut self,
        arrivals: &[Arrival],
        mut alarm_record: impl FnMut(&Arrival) -> Option<(String, Vec<u8>)>,
    ) -> Result<(Vec<Outcome>, Vec<DownlinkFrame>), SpoolError> {
        let mut staged: HashMap<DeviceId, ReceiptWindow> = HashMap::new();
        let mut one_offs: Vec<DownlinkFrame> = Vec::new();
        let mut outcomes = Vec::with_capacity(arrivals.len());
        let mut new_index = Vec::new();
        let mut bytes = self.bytes;
        let mut key = self.next_key;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| SpoolError::Io(std::io::Error::other(e.to_string())))?;
        {
            let mut frames = txn.open_table(FRAMES)?;
            let mut alarms = txn.open_table(ALARMS)?;
            for k in self.pending_removals.drain(..) {
                frames.remove(k)?;
            }
            let mut record = Vec::with_capacity(600);
            for a in arrivals {
                let dev = &a.frame.device_id;
                let window = staged
                    .entry(dev.clone())
                    .or_insert_with(|| self.windows.get(dev).cloned().unwrap_or_default());
                let (boot, seq) = (a.frame.boot_id, a.frame.seq);
                let urgent = a.frame.is_urgent();
                let cost = record_cost(a.raw.len());
                let held_before = window.holds(boot, seq);
                if held_before {
                    outcomes.push(Outcome::Duplicate);
                    continue;
                }
                if !admits(&self.limits, bytes, cost, urgent) {
                    outcomes.push(Outcome::RefusedFull);
                    continue;
                }
                match window.record(boot, seq) {
                    Held::New => {}
                    Held::Duplicate => {
                        outcomes.push(Outcome::Duplicate);
                        continue;
                    }
                    Held::OlderBoot => {
                        let mut also_held = heapless::Vec::new();
                        let _ = also_held.push(seq);
                        one_offs.push(DownlinkFrame {
                            device_id: dev.clone(),
                            body: DownlinkBody::Receipt(DurableReceipt {
                                boot_id: boot,
                                held_through: 0,
                                also_held,
                            }),
                        });
                    }
                }
                let meta = FrameMeta {
                    received_ms: a.received_ms,
                    len: a.raw.len() as u32,
                    urgent,
                };
                record.clear();
                record.extend_from_slice(&a.received_ms.to_le_bytes());
                record.push(u8::from(urgent));
                record.extend_from_slice(&a.raw);
                frames.insert(key, record.as_slice())?;
                if let Some((akey, json)) = alarm_record(a) {
                    alarms.insert(akey.as_str(), json.as_slice())?;
                }
                new_index.push((key, meta));
                outcomes.push(Outcome::Stored(key));
                bytes += cost;
                key += 1;
            }
            let mut receipts = txn.open_table(RECEIPTS)?;
            for (dev, w) in &staged {
                receipts.insert(dev.as_str(), w.to_bytes().as_slice())?;
            }
        }
        txn.commit()?;
        self.next_key = key;
        self.bytes = bytes;
        self.index.extend(new_index);
        let mut downlinks = one_offs;
        for (dev, w) in staged {
            downlinks.push(DownlinkFrame {
                device_id: dev.clone(),
                body: DownlinkBody::Receipt(w.receipt()),
            });
            self.windows.insert(dev, w);
        }
        Ok((outcomes, downlinks))
    }

    /// Reads frames back for sending (frames already removed are skipped).
    pub fn read(&self, keys: &[SpoolKey]) -> Result<Vec<StoredFrame>, SpoolError> {
        let txn = self.db.begin_read()?;
        let frames = txn.open_table(FRAMES)?;
        let mut out = Vec::with_capacity(keys.len());
        for &key in keys {
            if let Some(v) = frames.get(key)? {
                if let Some((meta, raw)) = split_record(v.value()) {
                    out.push(StoredFrame {
                        key,
                        received_ms: meta.received_ms,
                        urgent: meta.urgent,
                        raw: raw.to_vec(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Forgets frames the upstream broker acknowledged; written with the next commit.
    pub fn remove(&mut self, keys: &[SpoolKey]) {
        for k in keys {
            if let Some(meta) = self.index.remove(k) {
                self.bytes = self.bytes.saturating_sub(record_cost(meta.len as usize));
                self.pending_removals.push(*k);
            }
        }
    }

    /// Removals waiting to be committed.
    pub fn pending_removals(&self) -> usize {
        self.pending_removals.len()
    }

    /// Commits pending removals; `durable` fsyncs (and makes earlier unsynced commits durable).
    pub fn flush_removals(&mut self, durable: bool) -> Result<(), SpoolError> {
        if self.pending_removals.is_empty() && !durable {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        let level = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(level)
            .map_err(|e| SpoolError::Io(std::io::Error::other(e.to_string())))?;
        {
            let mut frames = txn.open_table(FRAMES)?;
            for k in &self.pending_removals {
                frames.remove(*k)?;
            }
        }
        txn.commit()?;
        self.pending_removals.clear();
        Ok(())
    }

    /// The current receipt for a board, if it sent anything.
    pub fn receipt_for(&self, device: &DeviceId) -> Option<DurableReceipt> {
        self.windows.get(device).map(ReceiptWindow::receipt)
    }

    /// Writes (fsynced) one console alarm record.
    pub fn put_alarm(&self, key: &str, json: &[u8]) -> Result<(), SpoolError> {
        let txn = self.db.begin_write()?;
        txn.open_table(ALARMS)?.insert(key, json)?;
        txn.commit()?;
        Ok(())
    }

    /// Every console alarm record.
    pub fn alarms(&self) -> Result<Vec<(String, Vec<u8>)>, SpoolError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ALARMS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Deletes console alarm records (old, acknowledged ones).
    pub fn delete_alarms(&self, keys: &[String]) -> Result<(), SpoolError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(ALARMS)?;
            for k in keys {
                t.remove(k.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores (fsynced) a local acknowledgement to forward upstream; returns its key.
    pub fn put_local_ack(&self, encoded: &[u8]) -> Result<u64, SpoolError> {
        let txn = self.db.begin_write()?;
        let key;
        {
            let mut t = txn.open_table(ACKS)?;
            key = t.last()?.map_or(1, |(k, _)| k.value() + 1);
            t.insert(key, encoded)?;
        }
        txn.commit()?;
        Ok(key)
    }

    /// Local acknowledgements not yet acknowledged upstream.
    pub fn local_acks(&self) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ACKS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Forgets a local acknowledgement the upstream broker acknowledged.
    pub fn remove_local_ack(&self, key: u64) -> Result<(), SpoolError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| SpoolError::Io(std::io::Error::other(e.to_string())))?;
        txn.open_table(ACKS)?.remove(key)?;
        txn.commit()?;
        Ok(())
    }
}

fn split_record(v: &[u8]) -> Option<(FrameMeta, &[u8])> {
    if v.len() < 9 {
        return None;
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&v[..8]);
    let raw = &v[9..];
    Some((
        FrameMeta {
            received_ms: u64::from_le_bytes(ms),
            len: raw.len() as u32,
            urgent: v[8] != 0,
        },
        raw,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_protocol::{ButtonEvent, ButtonKind, UplinkBody};

    fn arrival(dev: &str, seq: u32, urgent: bool) -> Arrival {
        let body = if urgent {
            UplinkBody::Button(ButtonEvent {
                kind: ButtonKind::Press,
                cancels_seq: None,
            })
        } else {
            crate::harness::meter_reading(u64::from(seq))
        };
        let frame = UplinkFrame {
            device_id: DeviceId::new(dev).unwrap(),
            boot_id: 1,
            seq,
            uptime_ms: 0,
            wall_ms: None,
            body,
        };
        let mut buf = [0u8; 512];
        let n = frame.encode(&mut buf).unwrap();
        Arrival {
            frame,
            raw: buf[..n].to_vec(),
            received_ms: u64::from(seq),
        }
    }

    fn big() -> SpoolLimits {
        SpoolLimits { max_bytes: 1 << 30 }
    }

    #[test]
    fn spooled_frames_and_receipt_windows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), big()).unwrap();
            let arrivals: Vec<_> = (1..=5).map(|i| arrival("a", i, false)).collect();
            let (outcomes, receipts) = s.admit(&arrivals, |_| None).unwrap();
            assert_eq!(outcomes, (1..=5).map(Outcome::Stored).collect::<Vec<_>>());
            assert_eq!(receipts.len(), 1);
            s.remove(&[1, 2]);
            s.flush_removals(true).unwrap();
        }
        let mut s = Spool::open(dir.path(), big()).unwrap();
        assert_eq!(s.index().keys().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
        let r = s.receipt_for(&DeviceId::new("a").unwrap()).unwrap();
        assert_eq!(r.held_through, 5);
        let read = s.read(&[3, 5]).unwrap();
        assert_eq!(read[1].raw, arrival("a", 5, false).raw);
        // A frame sent again after a lost receipt is confirmed but not stored twice.
        let (outcomes, _) = s
            .admit(&[arrival("a", 4, false), arrival("a", 6, false)], |_| None)
            .unwrap();
        assert_eq!(outcomes, vec![Outcome::Duplicate, Outcome::Stored(6)]);
    }

    #[test]
    fn a_full_spool_refuses_readings_but_admits_alarms() {
        let dir = tempfile::tempdir().unwrap();
        let one = record_cost(arrival("a", 1, false).raw.len());
        let mut s = Spool::open(dir.path(), SpoolLimits { max_bytes: 2 * one }).unwrap();
        let (outcomes, receipts) = s
            .admit(
                &[
                    arrival("a", 1, false),
                    arrival("a", 2, false),
                    arrival("a", 3, false),
                    arrival("a", 4, true),
                ],
                |_| None,
            )
            .unwrap();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Stored(1),
                Outcome::Stored(2),
                Outcome::RefusedFull,
                Outcome::Stored(3)
            ]
        );
        let DownlinkBody::Receipt(r) = &receipts[0].body else {
            panic!("expected a receipt");
        };
        assert_eq!((r.held_through, r.also_held.as_slice()), (2, &[4u32][..]));
        s.remove(&[1, 2]);
        let (outcomes, _) = s.admit(&[arrival("a", 3, false)], |_| None).unwrap();
        assert_eq!(outcomes, vec![Outcome::Stored(4)]);
    }
}
