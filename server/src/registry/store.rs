//! The storage contract of the registry, implemented by the PostgreSQL and SQLite backends.
//!
//! Design: every entity is one row with its relational keys as real columns (id, site, the
//! resident or responder it points to) under foreign keys, plus the whole entity as a JSON
//! document. The database enforces integrity and scoping works in SQL; the nested parts
//! (contacts, channels, schedules) need no tables of their own and both backends share one
//! generic implementation instead of six hand-written mappings each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::{Session, StoredUser};

/// The kinds of registry entity, in the order an import inserts them (dependencies first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    /// District-wide: belongs to no site; sites refer to it.
    EscalationPolicy,
    Site,
    Resident,
    Responder,
    Device,
    Gateway,
    Shift,
}

impl EntityKind {
    pub const ALL: [EntityKind; 7] = [
        Self::EscalationPolicy,
        Self::Site,
        Self::Resident,
        Self::Responder,
        Self::Device,
        Self::Gateway,
        Self::Shift,
    ];

    /// The table, also the plural used in URLs and import files.
    pub fn table(self) -> &'static str {
        match self {
            Self::EscalationPolicy => "escalation_policies",
            Self::Site => "sites",
            Self::Resident => "residents",
            Self::Responder => "responders",
            Self::Device => "devices",
            Self::Gateway => "gateways",
            Self::Shift => "shifts",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            Self::EscalationPolicy => "escalation policy",
            Self::Site => "site",
            Self::Resident => "resident",
            Self::Responder => "responder",
            Self::Device => "device",
            Self::Gateway => "gateway",
            Self::Shift => "shift",
        }
    }

    pub fn from_table(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.table() == s)
    }
}

/// One stored entity: its keys as columns and the entity itself as a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: EntityKind,
    pub id: String,
    /// The sites this entity belongs to: its own id for a site, the covered sites for a
    /// responder, the one site for everything else.
    pub sites: Vec<String>,
    /// The resident a device belongs to.
    pub resident_id: Option<String>,
    /// The responder a shift rosters.
    pub responder_id: Option<String>,
    pub doc: serde_json::Value,
}

impl Record {
    /// The key columns of the kind's table besides `id` and `doc`, in a fixed order.
    pub fn key_columns(kind: EntityKind) -> &'static [&'static str] {
        match kind {
            EntityKind::EscalationPolicy | EntityKind::Site | EntityKind::Responder => &[],
            EntityKind::Resident | EntityKind::Gateway => &["site_id"],
            EntityKind::Device => &["site_id", "resident_id"],
            EntityKind::Shift => &["site_id", "responder_id"],
        }
    }

    /// Values for [`Record::key_columns`], in the same order.
    pub fn key_values(&self) -> Vec<Option<&str>> {
        match self.kind {
            EntityKind::EscalationPolicy | EntityKind::Site | EntityKind::Responder => Vec::new(),
            EntityKind::Resident | EntityKind::Gateway => vec![self.site_column()],
            EntityKind::Device => vec![self.site_column(), self.resident_id.as_deref()],
            EntityKind::Shift => vec![self.site_column(), self.responder_id.as_deref()],
        }
    }

    /// The SQL condition restricting `kind` to a set of sites, given the set's placeholder
    /// (`IN (…)` in SQLite, `= ANY($n)` in PostgreSQL).
    pub fn scope_condition(kind: EntityKind, in_scope: &str) -> String {
        match kind {
            // District-wide: visible whatever the sites (the placeholder stays bound).
            EntityKind::EscalationPolicy => format!("(TRUE OR id {in_scope})"),
            EntityKind::Site => format!("id {in_scope}"),
            EntityKind::Responder => {
                format!("id IN (SELECT responder_id FROM responder_sites WHERE site_id {in_scope})")
            }
            EntityKind::Resident | EntityKind::Device | EntityKind::Gateway | EntityKind::Shift => {
                format!("site_id {in_scope}")
            }
        }
    }

    /// The single site column of kinds that have one.
    pub fn site_column(&self) -> Option<&str> {
        match self.kind {
            EntityKind::EscalationPolicy | EntityKind::Site | EntityKind::Responder => None,
            EntityKind::Resident | EntityKind::Device | EntityKind::Gateway | EntityKind::Shift => {
                self.sites.first().map(String::as_str)
            }
        }
    }
}

/// Which sites a query may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteFilter {
    All,
    Only(Vec<String>),
}

impl SiteFilter {
    pub fn allows(&self, site: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(sites) => sites.iter().any(|s| s == site),
        }
    }
}

/// Keyset paging over ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("a reference does not hold: {0}")]
    Integrity(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Backend(String),
    #[error("stored document does not decode: {0}")]
    Corrupt(String),
}

/// What every registry backend provides. All writes are atomic; `import` is one transaction.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// Inserts a new entity; `AlreadyExists` when the id is taken.
    async fn insert(&self, record: &Record) -> Result<(), StoreError>;
    /// Replaces an existing entity; `false` when there is none with that id.
    async fn update(&self, record: &Record) -> Result<bool, StoreError>;
    /// The stored document of one entity.
    async fn get(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// `false` when there was none; `Integrity` when others still refer to it.
    async fn delete(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError>;
    /// Entities of `kind` visible through `filter`, ordered by id, after `page.after`.
    async fn list(
        &self,
        kind: EntityKind,
        filter: &SiteFilter,
        page: &PageRequest,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Documents of the shifts of one site.
    async fn shifts_of_site(&self, site: &str) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Inserts all records in one transaction: all of them or none.
    async fn import(&self, records: &[Record]) -> Result<(), StoreError>;

    async fn insert_user(&self, user: &StoredUser) -> Result<(), StoreError>;
    async fn get_user(&self, username: &str) -> Result<Option<StoredUser>, StoreError>;
    async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError>;
    /// Deletes the user and their sessions.
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;
    async fn count_admins(&self) -> Result<u64, StoreError>;

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A round trip to the database, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}
