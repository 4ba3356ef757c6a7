//! The PostgreSQL backend: tokio-postgres over a deadpool pool.

use std::ops::Range;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

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
    refinery::embed_migrations!("migrations/alert_store/postgres");
}

/// Serialises concurrent migrations of several instances (`pg_advisory_lock` key).
const MIGRATION_LOCK: i64 = 0x7669_6769_6c5f_616c; // "vigil_al"

const UPSERT_ALERT: &str = "\
INSERT INTO alert_record (id, site, subject, kind, severity, severity_rank, state, is_open,
    repeat_count, opened_at, last_seen_at, acknowledged_by, acknowledged_at, disposition,
    closed_at, closed_by, details, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
    $17::text::jsonb, $18::text::jsonb)
ON CONFLICT (id) DO UPDATE SET site = EXCLUDED.site, subject = EXCLUDED.subject,
    kind = EXCLUDED.kind, severity = EXCLUDED.severity, severity_rank = EXCLUDED.severity_rank,
    state = EXCLUDED.state, is_open = EXCLUDED.is_open, repeat_count = EXCLUDED.repeat_count,
    opened_at = EXCLUDED.opened_at, last_seen_at = EXCLUDED.last_seen_at,
    acknowledged_by = EXCLUDED.acknowledged_by, acknowledged_at = EXCLUDED.acknowledged_at,
    disposition = EXCLUDED.disposition, closed_at = EXCLUDED.closed_at,
    closed_by = EXCLUDED.closed_by, details = EXCLUDED.details, body = EXCLUDED.body
-- A closed alert is final: a stale writer must not reopen or re-close it.
WHERE alert_record.is_open";

const INSERT_AUDIT: &str = "\
INSERT INTO alert_audit (alert_id, site, kind, at, change, record)
VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)";

const START_TASK: &str = "\
INSERT INTO escalation_task (alert_id, site, tier, due_at, task)
VALUES ($1, $2, $3, $4, $5::text::jsonb) ON CONFLICT (alert_id) DO NOTHING";

// Design: one statement claims and leases; the row lock taken by FOR UPDATE is held only for
// it, and the lease (claimed_until) keeps the row away from other claimers afterwards. Under
// READ COMMITTED a row another claimer leased meanwhile is re-checked and skipped.
const CLAIM_DUE: &str = "\
WITH due AS (
    SELECT alert_id FROM escalation_task
     WHERE due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
     ORDER BY due_at, alert_id LIMIT $2
     FOR UPDATE SKIP LOCKED)
UPDATE escalation_task t
   SET claimed_until = $3, claim_token = nextval('escalation_claim_token')
  FROM due WHERE t.alert_id = due.alert_id
RETURNING t.tier, t.due_at, t.claim_token, t.task::text";

// Design: the row lock of the UPDATE serialises reservations; a waiting one re-reads the row
// (READ COMMITTED) and starts where the one before it ended. Starting above the stored alerts
// as well keeps the counter right even if alerts were written with ids it did not hand out.
const RESERVE_IDS: &str = "\
UPDATE alert_id_counter
   SET next_id = GREATEST(next_id, (SELECT COALESCE(MAX(id), 0) + 1 FROM alert_record)) + $1
RETURNING next_id - $1, next_id";

/// Alerts, audit trail, escalation queue and delivery log in PostgreSQL.
#[derive(Clone)]
pub struct PgAlertStore {
    pool: Pool,
}

impl PgAlertStore {
    /// Opens a pool of `max_connections` on `config` and brings the schema up to date.
    /// Set the schema with `config.options("-c search_path=…")`.
    pub async fn connect(config: tokio_postgres::Config, max_connections: usize) -> Result<Self> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(|e| AlertStoreError::PoolSetup(e.to_string()))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the pending migrations; instances starting together take turns.
    pub async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let ran = embedded::migrations::runner()
            .set_migration_table_name(MIGRATION_TABLE)
            .run_async(client)
            .await;
        conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        ran?;
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

fn open_conflict(e: tokio_postgres::Error) -> AlertStoreError {
    let unique = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
    match e.as_db_error() {
        Some(db) if unique && db.constraint() == Some("alert_record_one_open") => {
            AlertStoreError::OpenAlertConflict(db.detail().unwrap_or(db.message()).to_owned())
        }
        Some(_) | None => AlertStoreError::Postgres(e),
    }
}

async fn insert_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(INSERT_AUDIT).await?;
    for r in records {
        let alert = to_i64("alert id", r.alert.0)?;
        let site = r.site.to_string();
        let at = ms(r.at)?;
        let record = to_json("audit record", r)?;
        tx.execute(
            &stmt,
            &[
                &alert,
                &site,
                &r.kind.as_str(),
                &at,
                &change_name(&r.change),
                &record,
            ],
        )
        .await?;
    }
    Ok(())
}

fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| -> &(dyn ToSql + Sync) {
            match v {
                SqlValue::Text(s) => s,
                SqlValue::Int(i) => i,
                SqlValue::SmallInt(i) => i,
            }
        })
        .collect()
}

impl AlertStore for PgAlertStore {
    async fn apply(&self, changes: &ChangeSet) -> Result<Applied> {
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        if !changes.alerts.is_empty() {
            let stmt = tx.prepare_cached(UPSERT_ALERT).await?;
            for a in &changes.alerts {
                let r = AlertRow::of(a)?;
                let written = tx
                    .execute(
                        &stmt,
                        &[
                            &r.id,
                            &r.site,
                            &r.subject,
                            &r.kind,
                            &r.severity,
                            &r.severity_rank,
                            &r.state,
                            &r.is_open,
                            &r.repeat_count,
                            &r.opened_at,
                            &r.last_seen_at,
                            &r.acknowledged_by,
                            &r.acknowledged_at,
                            &r.disposition,
                            &r.closed_at,
                            &r.closed_by,
                            &r.details,
                            &r.body,
                        ],
                    )
                    .await
                    .map_err(open_conflict)?;
                if written == 0 {
                    return Err(AlertStoreError::AlertClosed(a.id));
                }
            }
        }
        insert_audit(&tx, &changes.audit).await?;
        let mut applied = Applied::default();
        for started in &changes.started {
            let r = TaskRow::of(&started.task)?;
            let inserted = tx
                .execute(
                    START_TASK,
                    &[&r.alert_id, &r.site, &r.tier, &r.due_at, &r.task],
                )
                .await?;
            if inserted == 1 {
                insert_audit(&tx, &started.audit).await?;
                applied.notify.extend(started.notify.iter().cloned());
            }
        }
        for id in &changes.stopped {
            let id = to_i64("alert id", id.0)?;
            tx.execute("DELETE FROM escalation_task WHERE alert_id = $1", &[&id])
                .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn book_snapshot(&self) -> Result<BookSnapshot> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT body::text FROM alert_record WHERE is_open ORDER BY id",
                &[],
            )
            .await?;
        let open = rows
            .iter()
            .map(|r| from_json::<Alert>("alert", r.get(0)))
            .collect::<Result<Vec<_>>>()?;
        Ok(BookSnapshot { open })
    }

    async fn reserve_alert_ids(&self, count: u32) -> Result<Range<u64>> {
        if count == 0 {
            return Ok(0..0);
        }
        let conn = self.pool.get().await?;
        let row = conn.query_one(RESERVE_IDS, &[&i64::from(count)]).await?;
        id_range(row.get(0), row.get(1))
    }

