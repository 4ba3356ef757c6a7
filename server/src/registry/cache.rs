//! The registry in memory: a consistent, immutable [`RegistryView`] that the hot paths (ingest
//! asking whether a device is registered, the alert engine resolving a device to its site,
//! resident, timezone, escalation and who is on duty) read from sync code without touching
//! the database.
//!
//! The view is rebuilt from the store
//! - right after every successful write through the [`Registry`] facade returned by
//!   [`RegistryCache::registry`] (create, update, delete, import): the write returns once the
//!   new view is in place, so a device registered through the API is known to ingest when the
//!   API answers;
//! - periodically ([`RegistryCache::spawn_refresh`], `[registry] refresh_s`), so writes by
//!   another server instance on the same database show up within that bound.
//!
//! A failed refresh keeps the last good view, logs, and counts
//! `vigil_registry_refresh_errors_total`. A stored document that no longer decodes is left out
//! of the view (logged, `vigil_registry_undecodable_total`) instead of blocking every refresh.
//!
//! Each kind is read with its own queries, so a view built while another instance writes may
//! hold one write of a multi-kind import and not the next; the next refresh completes it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{
    default_roster_role, ChangeHook, ContactChannel, Device, Entity, Gateway, PageRequest,
    Registry, RegistryStore, Resident, Responder, Shift, Site, SiteFilter, StoreError,
    DISTRICT_ROLE_PREFIX,
};
use crate::alerts::{Subject, Timestamp};
use crate::escalation::{EscalationPolicy, RoleName, RosterLookup, SiteEscalation};
use crate::ids::{DeviceId, GatewayId, ResidentId, ResponderId, SiteId};
use crate::ingest::DeviceDirectory;

/// Entities read per query when (re)loading.
const LOAD_PAGE: u32 = 1000;

/// Prefix of the synthetic responder ids of residents' emergency contacts.
pub const EMERGENCY_CONTACT_PREFIX: &str = "ec.";

/// Everything a view is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryContents {
    pub sites: Vec<Site>,
    pub residents: Vec<Resident>,
    pub devices: Vec<Device>,
    pub gateways: Vec<Gateway>,
    pub responders: Vec<Responder>,
    pub shifts: Vec<Shift>,
}

/// A shift with what the roster lookup needs resolved once per view.
#[derive(Debug, Clone)]
struct RosteredShift {
    shift: Shift,
    role: RoleName,
    /// The timezone of the shift's own site, its wall-clock times are in.
    tz: Tz,
}

/// One resident's emergency contact, reachable as a synthetic responder.
#[derive(Debug, Clone)]
struct ContactEntry {
    phone: String,
}

/// An immutable snapshot of the registry. Cheap to share: hold the `Arc` the cache hands out
/// for as long as one decision needs a consistent picture.
#[derive(Debug, Default)]
pub struct RegistryView {
    generation: u64,
    sites: BTreeMap<SiteId, Site>,
    residents: BTreeMap<ResidentId, Resident>,
    devices: BTreeMap<DeviceId, Device>,
    gateways: BTreeMap<GatewayId, Gateway>,
    responders: BTreeMap<ResponderId, Responder>,
    /// Shifts by the site they are on.
    shifts: BTreeMap<SiteId, Vec<RosteredShift>>,
    /// Shifts holding a district-wide role; they cover every site their responder covers.
    district_shifts: Vec<RosteredShift>,
    /// Synthetic responder id → emergency contact.
    contacts: BTreeMap<ResponderId, ContactEntry>,
    /// Resident → the synthetic ids of their emergency contacts, in the resident's order.
    contacts_of: BTreeMap<ResidentId, Vec<ResponderId>>,
    /// Sites naming an escalation policy the registry does not hold.
    dangling_policies: BTreeMap<SiteId, String>,
}

