//! The embedded SQLite backend: one rusqlite connection (WAL) per store, used on tokio's
//! blocking pool. Several stores (or processes) may open one file; claims take the write lock
//! up front with `BEGIN IMMEDIATE`, so a due task is handed out once.

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use crate::alert_store::query::{ListingSql, SqlValue};
use crate::alert_store::{
    change_name, detector_state_clock, from_json, from_ms, id_range, lease_until, ms, to_i64,
    to_json, usize_col, AlertDetail, AlertFilter, AlertPage, AlertRow, AlertStore, AlertStoreError,
    Applied, ChangeSet, ClaimToken, ClaimedTask, Completion, Result, TaskRow, MIGRATION_TABLE,
};
use crate::alerts::audit::AuditRecord;
use crate::alerts::book::BookSnapshot;
use crate::alerts::kpi::Period;
use crate::alerts::lifecycle::{Alert, AlertId};
use crate::alerts::Timestamp;
use crate::escalation::EscalationTask;
use crate::ids::SiteId;
use crate::notify::webhook::{DeliveryId, DeliveryRecord};

mod embedded {
    refinery::embed_migrations!("migrations/alert_store/sqlite");
}

/// How long a writer waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const UPSERT_ALERT: &str = "\
INSERT INTO alert_record (id, site, subject, kind, severity, severity_rank, state, is_open,
    repeat_count, opened_at, last_seen_at, acknowledged_by, acknowledged_at, disposition,
    closed_at, closed_by, details, body)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
ON CONFLICT (id) DO UPDATE SET site = excluded.site, subject = excluded.subject,
    kind = excluded.kind, severity = excluded.severity, severity_rank = excluded.severity_rank,
    state = excluded.state, is_open = excluded.is_open, repeat_count = excluded.repeat_count,
    opened_at = excluded.opened_at, last_seen_at = excluded.last_seen_at,
    acknowledged_by = excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at,
    disposition = excluded.disposition, closed_at = excluded.closed_at,
    closed_by = excluded.closed_by, details = excluded.details, body = excluded.body
-- A closed alert is final: a stale writer must not reopen or re-close it.
WHERE alert_record.is_open";

/// Alerts, audit trail, escalation queue and delivery log in one SQLite file.
#[derive(Clone)]
pub struct SqliteAlertStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteAlertStore {
    /// Opens (or creates) the database file and brings the schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(AlertStoreError::SqliteSetup(format!(
                    "WAL journal mode refused (journal mode is {mode})"
                )));
            }
            conn.pragma_update(None, "foreign_keys", "ON")?;
            embedded::migrations::runner()
                .set_migration_table_name(MIGRATION_TABLE)
                .run(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| AlertStoreError::Worker(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| AlertStoreError::Worker("connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| AlertStoreError::Worker(e.to_string()))?
    }
}

fn open_conflict(e: rusqlite::Error) -> AlertStoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && msg.contains("alert_record.subject") =>
        {
            AlertStoreError::OpenAlertConflict(msg.clone())
        }
        _ => AlertStoreError::Sqlite(e),
    }
}

fn insert_audit(tx: &rusqlite::Transaction<'_>, records: &[AuditRecord]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO alert_audit (alert_id, site, kind, at, change, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in records {
        stmt.execute(params![
            to_i64("alert id", r.alert.0)?,
            r.site.to_string(),
            r.kind.as_str(),
            ms(r.at)?,
            change_name(&r.change),
            to_json("audit record", r)?,
        ])?;
    }
    Ok(())
}

fn json_rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    what: &'static str,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let texts = stmt
        .query_map(p, |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    texts.iter().map(|s| from_json(what, s)).collect()
}

fn value(v: &SqlValue) -> rusqlite::types::Value {
    match v {
        SqlValue::Text(s) => rusqlite::types::Value::Text(s.clone()),
        SqlValue::Int(i) => rusqlite::types::Value::Integer(*i),
        SqlValue::SmallInt(i) => rusqlite::types::Value::Integer(i64::from(*i)),
    }
}

