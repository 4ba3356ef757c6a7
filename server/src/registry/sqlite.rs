//! The registry on embedded SQLite (`rusqlite`, bundled): one connection behind a mutex, used
//! from blocking threads. Registry traffic is small; serialising it costs nothing that matters.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::store::{EntityKind, PageRequest, Record, RegistryStore, SiteFilter, StoreError};
use crate::auth::{Role, Session, SiteScope, StoredUser};

mod embedded {
    refinery::embed_migrations!("migrations/registry/sqlite");
}

/// Table refinery records the registry's applied migrations in, apart from other modules'.
pub const MIGRATION_TABLE: &str = "vigil_registry_migrations";

#[derive(Clone)]
pub struct SqliteRegistry {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteRegistry")
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn map_write_err(e: rusqlite::Error, kind: &'static str, id: &str) -> StoreError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                return StoreError::AlreadyExists {
                    kind,
                    id: id.to_owned(),
                };
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return StoreError::Integrity(format!(
                    "{kind} {id:?} refers to something missing, or is still referred to"
                ));
            }
            _ => {}
        }
        if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ) {
            return StoreError::Unavailable(msg.clone().unwrap_or_else(|| e.to_string()));
        }
    }
    backend(e)
}

fn first_text(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

fn decode(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn role_from(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s:?}")))
}

fn insert_record(tx: &Connection, r: &Record) -> Result<(), StoreError> {
    let cols = Record::key_columns(r.kind);
    let mut names = vec!["id"];
    names.extend_from_slice(cols);
    names.push("doc");
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        r.kind.table(),
        names.join(", "),
        placeholders.join(", ")
    );
    let doc = r.doc.to_string();
    let mut values: Vec<Option<&str>> = vec![Some(&r.id)];
    values.extend(r.key_values());
    values.push(Some(&doc));
    tx.execute(&sql, rusqlite::params_from_iter(values))
        .map_err(|e| map_write_err(e, r.kind.singular(), &r.id))?;
    write_responder_sites(tx, r)
}

fn write_responder_sites(tx: &Connection, r: &Record) -> Result<(), StoreError> {
    if r.kind != EntityKind::Responder {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM responder_sites WHERE responder_id = ?1",
        params![r.id],
    )
    .map_err(backend)?;
    for site in &r.sites {
        tx.execute(
            "INSERT INTO responder_sites (responder_id, site_id) VALUES (?1, ?2)",
            params![r.id, site],
        )
        .map_err(|e| map_write_err(e, "responder", &r.id))?;
    }
    Ok(())
}

impl SqliteRegistry {
    /// Opens (creating if needed) the database file, in WAL mode, and applies migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(backend)?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, demos).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        embedded::migrations::runner()
            .set_migration_table_name(MIGRATION_TABLE)
            .run(&mut conn)
            .map_err(|e| StoreError::Backend(format!("registry migrations failed: {e}")))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

#[async_trait]
impl RegistryStore for SqliteRegistry {
    async fn insert(&self, record: &Record) -> Result<(), StoreError> {
        let r = record.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            insert_record(&tx, &r)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn update(&self, record: &Record) -> Result<bool, StoreError> {
        let r = record.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let cols = Record::key_columns(r.kind);
            let mut sets: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ?{}", i + 2))
                .collect();
            sets.push(format!("doc = ?{}", cols.len() + 2));
            let sql = format!(
                "UPDATE {} SET {} WHERE id = ?1",
                r.kind.table(),
                sets.join(", ")
            );
            let doc = r.doc.to_string();
            let mut values: Vec<Option<&str>> = vec![Some(&r.id)];
            values.extend(r.key_values());
            values.push(Some(&doc));
            let n = tx
                .execute(&sql, rusqlite::params_from_iter(values))
                .map_err(|e| map_write_err(e, r.kind.singular(), &r.id))?;
            if n == 0 {
                return Ok(false);
            }
            write_responder_sites(&tx, &r)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn get(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            let sql = format!("SELECT doc FROM {} WHERE id = ?1", kind.table());
            let doc: Option<String> = c
                .query_row(&sql, params![id], |row| row.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| decode(&d)).transpose()
        })
        .await
    }

