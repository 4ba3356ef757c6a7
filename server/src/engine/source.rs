//! Where the engine reads the registry from: a snapshot and a change signal.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::directory::{EngineDirectory, StaticDirectory};

/// A registry the engine can read and watch.
pub trait DirectorySource: Send + Sync + 'static {
    /// The current snapshot.
    fn current(&self) -> Arc<dyn EngineDirectory>;
    /// Ticks whenever the registry changed.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// A registry held in memory and replaced by hand: tests, and servers without a registry.
pub struct StaticSource {
    dir: RwLock<Arc<StaticDirectory>>,
    version: watch::Sender<u64>,
}

impl StaticSource {
    pub fn new(dir: StaticDirectory) -> Arc<Self> {
        Arc::new(Self {
            dir: RwLock::new(Arc::new(dir)),
            version: watch::Sender::new(0),
        })
    }

    /// Replaces the registry and tells the engine.
    pub fn set(&self, dir: StaticDirectory) {
        match self.dir.write() {
            Ok(mut d) => *d = Arc::new(dir),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(dir),
        }
        self.version.send_modify(|v| *v += 1);
    }

    pub fn snapshot(&self) -> Arc<StaticDirectory> {
        match self.dir.read() {
            Ok(d) => Arc::clone(&d),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

impl DirectorySource for StaticSource {
    fn current(&self) -> Arc<dyn EngineDirectory> {
        self.snapshot()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// The server's registry cache as the engine's registry: every write through the server's
/// registry, and every periodic re-read, reaches the engine at once through `changes`.
pub struct CacheSource {
    cache: Arc<crate::registry::cache::RegistryCache>,
    /// The chain of sites that name no escalation policy (`[engine] default_policy`); absent:
    /// the registry's fallback, the telecare default.
    default: Option<crate::escalation::SiteEscalation>,
}

impl CacheSource {
    pub fn new(
        cache: Arc<crate::registry::cache::RegistryCache>,
        default: Option<crate::escalation::SiteEscalation>,
    ) -> Arc<Self> {
        Arc::new(Self { cache, default })
    }
}

impl DirectorySource for CacheSource {
    fn current(&self) -> Arc<dyn EngineDirectory> {
        Arc::new(CacheDirectory {
            view: self.cache.view(),
            default: self.default.clone(),
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.cache.changes()
    }
}

/// One snapshot of the registry cache.
struct CacheDirectory {
    view: Arc<crate::registry::cache::RegistryView>,
    default: Option<crate::escalation::SiteEscalation>,
}

mod cache_directory {
    use super::CacheDirectory;
    use crate::alerts::{Subject, Timestamp};
    use crate::engine::directory::EngineDirectory;
    use crate::escalation::{RoleName, RosterLookup, SiteEscalation};
    use crate::ids::{DeviceId, ResidentId, ResponderId, SiteId};
    use crate::registry::{ContactChannel, Device, Gateway, Resident, Site};

    impl RosterLookup for CacheDirectory {
        fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId> {
            self.view.on_duty(site, role, at)
        }

        fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId> {
            self.view.emergency_contacts(subject)
        }
    }

    impl EngineDirectory for CacheDirectory {
        fn device(&self, id: &DeviceId) -> Option<&Device> {
            self.view.device(id)
        }
        fn site(&self, id: &SiteId) -> Option<&Site> {
            self.view.site(id)
        }
        fn resident(&self, id: &ResidentId) -> Option<&Resident> {
            self.view.resident(id)
        }
        fn devices(&self) -> Vec<&Device> {
            self.view.devices().collect()
        }
        fn gateways(&self) -> Vec<&Gateway> {
            self.view.gateways().collect()
        }
        fn escalation(&self, site: &SiteId) -> SiteEscalation {
            let names_none = self
                .view
                .site(site)
                .is_none_or(|s| s.escalation_policy.is_none());
            match (&self.default, names_none) {
                (Some(default), true) => default.clone(),
                _ => self.view.escalation(site),
            }
        }
        fn channels(&self, responder: &ResponderId) -> Vec<ContactChannel> {
            self.view.channels(responder)
        }
    }
}
