//! The registry on PostgreSQL (`tokio-postgres` through a `deadpool-postgres` pool).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::store::{EntityKind, PageRequest, Record, RegistryStore, SiteFilter, StoreError};
use crate::auth::{Role, Session, SiteScope, StoredUser};

mod embedded {
    refinery::embed_migrations!("migrations/registry/postgres");
}

pub use super::sqlite::MIGRATION_TABLE;

/// Connections the registry pool opens at most.
pub const POOL_SIZE: usize = 8;

#[derive(Clone)]
pub struct PostgresRegistry {
    pool: Pool,
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresRegistry")
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_err(e: tokio_postgres::Error, kind: &'static str, id: &str) -> StoreError {
    if let Some(code) = e.code() {
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::AlreadyExists {
                kind,
                id: id.to_owned(),
            };
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::Integrity(format!(
                "{kind} {id:?} refers to something missing, or is still referred to"
            ));
        }
    }
    if e.is_closed() {
        return StoreError::Unavailable(e.to_string());
    }
    backend(e)
}

fn plain(e: tokio_postgres::Error) -> StoreError {
    map_err(e, "row", "")
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl PostgresRegistry {
    /// Connects to `url`; with `schema`, every connection works in that schema (created if
    /// missing), which is how the tests keep apart. Applies the registry migrations.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("bad database URL: {e}")))?;
        if let Some(schema) = schema {
            if !vigil_protocol::ids::is_valid_id(schema) || schema.contains(['.', '-']) {
                return Err(StoreError::Backend(format!("bad schema name {schema:?}")));
            }
            let (client, conn) = config
                .connect(NoTls)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let driver = tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await
                .map_err(plain)?;
            drop(client);
            let _ = driver.await;
            config.options(format!("-c search_path=\"{schema}\""));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(backend)?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (shared with the telemetry store) and applies the registry
    /// migrations.
    pub async fn from_pool(pool: Pool) -> Result<Self, StoreError> {
        let me = Self { pool };
        me.migrate().await?;
        Ok(me)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut obj = self.pool.get().await.map_err(pool_err)?;
        // Several server instances may start together: one migrates, the others wait.
        obj.batch_execute("SELECT pg_advisory_lock(hashtext('vigil_registry_migrations'))")
            .await
            .map_err(plain)?;
        let client: &mut tokio_postgres::Client = &mut obj;
        let result = embedded::migrations::runner()
            .set_migration_table_name(MIGRATION_TABLE)
            .run_async(client)
            .await;
        obj.batch_execute("SELECT pg_advisory_unlock(hashtext('vigil_registry_migrations'))")
            .await
            .map_err(plain)?;
        result
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("registry migrations failed: {e}")))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

async fn insert_record(c: &Transaction<'_>, r: &Record) -> Result<(), StoreError> {
    let cols = Record::key_columns(r.kind);
    let mut names = vec!["id"];
    names.extend_from_slice(cols);
    names.push("doc");
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        r.kind.table(),
        names.join(", "),
        placeholders.join(", ")
    );
    let keys = r.key_values();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&r.id];
    for k in &keys {
        params.push(k);
    }
    params.push(&r.doc);
    c.execute(&sql, &params)
        .await
        .map_err(|e| map_err(e, r.kind.singular(), &r.id))?;
    write_responder_sites(c, r).await
}

async fn write_responder_sites(c: &Transaction<'_>, r: &Record) -> Result<(), StoreError> {
    if r.kind != EntityKind::Responder {
        return Ok(());
    }
    c.execute(
        "DELETE FROM responder_sites WHERE responder_id = $1",
        &[&r.id],
    )
    .await
    .map_err(plain)?;
    c.execute(
        "INSERT INTO responder_sites (responder_id, site_id) SELECT $1, unnest($2::text[])",
        &[&r.id, &r.sites],
    )
    .await
    .map_err(|e| map_err(e, "responder", &r.id))?;
    Ok(())
}

fn user_from_row(row: &Row) -> Result<StoredUser, StoreError> {
    let role: String = row.get(1);
    let scope: serde_json::Value = row.get(2);
    Ok(StoredUser {
        username: row.get(0),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        scope: serde_json::from_value::<SiteScope>(scope)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: row.get(3),
        created_at: row.get(4),
    })
}