    async fn pending_escalations(&self) -> Result<Vec<EscalationTask>> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT task::text FROM escalation_task ORDER BY alert_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| from_json("escalation task", r.get(0)))
            .collect()
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>> {
        let conn = self.pool.get().await?;
        let (now_ms, until) = (ms(now)?, lease_until(now, lease)?);
        let rows = conn
            .query(CLAIM_DUE, &[&now_ms, &i64::from(limit), &until])
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let tier: Option<i64> = r.get(0);
            let due: Option<i64> = r.get(1);
            // The WHERE clause only matches rows with a due time, and both are set together.
            let (Some(tier), Some(due)) = (tier, due) else {
                return Err(AlertStoreError::InvalidColumn {
                    what: "escalation tier",
                    found: -1,
                });
            };
            out.push(ClaimedTask {
                tier: usize_col("escalation tier", tier)?,
                due_at: from_ms("escalation due time", due)?,
                lease_until: from_ms("lease", until)?,
                token: ClaimToken(r.get(2)),
                task: from_json("escalation task", r.get(3))?,
            });
        }
        out.sort_by_key(|c| (c.due_at, c.task.alert));
        Ok(out)
    }

    async fn complete(
        &self,
        claim: &ClaimedTask,
        task: &EscalationTask,
        audit: &[AuditRecord],
    ) -> Result<Completion> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let id = to_i64("alert id", claim.task.alert.0)?;
        let row = TaskRow::of(task)?;
        let changed = if row.due_at.is_some() {
            tx.execute(
                "UPDATE escalation_task SET tier = $3, due_at = $4, task = $5::text::jsonb,
                        claimed_until = NULL, claim_token = NULL
                  WHERE alert_id = $1 AND claim_token = $2",
                &[&id, &claim.token.0, &row.tier, &row.due_at, &row.task],
            )
            .await?
        } else {
            tx.execute(
                "DELETE FROM escalation_task WHERE alert_id = $1 AND claim_token = $2",
                &[&id, &claim.token.0],
            )
            .await?
        };
        if changed == 0 {
            tx.rollback().await?;
            return Ok(Completion::Superseded);
        }
        insert_audit(&tx, audit).await?;
        tx.commit().await?;
        Ok(Completion::Completed)
    }

    async fn save_detector_states(&self, states: &[(String, String)]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let now = detector_state_clock();
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        let stmt = tx
            .prepare(
                "INSERT INTO detector_state (key, state, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET state = excluded.state,
                     updated_at = excluded.updated_at",
            )
            .await?;
        for (key, state) in states {
            tx.execute(&stmt, &[key, state, &now]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn detector_states(&self) -> Result<Vec<(String, String)>> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query("SELECT key, state FROM detector_state ORDER BY key", &[])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn append_deliveries(&self, records: &[DeliveryRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        for r in records {
            let delivery = to_i64("delivery id", r.delivery.0)?;
            let attempt = i64::from(r.attempt);
            let at = ms(r.at)?;
            let record = to_json("delivery record", r)?;
            tx.execute(
                "INSERT INTO webhook_delivery (delivery_id, endpoint, event, attempt, at, record)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)",
                &[&delivery, &r.endpoint, &r.event, &attempt, &at, &record],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries(&self, delivery: DeliveryId) -> Result<Vec<DeliveryRecord>> {
        let conn = self.pool.get().await?;
        let id = to_i64("delivery id", delivery.0)?;
        let rows = conn
            .query(
                "SELECT record::text FROM webhook_delivery WHERE delivery_id = $1 ORDER BY seq",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| from_json("delivery record", r.get(0)))
            .collect()
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<AlertPage> {
        let q = ListingSql::build(filter, '$')?;
        let conn = self.pool.get().await?;
        let p = params(&q.params);
        let rows = conn.query(&q.page_sql("body::text"), &p).await?;
        let alerts = rows
            .iter()
            .map(|r| from_json::<Alert>("alert", r.get(0)))
            .collect::<Result<Vec<_>>>()?;
        let total: i64 = conn.query_one(&q.count_sql(), &p).await?.get(0);
        Ok(AlertPage {
            alerts,
            total: total.unsigned_abs(),
        })
    }

    async fn alert_detail(&self, id: AlertId) -> Result<Option<AlertDetail>> {
        let conn = self.pool.get().await?;
        let id = to_i64("alert id", id.0)?;
        let Some(row) = conn
            .query_opt("SELECT body::text FROM alert_record WHERE id = $1", &[&id])
            .await?
        else {
            return Ok(None);
        };
        let alert = from_json("alert", row.get(0))?;
        let trail = conn
            .query(
                "SELECT record::text FROM alert_audit WHERE alert_id = $1 ORDER BY seq",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| from_json("audit record", r.get(0)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(AlertDetail { alert, trail }))
    }

    async fn kpi_records(&self, site: &SiteId, period: Period) -> Result<Vec<AuditRecord>> {
        let conn = self.pool.get().await?;
        let (site, from, until) = (site.to_string(), ms(period.from)?, ms(period.until)?);
        let rows = conn
            .query(
                "SELECT record::text FROM alert_audit WHERE alert_id IN (
                     SELECT alert_id FROM alert_audit
                      WHERE site = $1 AND change = 'raised' AND at >= $2 AND at < $3)
                  ORDER BY seq",
                &[&site, &from, &until],
            )
            .await?;
        rows.iter()
            .map(|r| from_json("audit record", r.get(0)))
            .collect()
    }

    async fn kpi_records_of_sites(
        &self,
        sites: Option<&[SiteId]>,
        period: Period,
    ) -> Result<Vec<AuditRecord>> {
        let conn = self.pool.get().await?;
        let (from, until) = (ms(period.from)?, ms(period.until)?);
        let rows = match sites {
            Some(sites) => {
                let sites: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
                conn.query(
                    "SELECT record::text FROM alert_audit WHERE alert_id IN (
                         SELECT alert_id FROM alert_audit
                          WHERE change = 'raised' AND at >= $1 AND at < $2
                            AND site = ANY($3))
                      ORDER BY seq",
                    &[&from, &until, &sites],
                )
                .await?
            }
            None => {
                conn.query(
                    "SELECT record::text FROM alert_audit WHERE alert_id IN (
                         SELECT alert_id FROM alert_audit
                          WHERE change = 'raised' AND at >= $1 AND at < $2)
                      ORDER BY seq",
                    &[&from, &until],
                )
                .await?
            }
        };
        rows.iter()
            .map(|r| from_json("audit record", r.get(0)))
            .collect()
    }
}