/// The synthetic responder id of a resident's `n`th emergency contact (from 0):
/// `ec.<n>.<resident>`, or `ec.<n>.<hash>` (16 hex digits of BLAKE2s over the resident id)
/// when that would exceed the 32 characters an id may have. Stable across refreshes and
/// restarts as long as the contact keeps its place in the list.
pub fn emergency_contact_id(resident: &ResidentId, n: usize) -> ResponderId {
    let plain = format!("{EMERGENCY_CONTACT_PREFIX}{n}.{resident}");
    if let Ok(id) = ResponderId::new(&plain) {
        return id;
    }
    let digest = Blake2s256::digest(resident.as_str().as_bytes());
    let hashed = format!(
        "{EMERGENCY_CONTACT_PREFIX}{n}.{}",
        hex::encode(&digest[..8])
    );
    // `ec.` + at most 2 digits (contacts are capped at 64) + `.` + 16 hex digits: always valid.
    ResponderId::new(&hashed).unwrap_or_else(|_| {
        ResponderId::new(&format!("{EMERGENCY_CONTACT_PREFIX}x")).expect("a valid literal id")
    })
}

fn utc(at: Timestamp) -> Option<DateTime<Utc>> {
    i64::try_from(at.unix_ms())
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

impl RegistryView {
    /// Builds a view; `generation` numbers it (the cache counts refreshes from 1).
    pub fn new(contents: RegistryContents, generation: u64) -> Self {
        let mut v = RegistryView {
            generation,
            ..Self::default()
        };
        for s in contents.sites {
            v.sites.insert(s.id.clone(), s);
        }
        for r in contents.responders {
            v.responders.insert(r.id.clone(), r);
        }
        for r in contents.residents {
            let mut ids = Vec::with_capacity(r.emergency_contacts.len());
            for (n, c) in r.emergency_contacts.iter().enumerate() {
                let id = emergency_contact_id(&r.id, n);
                if v.responders.contains_key(&id) || v.contacts.contains_key(&id) {
                    tracing::warn!(resident = %r.id, contact = n, id = %id,
                        "emergency contact id is taken by a responder; contact left out");
                    continue;
                }
                v.contacts.insert(
                    id.clone(),
                    ContactEntry {
                        phone: c.phone.clone(),
                    },
                );
                ids.push(id);
            }
            v.contacts_of.insert(r.id.clone(), ids);
            v.residents.insert(r.id.clone(), r);
        }
        for d in contents.devices {
            v.devices.insert(d.id.clone(), d);
        }
        for g in contents.gateways {
            v.gateways.insert(g.id.clone(), g);
        }
        for shift in contents.shifts {
            let Some(tz) = v.sites.get(&shift.site_id).map(|s| s.timezone) else {
                continue;
            };
            let role = match (&shift.role, v.responders.get(&shift.responder_id)) {
                (Some(role), _) => role.clone(),
                (None, Some(responder)) => default_roster_role(responder.role),
                (None, None) => continue,
            };
            let rostered = RosteredShift { shift, role, tz };
            if rostered.role.as_str().starts_with(DISTRICT_ROLE_PREFIX) {
                v.district_shifts.push(rostered);
            } else {
                v.shifts
                    .entry(rostered.shift.site_id.clone())
                    .or_default()
                    .push(rostered);
            }
        }
        for s in v.sites.values() {
            if let Some(policy) = &s.escalation_policy {
                v.dangling_policies.insert(s.id.clone(), policy.clone());
            }
        }
        v
    }

    /// Which refresh built this view (1 = the first load).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.devices.get(id)
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id)
    }

    pub fn resident(&self, id: &ResidentId) -> Option<&Resident> {
        self.residents.get(id)
    }

    pub fn gateway(&self, id: &GatewayId) -> Option<&Gateway> {
        self.gateways.get(id)
    }

    pub fn responder(&self, id: &ResponderId) -> Option<&Responder> {
        self.responders.get(id)
    }

    /// Sites in id order.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// Devices in id order.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Residents in id order.
    pub fn residents(&self) -> impl Iterator<Item = &Resident> {
        self.residents.values()
    }

    /// Gateways in id order.
    pub fn gateways(&self) -> impl Iterator<Item = &Gateway> {
        self.gateways.values()
    }

    /// Responders in id order.
    pub fn responders(&self) -> impl Iterator<Item = &Responder> {
        self.responders.values()
    }

    /// The escalation of `site`'s alerts: the policy the site names, or
    /// [`EscalationPolicy::telecare_default`] when it names none, names one the registry does
    /// not hold (also counted: `vigil_registry_policy_fallbacks_total`), or the site is
    /// unknown.
    pub fn escalation(&self, site: &SiteId) -> SiteEscalation {
        if self.dangling_policies.contains_key(site) {
            metrics::counter!("vigil_registry_policy_fallbacks_total").increment(1);
        }
        EscalationPolicy::telecare_default().into()
    }

    /// Sites naming an escalation policy the registry does not hold, with that name.
    pub fn dangling_policies(&self) -> impl Iterator<Item = (&SiteId, &str)> {
        self.dangling_policies.iter().map(|(s, p)| (s, p.as_str()))
    }

    /// How to reach `responder`: a responder's channels, or for the synthetic id of an
    /// emergency contact ([`emergency_contact_id`]) a phone call and an SMS to their number.
    /// Empty for an unknown id.
    pub fn channels(&self, responder: &ResponderId) -> Vec<ContactChannel> {
        if let Some(r) = self.responders.get(responder) {
            return r.channels.clone();
        }
        match self.contacts.get(responder) {
            Some(c) => vec![
                ContactChannel::Phone {
                    number: c.phone.clone(),
                },
                ContactChannel::Sms {
                    number: c.phone.clone(),
                },
            ],
            None => Vec::new(),
        }
    }

    /// The emergency contacts of a resident as synthetic responder ids.
    pub fn emergency_contacts_of(&self, resident: &ResidentId) -> &[ResponderId] {
        self.contacts_of.get(resident).map_or(&[], Vec::as_slice)
    }
}

