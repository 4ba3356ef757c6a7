//! The registry: sites, residents, devices, gateways, responders and their rosters, on
//! PostgreSQL or SQLite behind one [`RegistryStore`] trait, with validation and site scoping in
//! [`Registry`].
//!
//! Scoping rule: an entity outside the caller's sites does not exist for them (`NotFound`),
//! and a reference to one is an invalid field — so ids of other sites cannot be probed. An
//! entity that is only partly in scope (a responder covering sites A and B, seen by a manager
//! of A) can be read but not changed (`OutOfScope`).

pub mod cache;
mod entity;
mod id_serde;
pub mod import;
pub mod model;
mod open;
pub mod postgres;
pub mod roster;
pub mod sqlite;
mod store;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use entity::{doc_sites, Entity, Ref};
pub use id_serde::serialize as id_text;
pub use model::*;
pub use open::{open, REGISTRY_FILE};
pub use postgres::PostgresRegistry;
pub use sqlite::SqliteRegistry;
pub use store::{EntityKind, PageRequest, Record, RegistryStore, SiteFilter, StoreError};

/// Most entities returned by one list call.
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{0}")]
    InUse(String),
    #[error("{kind} {id:?} also belongs to sites outside your scope")]
    OutOfScope { kind: &'static str, id: String },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { kind, id } => Self::AlreadyExists { kind, id },
            StoreError::Integrity(m) => Self::InUse(m),
            other => Self::Store(other),
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<E> {
    pub items: Vec<E>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// A responder on duty, with the shift that puts them there.
#[derive(Debug, Clone, PartialEq)]
pub struct OnDuty {
    pub shift: Shift,
    pub responder: Responder,
}

/// Told after every successful write through a [`Registry`] (create, update, delete,
/// import); the write returns once `changed` has. The registry cache refreshes here.
#[async_trait::async_trait]
pub trait ChangeHook: Send + Sync + 'static {
    async fn changed(&self);
}

/// The registry service: validation, references, scoping, over a backend.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    on_change: Option<Arc<dyn ChangeHook>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

fn decode<E: Entity>(doc: serde_json::Value) -> Result<E, RegistryError> {
    serde_json::from_value(doc).map_err(|e| {
        RegistryError::Store(StoreError::Corrupt(format!("{}: {e}", E::KIND.singular())))
    })
}

/// Entities being imported, looked up before the database when checking references.
pub(crate) type Overlay = HashMap<(EntityKind, String), serde_json::Value>;

impl Registry {
    pub fn new(store: Arc<dyn RegistryStore>) -> Self {
        Self {
            store,
            on_change: None,
        }
    }

    /// The same registry, telling `hook` after every successful write.
    pub fn with_change_hook(mut self, hook: Arc<dyn ChangeHook>) -> Self {
        self.on_change = Some(hook);
        self
    }

    pub(crate) async fn changed(&self) {
        if let Some(hook) = &self.on_change {
            hook.changed().await;
        }
    }

    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.store
    }

    /// Checks that every reference of `e` exists, is visible and, where required, belongs to
    /// the right site. `overlay` holds entities of an import not yet stored.
    pub(crate) async fn check_refs(
        &self,
        filter: &SiteFilter,
        refs: Vec<Ref>,
        overlay: &Overlay,
    ) -> Result<(), RegistryError> {
        for r in refs {
            let key = (r.kind, r.id.clone());
            let doc = match overlay.get(&key) {
                Some(d) => Some(d.clone()),
                None => self.store.get(r.kind, &r.id).await?,
            };
            let missing = || {
                FieldError::new(
                    r.field.clone(),
                    format!("no {} {:?}", r.kind.singular(), r.id),
                )
            };
            let Some(doc) = doc else {
                return Err(missing().into());
            };
            let sites = doc_sites(r.kind, &r.id, &doc);
            if !sites.iter().any(|s| filter.allows(s)) {
                return Err(missing().into());
            }
            if let Some(site) = &r.must_belong_to {
                if !sites.contains(site) {
                    return Err(FieldError::new(
                        r.field,
                        format!(
                            "{} {:?} does not belong to site {site:?}",
                            r.kind.singular(),
                            r.id
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    pub(crate) fn check_writable<E: Entity>(
        filter: &SiteFilter,
        e: &E,
    ) -> Result<(), RegistryError> {
        let sites = e.sites();
        if sites.iter().all(|s| filter.allows(s)) {
            return Ok(());
        }
        if sites.iter().any(|s| filter.allows(s)) {
            return Err(RegistryError::OutOfScope {
                kind: E::KIND.singular(),
                id: e.id_str().to_owned(),
            });
        }
        // Entirely outside: it does not exist for this caller, and the answer is the one a
        // missing site gets.
        let site = sites.first().cloned().unwrap_or_default();
        Err(FieldError::new(E::site_field(), format!("no site {site:?}")).into())
    }

    pub async fn create<E: Entity>(&self, filter: &SiteFilter, e: E) -> Result<E, RegistryError> {
        e.validate()?;
        Self::check_writable(filter, &e)?;
        self.check_refs(filter, e.refs(), &Overlay::new()).await?;
        self.store.insert(&e.record()?).await?;
        self.changed().await;
        Ok(e)
    }

    async fn find<E: Entity>(&self, filter: &SiteFilter, id: &str) -> Result<E, RegistryError> {
        let not_found = || RegistryError::NotFound {
            kind: E::KIND.singular(),
            id: id.to_owned(),
        };
        let doc = self.store.get(E::KIND, id).await?.ok_or_else(not_found)?;
        let e: E = decode(doc)?;
        if e.sites().iter().any(|s| filter.allows(s)) {
            Ok(e)
        } else {
            Err(not_found())
        }
    }

    pub async fn get<E: Entity>(&self, filter: &SiteFilter, id: &str) -> Result<E, RegistryError> {
        self.find(filter, id).await
    }

    /// Replaces entity `id` with `e`. The id and the site of an entity are fixed: moving a
    /// device to another site is a delete and a create, so its history stays where it was.
    pub async fn update<E: Entity>(
        &self,
        filter: &SiteFilter,
        id: &str,
        e: E,
    ) -> Result<E, RegistryError> {
        let old: E = self.find(filter, id).await?;
        if e.id_str() != id {
            return Err(FieldError::new("id", format!("must match the path id {id:?}")).into());
        }
        e.validate()?;
        if !E::SITE_MAY_CHANGE && old.sites() != e.sites() {
            return Err(
                FieldError::new(E::site_field(), "cannot change; delete and re-create").into(),
            );
        }
        Self::check_writable(filter, &old)?;
        Self::check_writable(filter, &e)?;
        self.check_refs(filter, e.refs(), &Overlay::new()).await?;
        if self.store.update(&e.record()?).await? {
            self.changed().await;
            Ok(e)
        } else {
            Err(RegistryError::NotFound {
                kind: E::KIND.singular(),
                id: id.to_owned(),
            })
        }
    }

    pub async fn delete<E: Entity>(
        &self,
        filter: &SiteFilter,
        id: &str,
    ) -> Result<(), RegistryError> {
        let old: E = self.find(filter, id).await?;
        Self::check_writable(filter, &old)?;
        match self.store.delete(E::KIND, id).await {
            Ok(true) => {
                self.changed().await;
                Ok(())
            }
            Ok(false) => Err(RegistryError::NotFound {
                kind: E::KIND.singular(),
                id: id.to_owned(),
            }),
            Err(StoreError::Integrity(_)) => Err(RegistryError::InUse(format!(
                "{} {id:?} is still referred to (residents, devices, shifts…); remove those first",
                E::KIND.singular()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list<E: Entity>(
        &self,
        filter: &SiteFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page<E>, RegistryError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let docs = self
            .store
            .list(E::KIND, filter, &PageRequest { after, limit })
            .await?;
        let items: Vec<E> = docs.into_iter().map(decode).collect::<Result<_, _>>()?;
        let next_after = (items.len() as u32 == limit)
            .then(|| items.last().map(|e| e.id_str().to_owned()))
            .flatten();
        Ok(Page { items, next_after })
    }

    /// Who is on duty for `site` at instant `at`.
    pub async fn on_duty(
        &self,
        filter: &SiteFilter,
        site: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<OnDuty>, RegistryError> {
        let site: Site = self.find(filter, site).await?;
        let shifts: Vec<Shift> = self
            .store
            .shifts_of_site(site.id.as_str())
            .await?
            .into_iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for shift in roster::on_duty(&shifts, site.timezone, at) {
            let responder: Responder = self
                .find(&SiteFilter::All, shift.responder_id.as_str())
                .await?;
            out.push(OnDuty {
                shift: shift.clone(),
                responder,
            });
        }
        Ok(out)
    }
}