#[async_trait]
impl RegistryStore for PostgresRegistry {
    async fn insert(&self, record: &Record) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(plain)?;
        insert_record(&tx, record).await?;
        tx.commit().await.map_err(plain)
    }

    async fn update(&self, r: &Record) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(plain)?;
        let cols = Record::key_columns(r.kind);
        let mut sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        sets.push(format!("doc = ${}", cols.len() + 2));
        let sql = format!(
            "UPDATE {} SET {} WHERE id = $1",
            r.kind.table(),
            sets.join(", ")
        );
        let keys = r.key_values();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&r.id];
        for k in &keys {
            params.push(k);
        }
        params.push(&r.doc);
        let n = tx
            .execute(&sql, &params)
            .await
            .map_err(|e| map_err(e, r.kind.singular(), &r.id))?;
        if n == 0 {
            return Ok(false);
        }
        write_responder_sites(&tx, r).await?;
        tx.commit().await.map_err(plain)?;
        Ok(true)
    }

    async fn get(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let c = self.client().await?;
        let sql = format!("SELECT doc FROM {} WHERE id = $1", kind.table());
        let row = c.query_opt(&sql, &[&id]).await.map_err(plain)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let sql = format!("DELETE FROM {} WHERE id = $1", kind.table());
        let n = c
            .execute(&sql, &[&id])
            .await
            .map_err(|e| map_err(e, kind.singular(), id))?;
        Ok(n > 0)
    }

    async fn list(
        &self,
        kind: EntityKind,
        filter: &SiteFilter,
        page: &PageRequest,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let c = self.client().await?;
        let after = page.after.clone().unwrap_or_default();
        let limit = i64::from(page.limit);
        let rows = match filter {
            SiteFilter::All => {
                let sql = format!(
                    "SELECT doc FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
                    kind.table()
                );
                c.query(&sql, &[&after, &limit]).await
            }
            SiteFilter::Only(sites) => {
                let sql = format!(
                    "SELECT doc FROM {} WHERE id > $1 AND {} ORDER BY id LIMIT $2",
                    kind.table(),
                    Record::scope_condition(kind, "= ANY($3)")
                );
                c.query(&sql, &[&after, &limit, sites]).await
            }
        }
        .map_err(plain)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn shifts_of_site(&self, site: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT doc FROM shifts WHERE site_id = $1 ORDER BY id",
                &[&site],
            )
            .await
            .map_err(plain)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn import(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(plain)?;
        for r in records {
            insert_record(&tx, r).await?;
        }
        tx.commit().await.map_err(plain)
    }

    async fn insert_user(&self, u: &StoredUser) -> Result<(), StoreError> {
        let c = self.client().await?;
        let scope = serde_json::to_value(&u.scope).map_err(backend)?;
        c.execute(
            "INSERT INTO users (username, role, scope, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &u.username,
                &u.role.as_str(),
                &scope,
                &u.password_hash,
                &u.created_at,
            ],
        )
        .await
        .map_err(|e| map_err(e, "user", &u.username))?;
        Ok(())
    }

    async fn get_user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT username, role, scope, password_hash, created_at FROM users \
                 WHERE username = $1",
                &[&username],
            )
            .await
            .map_err(plain)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT username, role, scope, password_hash, created_at FROM users \
                 ORDER BY username",
                &[],
            )
            .await
            .map_err(plain)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM users WHERE username = $1", &[&username])
            .await
            .map_err(plain)?;
        Ok(n > 0)
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[])
            .await
            .map_err(plain)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO sessions (token_hash, username, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
            &[&s.token_hash, &s.username, &s.created_at, &s.expires_at],
        )
        .await
        .map_err(|e| map_err(e, "session", "…"))?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT token_hash, username, created_at, expires_at FROM sessions \
                 WHERE token_hash = $1",
                &[&token_hash],
            )
            .await
            .map_err(plain)?;
        Ok(row.map(|r| Session {
            token_hash: r.get(0),
            username: r.get(1),
            created_at: r.get(2),
            expires_at: r.get(3),
        }))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map_err(plain)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let c = self.client().await?;
        c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
            .await
            .map_err(plain)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.query_one("SELECT 1", &[])
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}