impl RosterLookup for RegistryView {
    /// Responders on a shift covering `at` (in the shift's site's timezone) that holds `role`:
    /// shifts of `site` itself, and shifts holding a district-wide role (`district_…`) of any
    /// site, whose responder covers `site`. Each responder once, in roster order.
    fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId> {
        let Some(at) = utc(at) else {
            return Vec::new();
        };
        let local = self.shifts.get(site).into_iter().flatten();
        let district = self.district_shifts.iter().filter(|s| {
            self.responders
                .get(&s.shift.responder_id)
                .is_some_and(|r| r.site_ids.contains(site))
        });
        let mut out: Vec<ResponderId> = Vec::new();
        for s in local.chain(district) {
            if &s.role == role
                && super::roster::covers(&s.shift.schedule, s.tz, at)
                && !out.contains(&s.shift.responder_id)
            {
                out.push(s.shift.responder_id.clone());
            }
        }
        out
    }

    /// A resident's emergency contacts (a device's: its resident's). Other subjects have none.
    fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId> {
        match subject {
            Subject::Resident(r) => self.emergency_contacts_of(r).to_vec(),
            Subject::Device(d) => self
                .devices
                .get(d)
                .and_then(|d| d.resident_id.as_ref())
                .map(|r| self.emergency_contacts_of(r).to_vec())
                .unwrap_or_default(),
            Subject::Zone { .. } | Subject::Gateway(_) | Subject::Site(_) => Vec::new(),
        }
    }
}

/// The registry in memory, shared as `Arc<RegistryCache>`. See the module documentation.
pub struct RegistryCache {
    store: Arc<dyn RegistryStore>,
    current: RwLock<Arc<RegistryView>>,
    generation: watch::Sender<u64>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// Writes reported through the change hook.
    writes: AtomicU64,
    /// Writes the current view is known to include.
    writes_seen: AtomicU64,
}

impl std::fmt::Debug for RegistryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCache")
            .field("generation", &*self.generation.borrow())
            .finish_non_exhaustive()
    }
}

/// Reads every entity of one kind, in pages.
async fn read_kind<E: Entity>(store: &dyn RegistryStore) -> Result<Vec<E>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let docs = store
            .list(
                E::KIND,
                &SiteFilter::All,
                &PageRequest {
                    after: after.clone(),
                    limit: LOAD_PAGE,
                },
            )
            .await?;
        let full = docs.len() >= LOAD_PAGE as usize;
        let last = docs.last().map(|d| d["id"].as_str().map(str::to_owned));
        for doc in docs {
            let id = doc["id"].as_str().unwrap_or("?").to_owned();
            match serde_json::from_value::<E>(doc) {
                Ok(e) => out.push(e),
                Err(e) => {
                    metrics::counter!("vigil_registry_undecodable_total").increment(1);
                    tracing::error!(kind = E::KIND.singular(), id, error = %e,
                        "stored registry entity does not decode; left out of the registry view");
                }
            }
        }
        if !full {
            return Ok(out);
        }
        match last {
            Some(Some(id)) => after = Some(id),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "a stored {} has no id",
                    E::KIND.singular()
                )))
            }
        }
    }
}

