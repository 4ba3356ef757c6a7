//! The embedded backend: one SQLite file in WAL mode, `synchronous = FULL` so that a commit
//! that ingest acknowledges survives a power cut.
//!
//! rusqlite is blocking: every call runs on tokio's blocking pool. One connection writes
//! (SQLite has a single writer anyway); another serves queries, which WAL lets run while a
//! write is in progress.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use vigil_protocol::DeviceId;

use super::model::*;
use super::plan::{self, WindowKey};
use super::{Store, StoreError};

const MIGRATION_TABLE: &str = "vigil_telemetry_migrations";

fn migrations() -> Result<Vec<refinery::Migration>, StoreError> {
    Ok(vec![refinery::Migration::unapplied(
        "V1__telemetry",
        include_str!("../../migrations/telemetry/sqlite/V1__telemetry.sql"),
    )?])
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|_| StoreError::WorkerGone)?
    }

    fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        let mut runner = refinery::Runner::new(&migrations()?).set_grouped(true);
        runner.set_migration_table_name(MIGRATION_TABLE);
        runner.run(&mut writer)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn with<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a transaction half-applied
            // (rusqlite rolls back on drop), so a poisoned lock is still usable.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| StoreError::WorkerGone)?
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn commit_blocking(conn: &mut Connection, batch: &IngestBatch) -> Result<CommitReport, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let frames = &batch.frames;
    let mut windows: HashMap<WindowKey, Vec<u8>> = HashMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT replay FROM dedup_windows WHERE device_id = ?1 AND boot_id = ?2",
        )?;
        for key in plan::window_keys(frames) {
            let bytes: Option<Vec<u8>> = st
                .query_row(params![key.0, key.1], |r| r.get(0))
                .optional()?;
            if let Some(bytes) = bytes {
                windows.insert(key, bytes);
            }
        }
    }
    let mut latest = HashMap::new();
    {
        let mut st = tx.prepare_cached(&format!(
            "SELECT {LATEST_COLUMNS} FROM device_latest WHERE device_id = ?1"
        ))?;
        for id in plan::device_ids(frames) {
            if let Some(l) = st.query_row([&id], latest_from_row).optional()? {
                latest.insert(id, l);
            }
        }
    }
    let plan = plan::plan(frames, windows, latest);
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO readings (device_id, boot_id, seq, ts_ms, server_received_ms,
                gateway_received_ms, wall_ms, uptime_ms, site_id, gateway_id, kind, total_ml,
                flow_ml_per_min, volume_ml, battery_mv, rssi_dbm, event, fire_value,
                fire_signal, urgent, frame)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20, ?21)",
        )?;
        for &i in &plan.stored {
            let f = &frames[i];
            let c = f.columns();
            st.execute(params![
                f.frame.device_id.as_str(),
                f.frame.boot_id,
                f.frame.seq,
                f.event_ms(),
                f.server_received_ms,
                f.gateway_received_ms.map(|v| v as i64),
                f.frame.wall_ms.map(|v| v as i64),
                f.frame.uptime_ms as i64,
                f.via.as_ref().map(|v| v.0.as_str()),
                f.via.as_ref().map(|v| v.1.as_str()),
                c.kind,
                c.total_ml,
                c.flow_ml_per_min,
                c.volume_ml,
                c.battery_mv,
                c.rssi_dbm,
                c.event,
                c.fire_value,
                c.fire_signal,
                c.urgent,
                &f.raw[..],
            ])?;
        }
    }
    let now = frames
        .iter()
        .map(|f| f.server_received_ms)
        .max()
        .unwrap_or(0);
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO dedup_windows (device_id, boot_id, replay, updated_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, boot_id) DO UPDATE
             SET replay = excluded.replay, updated_ms = excluded.updated_ms",
        )?;
        for ((device, boot), bytes) in &plan.windows {
            st.execute(params![device, boot, bytes, now])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO device_latest (device_id, site_id, gateway_id,
                last_seen_ms, last_ts_ms, boot_id, last_seq, last_kind, last_summary,
                battery_mv, battery_ms, rssi_dbm, firmware, readings_stored)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for l in &plan.latest {
            st.execute(params![
                l.device_id,
                l.site_id,
                l.gateway_id,
                l.last_seen_ms,
                l.last_ts_ms,
                l.boot_id,
                l.last_seq,
                l.last_kind,
                l.last_summary,
                l.battery_mv,
                l.battery_ms,
                l.rssi_dbm,
                l.firmware,
                l.readings_stored,
            ])?;
        }
    }
    if !batch.quarantine.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT INTO quarantine (received_ms, topic, reason, detail, payload, payload_len)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for q in &batch.quarantine {
            st.execute(params![
                q.received_ms,
                q.topic,
                q.reason,
                q.detail,
                q.payload,
                q.payload_len as i64
            ])?;
        }
        tx.execute(
            "DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - ?1",
            [batch.quarantine_bound as i64],
        )?;
    }
    tx.commit()?;
    Ok(CommitReport {
        admissions: plan.admissions,
    })
}

pub(crate) const LATEST_COLUMNS: &str = "device_id, site_id, gateway_id, last_seen_ms, \
    last_ts_ms, boot_id, last_seq, last_kind, last_summary, battery_mv, battery_ms, rssi_dbm, \
    firmware, readings_stored";

fn latest_from_row(r: &Row<'_>) -> rusqlite::Result<DeviceLatest> {
    Ok(DeviceLatest {
        device_id: r.get(0)?,
        site_id: r.get(1)?,
        gateway_id: r.get(2)?,
        last_seen_ms: r.get(3)?,
        last_ts_ms: r.get(4)?,
        boot_id: r.get(5)?,
        last_seq: r.get(6)?,
        last_kind: r.get(7)?,
        last_summary: r.get(8)?,
        battery_mv: r.get(9)?,
        battery_ms: r.get(10)?,
        rssi_dbm: r.get(11)?,
        firmware: r.get(12)?,
        readings_stored: r.get(13)?,
    })
}

