//! The production backend: PostgreSQL through a `deadpool-postgres` pool.
//!
//! Readings go in with binary `COPY` into a table partitioned by UTC day of `ts_ms`; the
//! partitions a commit needs are created just before it, outside its transaction (creating a
//! partition locks the parent table). The replay windows of the devices in a commit are
//! locked (`SELECT … FOR UPDATE`) inside the transaction, so several server instances sharing
//! a broker subscription cannot both store the same frame.

use std::collections::{BTreeSet, HashMap};
use std::pin::pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};
use vigil_protocol::DeviceId;

use super::calendar::{civil_from_days, days_from_civil};
use super::model::*;
use super::plan::{self, WindowKey};
use super::sqlite::{LATEST_COLUMNS, READING_COLUMNS};
use super::{Store, StoreError};

const MIGRATION_TABLE: &str = "vigil_telemetry_migrations";
const DAY_MS: i64 = 86_400_000;

fn migrations() -> Result<Vec<refinery::Migration>, StoreError> {
    Ok(vec![refinery::Migration::unapplied(
        "V1__telemetry",
        include_str!("../../migrations/telemetry/postgres/V1__telemetry.sql"),
    )?])
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    /// Days (since the Unix epoch) whose partition is known to exist.
    partitions: Mutex<BTreeSet<i64>>,
}

impl PgStore {
    /// Connects to `url`, applies the migrations, and opens a pool of `pool_size`.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse()?;
        Self::connect_config(config, pool_size).await
    }

    /// Like [`PgStore::connect`] with a prepared configuration (e.g. one that sets
    /// `search_path` through `options`, as the tests do to get a schema each).
    pub async fn connect_config(
        config: tokio_postgres::Config,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        {
            let (mut client, connection) = config.connect(NoTls).await?;
            let driver = tokio::spawn(connection);
            let mut runner = refinery::Runner::new(&migrations()?).set_grouped(true);
            runner.set_migration_table_name(MIGRATION_TABLE);
            runner.run_async(&mut client).await?;
            drop(client);
            let _ = driver.await;
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(|e| StoreError::PoolSetup(e.to_string()))?;
        let store = Self {
            pool,
            partitions: Mutex::new(BTreeSet::new()),
        };
        store.load_partitions().await?;
        Ok(store)
    }

    async fn load_partitions(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 JOIN pg_class p ON p.oid = i.inhparent
                 WHERE p.relname = 'readings' AND p.relnamespace = current_schema()::regnamespace",
                &[],
            )
            .await?;
        let mut known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            let name: String = row.get(0);
            if let Some(day) = day_of_partition(&name) {
                known.insert(day);
            }
        }
        Ok(())
    }

    /// Creates the daily partitions of `days` that do not exist yet.
    pub async fn ensure_partitions(
        &self,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        for day in missing {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF readings FOR VALUES FROM ({}) TO ({})",
                partition_name(day),
                day * DAY_MS,
                (day + 1) * DAY_MS
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                // Another instance created it between our check and our CREATE.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_TABLE) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::debug!(partition = %partition_name(day), "readings partition ready");
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(day);
        }
        Ok(())
    }
}

fn partition_name(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("readings_{y:04}{m:02}{d:02}")
}

fn day_of_partition(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("readings_")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[0..4].parse().ok()?;
    let m: u32 = digits[4..6].parse().ok()?;
    let d: u32 = digits[6..8].parse().ok()?;
    Some(days_from_civil(y, m, d))
}

const COPY_TYPES: [Type; 21] = [
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::BOOL,
    Type::BYTEA,
];

fn latest_from_row(r: &Row) -> DeviceLatest {
    DeviceLatest {
        device_id: r.get(0),
        site_id: r.get(1),
        gateway_id: r.get(2),
        last_seen_ms: r.get(3),
        last_ts_ms: r.get(4),
        boot_id: r.get::<_, i64>(5) as u32,
        last_seq: r.get::<_, i64>(6) as u32,
        last_kind: r.get(7),
        last_summary: r.get(8),
        battery_mv: r.get(9),
        battery_ms: r.get(10),
        rssi_dbm: r.get(11),
        firmware: r.get(12),
        readings_stored: r.get(13),
    }
}