async fn read_all(store: &dyn RegistryStore) -> Result<RegistryContents, StoreError> {
    Ok(RegistryContents {
        sites: read_kind(store).await?,
        residents: read_kind(store).await?,
        devices: read_kind(store).await?,
        gateways: read_kind(store).await?,
        responders: read_kind(store).await?,
        shifts: read_kind(store).await?,
    })
}

impl RegistryCache {
    /// Reads the whole registry from `store`.
    pub async fn load(store: Arc<dyn RegistryStore>) -> Result<Arc<Self>, StoreError> {
        let contents = read_all(store.as_ref()).await?;
        let view = RegistryView::new(contents, 1);
        log_dangling(None, &view);
        Ok(Arc::new(Self {
            store,
            current: RwLock::new(Arc::new(view)),
            generation: watch::Sender::new(1),
            refreshing: tokio::sync::Mutex::new(()),
            writes: AtomicU64::new(0),
            writes_seen: AtomicU64::new(0),
        }))
    }

    /// The current snapshot.
    pub fn view(&self) -> Arc<RegistryView> {
        // A poisoned lock still holds a whole view (it is only ever replaced whole).
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The generation of the current view; bumps on every successful refresh.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The store the cache reads.
    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.store
    }

    /// The registry facade over the same store, refreshing this cache after every
    /// successful write (before the write returns).
    pub fn registry(self: &Arc<Self>) -> Registry {
        Registry::new(Arc::clone(&self.store))
            .with_change_hook(Arc::new(RefreshOnChange(Arc::downgrade(self))))
    }

    /// Re-reads the registry. On failure the last good view stays, the error is logged and
    /// counted (`vigil_registry_refresh_errors_total`) and returned.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one = self.refreshing.lock().await;
        self.refresh_locked().await
    }

    /// Refreshes after a write that has completed: skipped when a refresh that started after
    /// the write already finished (concurrent writes share one refresh).
    pub async fn refresh_after_write(&self) -> Result<(), StoreError> {
        let ticket = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let _one = self.refreshing.lock().await;
        if self.writes_seen.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<(), StoreError> {
        let seen = self.writes.load(Ordering::SeqCst);
        match read_all(self.store.as_ref()).await {
            Ok(contents) => {
                let generation = *self.generation.borrow() + 1;
                let view = Arc::new(RegistryView::new(contents, generation));
                let old = {
                    let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                    std::mem::replace(&mut *current, Arc::clone(&view))
                };
                log_dangling(Some(&old), &view);
                self.writes_seen.store(seen, Ordering::SeqCst);
                self.generation.send_replace(generation);
                metrics::gauge!("vigil_registry_devices").set(view.devices.len() as f64);
                Ok(())
            }
            Err(e) => {
                metrics::counter!("vigil_registry_refresh_errors_total").increment(1);
                tracing::error!(error = %e, "registry refresh failed; keeping the last good view");
                Err(e)
            }
        }
    }

    /// Refreshes every `every` until `shutdown` resolves.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; the view is fresh
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    () = &mut shutdown => return,
                    _ = tick.tick() => {
                        // Errors are logged and counted inside; the last view stays.
                        let _ = cache.refresh().await;
                    }
                }
            }
        })
    }
}

/// Warns about sites naming a missing policy, once when that appears (not every refresh).
fn log_dangling(old: Option<&RegistryView>, new: &RegistryView) {
    for (site, policy) in &new.dangling_policies {
        let known = old.is_some_and(|o| o.dangling_policies.get(site) == Some(policy));
        if !known {
            tracing::warn!(site = %site, policy = %policy,
                "site names an escalation policy the registry does not hold; \
                 its alerts escalate by the telecare default");
        }
    }
    metrics::gauge!("vigil_registry_dangling_policy_refs").set(new.dangling_policies.len() as f64);
}

impl DeviceDirectory for RegistryCache {
    /// Whether the device is registered, in the current view.
    fn knows(&self, device: &DeviceId) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .devices
            .contains_key(device)
    }
}

/// The change hook the cache puts on its [`Registry`] facade.
struct RefreshOnChange(Weak<RegistryCache>);

#[async_trait]
impl ChangeHook for RefreshOnChange {
    async fn changed(&self) {
        if let Some(cache) = self.0.upgrade() {
            // Logged and counted inside; the periodic refresh retries.
            let _ = cache.refresh_after_write().await;
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