    async fn delete(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |c| {
            let sql = format!("DELETE FROM {} WHERE id = ?1", kind.table());
            let n = c
                .execute(&sql, params![id])
                .map_err(|e| map_write_err(e, kind.singular(), &id))?;
            Ok(n > 0)
        })
        .await
    }

    async fn list(
        &self,
        kind: EntityKind,
        filter: &SiteFilter,
        page: &PageRequest,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let filter = filter.clone();
        let page = page.clone();
        self.with(move |c| {
            let mut conds = vec!["id > ?1".to_owned()];
            let scope_json = match &filter {
                SiteFilter::All => None,
                SiteFilter::Only(sites) => {
                    conds.push(Record::scope_condition(
                        kind,
                        "IN (SELECT value FROM json_each(?3))",
                    ));
                    Some(serde_json::to_string(sites).map_err(backend)?)
                }
            };
            let sql = format!(
                "SELECT doc FROM {} WHERE {} ORDER BY id LIMIT ?2",
                kind.table(),
                conds.join(" AND ")
            );
            let after = page.after.clone().unwrap_or_default();
            let mut stmt = c.prepare(&sql).map_err(backend)?;
            let rows: Vec<String> = match &scope_json {
                None => stmt.query_map(params![after, page.limit], first_text),
                Some(s) => stmt.query_map(params![after, page.limit, s], first_text),
            }
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
            rows.iter().map(|d| decode(d)).collect()
        })
        .await
    }

    async fn shifts_of_site(&self, site: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let site = site.to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare("SELECT doc FROM shifts WHERE site_id = ?1 ORDER BY id")
                .map_err(backend)?;
            let rows: Vec<String> = stmt
                .query_map(params![site], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            rows.iter().map(|d| decode(d)).collect()
        })
        .await
    }

    async fn import(&self, records: &[Record]) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for r in &records {
                insert_record(&tx, r)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn insert_user(&self, user: &StoredUser) -> Result<(), StoreError> {
        let u = user.clone();
        self.with(move |c| {
            let scope = serde_json::to_string(&u.scope).map_err(backend)?;
            c.execute(
                "INSERT INTO users (username, role, scope, password_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    u.username,
                    u.role.as_str(),
                    scope,
                    u.password_hash,
                    u.created_at
                ],
            )
            .map_err(|e| map_write_err(e, "user", &u.username))?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        let name = username.to_owned();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT username, role, scope, password_hash, created_at FROM users \
                     WHERE username = ?1",
                    params![name],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, DateTime<Utc>>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            row.map(user_from_row).transpose()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT username, role, scope, password_hash, created_at FROM users \
                     ORDER BY username",
                )
                .map_err(backend)?;
            let rows: Vec<(String, String, String, String, DateTime<Utc>)> = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            rows.into_iter().map(user_from_row).collect()
        })
        .await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let name = username.to_owned();
        self.with(move |c| {
            let n = c
                .execute("DELETE FROM users WHERE username = ?1", params![name])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(backend)
        })
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let s = session.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, username, created_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    s.token_hash,
                    s.username,
                    s.created_at.timestamp_millis(),
                    s.expires_at.timestamp_millis()
                ],
            )
            .map_err(|e| map_write_err(e, "session", "…"))?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let h = token_hash.to_owned();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT token_hash, username, created_at_ms, expires_at_ms FROM sessions \
                     WHERE token_hash = ?1",
                    params![h],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            row.map(|(token_hash, username, c_ms, e_ms)| {
                let at = |ms: i64| {
                    DateTime::from_timestamp_millis(ms)
                        .ok_or_else(|| StoreError::Corrupt(format!("session time {ms}")))
                };
                Ok(Session {
                    token_hash,
                    username,
                    created_at: at(c_ms)?,
                    expires_at: at(e_ms)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let h = token_hash.to_owned();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", params![h])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM sessions WHERE expires_at_ms <= ?1",
                    params![now.timestamp_millis()],
                )
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
    }
}

fn user_from_row(
    (username, role, scope, password_hash, created_at): (
        String,
        String,
        String,
        String,
        DateTime<Utc>,
    ),
) -> Result<StoredUser, StoreError> {
    let scope: SiteScope =
        serde_json::from_str(&scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(StoredUser {
        username,
        role: role_from(&role)?,
        scope,
        password_hash,
        created_at,
    })
}