impl AlertStore for SqliteAlertStore {
    async fn apply(&self, changes: &ChangeSet) -> Result<Applied> {
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        let changes = changes.clone();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut upsert = tx.prepare_cached(UPSERT_ALERT)?;
                for a in &changes.alerts {
                    let r = AlertRow::of(a)?;
                    let written = upsert
                        .execute(params![
                            r.id,
                            r.site,
                            r.subject,
                            r.kind,
                            r.severity,
                            r.severity_rank,
                            r.state,
                            r.is_open,
                            r.repeat_count,
                            r.opened_at,
                            r.last_seen_at,
                            r.acknowledged_by,
                            r.acknowledged_at,
                            r.disposition,
                            r.closed_at,
                            r.closed_by,
                            r.details,
                            r.body,
                        ])
                        .map_err(open_conflict)?;
                    if written == 0 {
                        return Err(AlertStoreError::AlertClosed(a.id));
                    }
                }
            }
            insert_audit(&tx, &changes.audit)?;
            let mut applied = Applied::default();
            for started in &changes.started {
                let r = TaskRow::of(&started.task)?;
                let inserted = tx.execute(
                    "INSERT INTO escalation_task (alert_id, site, tier, due_at, task)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (alert_id) DO NOTHING",
                    params![r.alert_id, r.site, r.tier, r.due_at, r.task],
                )?;
                if inserted == 1 {
                    insert_audit(&tx, &started.audit)?;
                    applied.notify.extend(started.notify.iter().cloned());
                }
            }
            for id in &changes.stopped {
                tx.execute(
                    "DELETE FROM escalation_task WHERE alert_id = ?1",
                    params![to_i64("alert id", id.0)?],
                )?;
            }
            tx.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn book_snapshot(&self) -> Result<BookSnapshot> {
        self.with_conn(|conn| {
            let open: Vec<Alert> = json_rows(
                conn,
                "alert",
                "SELECT body FROM alert_record WHERE is_open ORDER BY id",
                [],
            )?;
            Ok(BookSnapshot { open })
        })
        .await
    }

