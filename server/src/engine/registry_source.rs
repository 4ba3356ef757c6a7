//! A [`DirectorySource`] read from the registry's database: the whole registry loaded into
//! memory, reloaded every few seconds (a change is announced when the contents differ).
//!
//! Design: a stop-gap until the registry cache (`registry::cache`) is the engine's source;
//! it has the same shape (a snapshot plus a change signal). Roster roles: a policy tier's
//! role is matched against the responder's role (`caregiver`, `nurse`,
//! `neighbourhood_worker`, `volunteer`, `family`) among the responders on shift at the site
//! at that moment. A site's chain is `default_policy` (the telecare chain unless configured).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::DateTime;
use tokio::sync::watch;

use super::directory::{EngineDirectory, StaticDirectory};
use super::source::DirectorySource;
use crate::alerts::{Subject, Timestamp};
use crate::escalation::{EscalationPolicy, RoleName, RosterLookup, SiteEscalation};
use crate::ids::{DeviceId, ResidentId, ResponderId, SiteId};
use crate::registry::{
    roster, ContactChannel, Device, Entity, Gateway, Registry, RegistryError, Resident, Responder,
    ResponderRole, Shift, Site, SiteFilter,
};

/// The registry as loaded, with its shifts.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRegistry {
    pub dir: StaticDirectory,
    pub shifts: BTreeMap<SiteId, Vec<Shift>>,
    pub default_policy: EscalationPolicy,
}

fn role_name(r: ResponderRole) -> &'static str {
    match r {
        ResponderRole::Caregiver => "caregiver",
        ResponderRole::Nurse => "nurse",
        ResponderRole::NeighbourhoodWorker => "neighbourhood_worker",
        ResponderRole::Volunteer => "volunteer",
        ResponderRole::Family => "family",
    }
}

impl RosterLookup for LoadedRegistry {
    fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId> {
        let Some(s) = self.dir.sites.get(site) else {
            return Vec::new();
        };
        let Some(at) = DateTime::from_timestamp_millis(i64::try_from(at.unix_ms()).unwrap_or(0))
        else {
            return Vec::new();
        };
        let shifts = self.shifts.get(site).map(Vec::as_slice).unwrap_or_default();
        let mut out: Vec<ResponderId> = Vec::new();
        for shift in roster::on_duty(shifts, s.timezone, at) {
            let holds = self
                .dir
                .responders
                .get(&shift.responder_id)
                .is_some_and(|r| role_name(r.role) == role.as_str());
            if holds && !out.contains(&shift.responder_id) {
                out.push(shift.responder_id.clone());
            }
        }
        out
    }

    fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId> {
        // Emergency contacts are phone numbers on the resident, not responders: the registry
        // has no responder to page for them yet.
        let _ = subject;
        Vec::new()
    }
}

impl EngineDirectory for LoadedRegistry {
    fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.dir.device(id)
    }
    fn site(&self, id: &SiteId) -> Option<&Site> {
        self.dir.site(id)
    }
    fn resident(&self, id: &ResidentId) -> Option<&Resident> {
        self.dir.resident(id)
    }
    fn devices(&self) -> Vec<&Device> {
        self.dir.devices()
    }
    fn gateways(&self) -> Vec<&Gateway> {
        self.dir.gateways()
    }
    fn escalation(&self, site: &SiteId) -> SiteEscalation {
        self.dir
            .policies
            .get(site)
            .cloned()
            .unwrap_or_else(|| self.default_policy.clone().into())
    }
    fn channels(&self, responder: &ResponderId) -> Vec<ContactChannel> {
        self.dir.channels(responder)
    }
}

async fn all<E: Entity>(registry: &Registry) -> Result<Vec<E>, RegistryError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = registry.list::<E>(&SiteFilter::All, after, 1000).await?;
        out.extend(page.items);
        match page.next_after {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

/// Loads the whole registry.
pub async fn load(
    registry: &Registry,
    default_policy: &EscalationPolicy,
) -> Result<LoadedRegistry, RegistryError> {
    let mut dir = StaticDirectory::default();
    for s in all::<Site>(registry).await? {
        dir = dir.with_site(s);
    }
    for r in all::<Resident>(registry).await? {
        dir = dir.with_resident(r);
    }
    for d in all::<Device>(registry).await? {
        dir = dir.with_device(d);
    }
    for g in all::<Gateway>(registry).await? {
        dir = dir.with_gateway(g);
    }
    for r in all::<Responder>(registry).await? {
        dir = dir.with_responder(r);
    }
    let mut shifts: BTreeMap<SiteId, Vec<Shift>> = BTreeMap::new();
    for s in all::<Shift>(registry).await? {
        shifts.entry(s.site_id.clone()).or_default().push(s);
    }
    Ok(LoadedRegistry {
        dir,
        shifts,
        default_policy: default_policy.clone(),
    })
}

/// The registry reloaded every `every`.
pub struct RegistrySource {
    current: RwLock<Arc<LoadedRegistry>>,
    version: watch::Sender<u64>,
}

impl RegistrySource {
    /// Loads the registry once, then keeps reloading it in a task until `stop` turns true.
    pub async fn start(
        registry: Registry,
        default_policy: EscalationPolicy,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, RegistryError> {
        let first = load(&registry, &default_policy).await?;
        let source = Arc::new(Self {
            current: RwLock::new(Arc::new(first)),
            version: watch::Sender::new(0),
        });
        let s = Arc::clone(&source);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = super::task::stopped(&mut stop) => break,
                    () = tokio::time::sleep(every) => {}
                }
                match load(&registry, &default_policy).await {
                    Ok(next) => s.replace(next),
                    Err(e) => {
                        metrics::counter!("vigil_engine_registry_load_errors_total").increment(1);
                        tracing::warn!(error = %e, "registry not reloaded; keeping the last copy");
                    }
                }
            }
        });
        Ok(source)
    }

    fn replace(&self, next: LoadedRegistry) {
        let changed = {
            let cur = self.snapshot();
            *cur != next
        };
        if changed {
            match self.current.write() {
                Ok(mut c) => *c = Arc::new(next),
                Err(p) => *p.into_inner() = Arc::new(next),
            }
            self.version.send_modify(|v| *v += 1);
        }
    }

    fn snapshot(&self) -> Arc<LoadedRegistry> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

impl DirectorySource for RegistrySource {
    fn current(&self) -> Arc<dyn EngineDirectory> {
        self.snapshot()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