pub(crate) const READING_COLUMNS: &str = "device_id, boot_id, seq, ts_ms, server_received_ms, \
    gateway_received_ms, wall_ms, uptime_ms, site_id, gateway_id, kind, total_ml, \
    flow_ml_per_min, volume_ml, battery_mv, rssi_dbm, event, fire_value, fire_signal, urgent, \
    frame";

fn reading_from_row(r: &Row<'_>) -> rusqlite::Result<StoredReading> {
    Ok(StoredReading {
        device_id: r.get(0)?,
        boot_id: r.get(1)?,
        seq: r.get(2)?,
        ts_ms: r.get(3)?,
        server_received_ms: r.get(4)?,
        gateway_received_ms: r.get(5)?,
        wall_ms: r.get(6)?,
        uptime_ms: r.get(7)?,
        site_id: r.get(8)?,
        gateway_id: r.get(9)?,
        kind: r.get(10)?,
        total_ml: r.get(11)?,
        flow_ml_per_min: r.get(12)?,
        volume_ml: r.get(13)?,
        battery_mv: r.get(14)?,
        rssi_dbm: r.get(15)?,
        event: r.get(16)?,
        fire_value: r.get(17)?,
        fire_signal: r.get(18)?,
        urgent: r.get(19)?,
        frame: r.get(20)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn commit(&self, batch: Arc<IngestBatch>) -> Result<CommitReport, StoreError> {
        Self::with(&self.writer, move |c| commit_blocking(c, &batch)).await
    }

    async fn readings(&self, q: ReadingsQuery) -> Result<ReadingsPage, StoreError> {
        q.check()?;
        Self::with(&self.reader, move |c| {
            let after = q.after.unwrap_or(ReadingCursor {
                ts_ms: i64::MIN,
                boot_id: 0,
                seq: 0,
            });
            let include_first = q.after.is_none();
            let mut st = c.prepare_cached(&format!(
                "SELECT {READING_COLUMNS} FROM readings
                 WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
                   AND (?7 OR (ts_ms, boot_id, seq) > (?4, ?5, ?6))
                 ORDER BY ts_ms, boot_id, seq LIMIT ?8"
            ))?;
            let readings = st
                .query_map(
                    params![
                        q.device.as_str(),
                        q.from_ms,
                        q.to_ms,
                        after.ts_ms,
                        after.boot_id,
                        after.seq,
                        include_first,
                        q.limit
                    ],
                    reading_from_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let next = (readings.len() == q.limit as usize)
                .then(|| readings.last().map(StoredReading::cursor))
                .flatten();
            Ok(ReadingsPage { readings, next })
        })
        .await
    }

    async fn latest(
        &self,
        devices: Option<Vec<DeviceId>>,
    ) -> Result<Vec<DeviceLatest>, StoreError> {
        Self::with(&self.reader, move |c| {
            let mut out = Vec::new();
            match devices {
                None => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {LATEST_COLUMNS} FROM device_latest ORDER BY device_id"
                    ))?;
                    for row in st.query_map([], latest_from_row)? {
                        out.push(row?);
                    }
                }
                Some(ids) => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {LATEST_COLUMNS} FROM device_latest WHERE device_id = ?1"
                    ))?;
                    for id in ids {
                        if let Some(l) = st.query_row([id.as_str()], latest_from_row).optional()? {
                            out.push(l);
                        }
                    }
                    out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
                    out.dedup_by(|a, b| a.device_id == b.device_id);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn water_use(
        &self,
        device: DeviceId,
        from_ms: i64,
        to_ms: i64,
        bucket: Bucket,
    ) -> Result<Vec<WaterUse>, StoreError> {
        if from_ms > to_ms {
            return Err(StoreError::InvalidQuery("from must not be after to"));
        }
        let width = bucket.millis();
        Self::with(&self.reader, move |c| {
            let mut st = c.prepare_cached(
                // Integer division truncates towards zero: shift negative times down first.
                "SELECT (ts_ms - ((ts_ms % ?4) + ?4) % ?4) AS start, sum(volume_ml), count(*)
                 FROM readings
                 WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND kind = 'meter'
                 GROUP BY start ORDER BY start",
            )?;
            let rows = st.query_map(params![device.as_str(), from_ms, to_ms, width], |r| {
                Ok(WaterUse {
                    start_ms: r.get(0)?,
                    used_ml: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    readings: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn quarantined(&self, limit: u32) -> Result<Vec<QuarantineRecord>, StoreError> {
        Self::with(&self.reader, move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, received_ms, topic, reason, detail, payload, payload_len
                 FROM quarantine ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                Ok(QuarantineRecord {
                    id: r.get(0)?,
                    received_ms: r.get(1)?,
                    topic: r.get(2)?,
                    reason: r.get(3)?,
                    detail: r.get(4)?,
                    payload: r.get(5)?,
                    payload_len: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn prune(&self, older_than_ms: i64) -> Result<PruneReport, StoreError> {
        Self::with(&self.writer, move |c| {
            let tx = c.transaction()?;
            let readings = tx.execute("DELETE FROM readings WHERE ts_ms < ?1", [older_than_ms])?;
            let windows = tx.execute(
                "DELETE FROM dedup_windows WHERE updated_ms < ?1",
                [older_than_ms],
            )?;
            tx.commit()?;
            Ok(PruneReport {
                readings_deleted: readings as u64,
                partitions_dropped: Vec::new(),
                windows_deleted: windows as u64,
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Self::with(&self.reader, |c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }
}