    async fn reserve_alert_ids(&self, count: u32) -> Result<Range<u64>> {
        if count == 0 {
            return Ok(0..0);
        }
        self.with_conn(move |conn| {
            // The write lock up front: another process on the file waits its turn.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (first, end): (i64, i64) = tx.query_row(
                "UPDATE alert_id_counter
                    SET next_id = max(next_id, (SELECT COALESCE(MAX(id), 0) + 1 FROM alert_record))
                                  + ?1
                 RETURNING next_id - ?1, next_id",
                params![i64::from(count)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.commit()?;
            id_range(first, end)
        })
        .await
    }

    async fn pending_escalations(&self) -> Result<Vec<EscalationTask>> {
        self.with_conn(|conn| {
            json_rows(
                conn,
                "escalation task",
                "SELECT task FROM escalation_task ORDER BY alert_id",
                [],
            )
        })
        .await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>> {
        let (now_ms, until) = (ms(now)?, lease_until(now, lease)?);
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let due: Vec<(i64, i64, i64, String)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT alert_id, tier, due_at, task FROM escalation_task
                      WHERE due_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1)
                      ORDER BY due_at, alert_id LIMIT ?2",
                )?;
                let rows = stmt
                    .query_map(params![now_ms, i64::from(limit)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                rows
            };
            let mut out = Vec::with_capacity(due.len());
            for (alert_id, tier, due_at, task) in due {
                let token: i64 = tx.query_row(
                    "UPDATE escalation_claim_counter SET last_token = last_token + 1
                     RETURNING last_token",
                    [],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE escalation_task SET claimed_until = ?2, claim_token = ?3
                      WHERE alert_id = ?1",
                    params![alert_id, until, token],
                )?;
                out.push(ClaimedTask {
                    tier: usize_col("escalation tier", tier)?,
                    due_at: from_ms("escalation due time", due_at)?,
                    lease_until: from_ms("lease", until)?,
                    token: ClaimToken(token),
                    task: from_json("escalation task", &task)?,
                });
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn complete(
        &self,
        claim: &ClaimedTask,
        task: &EscalationTask,
        audit: &[AuditRecord],
    ) -> Result<Completion> {
        let id = to_i64("alert id", claim.task.alert.0)?;
        let token = claim.token.0;
        let row = TaskRow::of(task)?;
        let audit = audit.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = if row.due_at.is_some() {
                tx.execute(
                    "UPDATE escalation_task SET tier = ?3, due_at = ?4, task = ?5,
                            claimed_until = NULL, claim_token = NULL
                      WHERE alert_id = ?1 AND claim_token = ?2",
                    params![id, token, row.tier, row.due_at, row.task],
                )?
            } else {
                tx.execute(
                    "DELETE FROM escalation_task WHERE alert_id = ?1 AND claim_token = ?2",
                    params![id, token],
                )?
            };
            if changed == 0 {
                return Ok(Completion::Superseded);
            }
            insert_audit(&tx, &audit)?;
            tx.commit()?;
            Ok(Completion::Completed)
        })
        .await
    }

    async fn save_detector_states(&self, states: &[(String, String)]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let states = states.to_vec();
        let now = detector_state_clock();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO detector_state (key, state, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET state = excluded.state,
                         updated_at = excluded.updated_at",
                )?;
                for (key, state) in &states {
                    stmt.execute(params![key, state, now])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn detector_states(&self) -> Result<Vec<(String, String)>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare("SELECT key, state FROM detector_state ORDER BY key")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn append_deliveries(&self, records: &[DeliveryRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for r in &records {
                tx.execute(
                    "INSERT INTO webhook_delivery (delivery_id, endpoint, event, attempt, at, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        to_i64("delivery id", r.delivery.0)?,
                        r.endpoint,
                        r.event,
                        i64::from(r.attempt),
                        ms(r.at)?,
                        to_json("delivery record", r)?,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn deliveries(&self, delivery: DeliveryId) -> Result<Vec<DeliveryRecord>> {
        let id = to_i64("delivery id", delivery.0)?;
        self.with_conn(move |conn| {
            json_rows(
                conn,
                "delivery record",
                "SELECT record FROM webhook_delivery WHERE delivery_id = ?1 ORDER BY seq",
                params![id],
            )
        })
        .await
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<AlertPage> {
        let q = ListingSql::build(filter, '?')?;
        self.with_conn(move |conn| {
            let values: Vec<rusqlite::types::Value> = q.params.iter().map(value).collect();
            let alerts: Vec<Alert> = json_rows(
                conn,
                "alert",
                &q.page_sql("body"),
                params_from_iter(values.iter()),
            )?;
            let total: i64 =
                conn.query_row(&q.count_sql(), params_from_iter(values.iter()), |r| {
                    r.get(0)
                })?;
            Ok(AlertPage {
                alerts,
                total: total.unsigned_abs(),
            })
        })
        .await
    }

    async fn alert_detail(&self, id: AlertId) -> Result<Option<AlertDetail>> {
        let id = to_i64("alert id", id.0)?;
        self.with_conn(move |conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM alert_record WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(body) = body else {
                return Ok(None);
            };
            let trail = json_rows(
                conn,
                "audit record",
                "SELECT record FROM alert_audit WHERE alert_id = ?1 ORDER BY seq",
                params![id],
            )?;
            Ok(Some(AlertDetail {
                alert: from_json("alert", &body)?,
                trail,
            }))
        })
        .await
    }

    async fn kpi_records(&self, site: &SiteId, period: Period) -> Result<Vec<AuditRecord>> {
        let (site, from, until) = (site.to_string(), ms(period.from)?, ms(period.until)?);
        self.with_conn(move |conn| {
            json_rows(
                conn,
                "audit record",
                "SELECT record FROM alert_audit WHERE alert_id IN (
                     SELECT alert_id FROM alert_audit
                      WHERE site = ?1 AND change = 'raised' AND at >= ?2 AND at < ?3)
                  ORDER BY seq",
                params![site, from, until],
            )
        })
        .await
    }

    async fn kpi_records_of_sites(
        &self,
        sites: Option<&[SiteId]>,
        period: Period,
    ) -> Result<Vec<AuditRecord>> {
        let (from, until) = (ms(period.from)?, ms(period.until)?);
        let sites: Option<Vec<String>> = sites.map(|s| s.iter().map(|s| s.to_string()).collect());
        let sites = sites.map(|s| to_json("site list", &s)).transpose()?;
        self.with_conn(move |conn| match sites {
            // One parameter however many sites: the list travels as a JSON array.
            Some(sites) => json_rows(
                conn,
                "audit record",
                "SELECT record FROM alert_audit WHERE alert_id IN (
                     SELECT alert_id FROM alert_audit
                      WHERE change = 'raised' AND at >= ?1 AND at < ?2
                        AND site IN (SELECT value FROM json_each(?3)))
                  ORDER BY seq",
                params![from, until, sites],
            ),
            None => json_rows(
                conn,
                "audit record",
                "SELECT record FROM alert_audit WHERE alert_id IN (
                     SELECT alert_id FROM alert_audit
                      WHERE change = 'raised' AND at >= ?1 AND at < ?2)
                  ORDER BY seq",
                params![from, until],
            ),
        })
        .await
    }
}