fn reading_from_row(r: &Row) -> StoredReading {
    StoredReading {
        device_id: r.get(0),
        boot_id: r.get::<_, i64>(1) as u32,
        seq: r.get::<_, i64>(2) as u32,
        ts_ms: r.get(3),
        server_received_ms: r.get(4),
        gateway_received_ms: r.get(5),
        wall_ms: r.get(6),
        uptime_ms: r.get(7),
        site_id: r.get(8),
        gateway_id: r.get(9),
        kind: r.get(10),
        total_ml: r.get(11),
        flow_ml_per_min: r.get(12),
        volume_ml: r.get(13),
        battery_mv: r.get(14),
        rssi_dbm: r.get(15),
        event: r.get(16),
        fire_value: r.get(17),
        fire_signal: r.get(18),
        urgent: r.get(19),
        frame: r.get(20),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn commit(&self, batch: Arc<IngestBatch>) -> Result<CommitReport, StoreError> {
        let frames = &batch.frames;
        let days: BTreeSet<i64> = frames
            .iter()
            .map(|f| f.event_ms().div_euclid(DAY_MS))
            .collect();
        self.ensure_partitions(days).await?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;

        let keys = plan::window_keys(frames);
        let mut windows: HashMap<WindowKey, Vec<u8>> = HashMap::new();
        if !keys.is_empty() {
            let devices: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
            let boots: Vec<i64> = keys.iter().map(|k| i64::from(k.1)).collect();
            // A placeholder row for a new (device, boot), so that it can be locked too.
            tx.execute(
                "INSERT INTO dedup_windows (device_id, boot_id, replay, updated_ms)
                 SELECT d, b, ''::bytea, 0 FROM unnest($1::text[], $2::int8[]) AS u(d, b)
                 ON CONFLICT (device_id, boot_id) DO NOTHING",
                &[&devices, &boots],
            )
            .await?;
            let rows = tx
                .query(
                    "SELECT w.device_id, w.boot_id, w.replay FROM dedup_windows w
                     JOIN unnest($1::text[], $2::int8[]) AS u(d, b)
                       ON w.device_id = u.d AND w.boot_id = u.b
                     ORDER BY w.device_id, w.boot_id
                     FOR UPDATE OF w",
                    &[&devices, &boots],
                )
                .await?;
            for row in rows {
                let key = (row.get::<_, String>(0), row.get::<_, i64>(1) as u32);
                windows.insert(key, row.get(2));
            }
        }
        let mut latest = HashMap::new();
        let ids = plan::device_ids(frames);
        if !ids.is_empty() {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {LATEST_COLUMNS} FROM device_latest WHERE device_id = ANY($1)"
                    ),
                    &[&ids],
                )
                .await?;
            for row in rows {
                let l = latest_from_row(&row);
                latest.insert(l.device_id.clone(), l);
            }
        }
        let plan = plan::plan(frames, windows, latest);

        if !plan.stored.is_empty() {
            let sink = tx
                .copy_in(&format!(
                    "COPY readings ({READING_COLUMNS}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            let mut writer = pin!(BinaryCopyInWriter::new(sink, &COPY_TYPES));
            for &i in &plan.stored {
                let f = &frames[i];
                let c = f.columns();
                let row: [&(dyn ToSql + Sync); 21] = [
                    &f.frame.device_id.as_str(),
                    &i64::from(f.frame.boot_id),
                    &i64::from(f.frame.seq),
                    &f.event_ms(),
                    &f.server_received_ms,
                    &f.gateway_received_ms.map(|v| v as i64),
                    &f.frame.wall_ms.map(|v| v as i64),
                    &(f.frame.uptime_ms as i64),
                    &f.via.as_ref().map(|v| v.0.as_str()),
                    &f.via.as_ref().map(|v| v.1.as_str()),
                    &c.kind,
                    &c.total_ml,
                    &c.flow_ml_per_min,
                    &c.volume_ml,
                    &c.battery_mv,
                    &c.rssi_dbm,
                    &c.event,
                    &c.fire_value,
                    &c.fire_signal,
                    &c.urgent,
                    &&f.raw[..],
                ];
                writer.as_mut().write(&row).await?;
            }
            writer.as_mut().finish().await?;
        }

        let now = frames
            .iter()
            .map(|f| f.server_received_ms)
            .max()
            .unwrap_or(0);
        if !plan.windows.is_empty() {
            let devices: Vec<&str> = plan.windows.iter().map(|w| w.0 .0.as_str()).collect();
            let boots: Vec<i64> = plan.windows.iter().map(|w| i64::from(w.0 .1)).collect();
            let bytes: Vec<&[u8]> = plan.windows.iter().map(|w| w.1.as_slice()).collect();
            tx.execute(
                "UPDATE dedup_windows w SET replay = u.r, updated_ms = $4
                 FROM unnest($1::text[], $2::int8[], $3::bytea[]) AS u(d, b, r)
                 WHERE w.device_id = u.d AND w.boot_id = u.b",
                &[&devices, &boots, &bytes, &now],
            )
            .await?;
        }
        if !plan.latest.is_empty() {
            let l = &plan.latest;
            let col = |f: fn(&DeviceLatest) -> Option<String>| l.iter().map(f).collect::<Vec<_>>();
            let ids: Vec<&str> = l.iter().map(|x| x.device_id.as_str()).collect();
            let sites = col(|x| x.site_id.clone());
            let gateways = col(|x| x.gateway_id.clone());
            let seen: Vec<i64> = l.iter().map(|x| x.last_seen_ms).collect();
            let ts: Vec<i64> = l.iter().map(|x| x.last_ts_ms).collect();
            let boots: Vec<i64> = l.iter().map(|x| i64::from(x.boot_id)).collect();
            let seqs: Vec<i64> = l.iter().map(|x| i64::from(x.last_seq)).collect();
            let kinds: Vec<&str> = l.iter().map(|x| x.last_kind.as_str()).collect();
            let summaries: Vec<&str> = l.iter().map(|x| x.last_summary.as_str()).collect();
            let battery: Vec<Option<i32>> = l.iter().map(|x| x.battery_mv).collect();
            let battery_ms: Vec<Option<i64>> = l.iter().map(|x| x.battery_ms).collect();
            let rssi: Vec<Option<i32>> = l.iter().map(|x| x.rssi_dbm).collect();
            let firmware = col(|x| x.firmware.clone());
            let stored: Vec<i64> = l.iter().map(|x| x.readings_stored).collect();
            tx.execute(
                &format!(
                    "INSERT INTO device_latest ({LATEST_COLUMNS})
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[],
                        $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::int4[],
                        $11::int8[], $12::int4[], $13::text[], $14::int8[])
                     ON CONFLICT (device_id) DO UPDATE SET
                        site_id = excluded.site_id, gateway_id = excluded.gateway_id,
                        last_seen_ms = excluded.last_seen_ms, last_ts_ms = excluded.last_ts_ms,
                        boot_id = excluded.boot_id, last_seq = excluded.last_seq,
                        last_kind = excluded.last_kind, last_summary = excluded.last_summary,
                        battery_mv = excluded.battery_mv, battery_ms = excluded.battery_ms,
                        rssi_dbm = excluded.rssi_dbm, firmware = excluded.firmware,
                        readings_stored = excluded.readings_stored"
                ),
                &[
                    &ids,
                    &sites,
                    &gateways,
                    &seen,
                    &ts,
                    &boots,
                    &seqs,
                    &kinds,
                    &summaries,
                    &battery,
                    &battery_ms,
                    &rssi,
                    &firmware,
                    &stored,
                ],
            )
            .await?;
        }
        if !batch.quarantine.is_empty() {
            let q = &batch.quarantine;
            let received: Vec<i64> = q.iter().map(|x| x.received_ms).collect();
            let topics: Vec<&str> = q.iter().map(|x| x.topic.as_str()).collect();
            let reasons: Vec<&str> = q.iter().map(|x| x.reason.as_str()).collect();
            let details: Vec<&str> = q.iter().map(|x| x.detail.as_str()).collect();
            let payloads: Vec<&[u8]> = q.iter().map(|x| x.payload.as_slice()).collect();
            let lens: Vec<i64> = q.iter().map(|x| x.payload_len as i64).collect();
            tx.execute(
                "INSERT INTO quarantine (received_ms, topic, reason, detail, payload, payload_len)
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[],
                    $5::bytea[], $6::int8[])",
                &[&received, &topics, &reasons, &details, &payloads, &lens],
            )
            .await?;
            tx.execute(
                "DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - $1",
                &[&(batch.quarantine_bound as i64)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(CommitReport {
            admissions: plan.admissions,
        })
    }

    async fn readings(&self, q: ReadingsQuery) -> Result<ReadingsPage, StoreError> {
        q.check()?;
        let after = q.after.unwrap_or(ReadingCursor {
            ts_ms: i64::MIN,
            boot_id: 0,
            seq: 0,
        });
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT {READING_COLUMNS} FROM readings
                 WHERE device_id = $1 AND ts_ms >= $2 AND ts_ms < $3
                   AND ($7 OR (ts_ms, boot_id, seq) > ($4, $5, $6))
                 ORDER BY ts_ms, boot_id, seq LIMIT $8"
            ))
            .await?;
        let rows = client
            .query(
                &st,
                &[
                    &q.device.as_str(),
                    &q.from_ms,
                    &q.to_ms,
                    &after.ts_ms,
                    &i64::from(after.boot_id),
                    &i64::from(after.seq),
                    &q.after.is_none(),
                    &i64::from(q.limit),
                ],
            )
            .await?;
        let readings: Vec<StoredReading> = rows.iter().map(reading_from_row).collect();
        let next = (readings.len() == q.limit as usize)
            .then(|| readings.last().map(StoredReading::cursor))
            .flatten();
        Ok(ReadingsPage { readings, next })
    }

    async fn latest(
        &self,
        devices: Option<Vec<DeviceId>>,
    ) -> Result<Vec<DeviceLatest>, StoreError> {
        let client = self.pool.get().await?;
        let rows = match devices {
            None => {
                client
                    .query(
                        &format!("SELECT {LATEST_COLUMNS} FROM device_latest ORDER BY device_id"),
                        &[],
                    )
                    .await?
            }
            Some(ids) => {
                let ids: Vec<&str> = ids.iter().map(|d| d.as_str()).collect();
                client
                    .query(
                        &format!(
                            "SELECT {LATEST_COLUMNS} FROM device_latest
                             WHERE device_id = ANY($1) ORDER BY device_id"
                        ),
                        &[&ids],
                    )
                    .await?
            }
        };
        Ok(rows.iter().map(latest_from_row).collect())
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
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT (ts_ms - ((ts_ms % $4) + $4) % $4) AS start,
                        coalesce(sum(volume_ml), 0)::int8, count(*)
                 FROM readings
                 WHERE device_id = $1 AND ts_ms >= $2 AND ts_ms < $3 AND kind = 'meter'
                 GROUP BY start ORDER BY start",
                &[&device.as_str(), &from_ms, &to_ms, &bucket.millis()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| WaterUse {
                start_ms: r.get(0),
                used_ml: r.get(1),
                readings: r.get(2),
            })
            .collect())
    }

    async fn quarantined(&self, limit: u32) -> Result<Vec<QuarantineRecord>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, received_ms, topic, reason, detail, payload, payload_len
                 FROM quarantine ORDER BY id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| QuarantineRecord {
                id: r.get(0),
                received_ms: r.get(1),
                topic: r.get(2),
                reason: r.get(3),
                detail: r.get(4),
                payload: r.get(5),
                payload_len: r.get(6),
            })
            .collect())
    }

    async fn prune(&self, older_than_ms: i64) -> Result<PruneReport, StoreError> {
        self.load_partitions().await?;
        let expired: Vec<i64> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            known
                .iter()
                .copied()
                .filter(|day| (day + 1) * DAY_MS <= older_than_ms)
                .collect()
        };
        let client = self.pool.get().await?;
        let mut report = PruneReport::default();
        for day in expired {
            let name = partition_name(day);
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                .await?;
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&day);
            report.partitions_dropped.push(name);
        }
        report.windows_deleted = client
            .execute(
                "DELETE FROM dedup_windows WHERE updated_ms < $1",
                &[&older_than_ms],
            )
            .await?;
        Ok(report)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.query_one("SELECT 1", &[]).await?;
        Ok(())
    }
}
