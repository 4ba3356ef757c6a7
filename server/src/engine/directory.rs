//! What the engine needs to know from the registry, as one trait.
//!
//! Design: the engine reads a consistent snapshot of the registry (the registry cache's
//! `RegistryView`) and never queries the database on the hot path. The trait keeps the
//! engine's cores testable with a [`StaticDirectory`] built in memory.

use std::collections::BTreeMap;

use crate::alerts::{Subject, Timestamp};
use crate::escalation::{EscalationPolicy, RoleName, Roster, RosterLookup, SiteEscalation};
use crate::ids::{DeviceId, GatewayId, ResidentId, ResponderId, SiteId};
use crate::registry::{ContactChannel, Device, Gateway, Resident, Responder, Site};

/// A snapshot of the registry, as the engine reads it.
pub trait EngineDirectory: RosterLookup + Send + Sync {
    fn device(&self, id: &DeviceId) -> Option<&Device>;
    fn site(&self, id: &SiteId) -> Option<&Site>;
    fn resident(&self, id: &ResidentId) -> Option<&Resident>;
    /// Every registered device (the health detectors watch them all).
    fn devices(&self) -> Vec<&Device>;
    /// Every registered gateway.
    fn gateways(&self) -> Vec<&Gateway>;
    /// The site's escalation chains (the default telecare chain when it names none).
    fn escalation(&self, site: &SiteId) -> SiteEscalation;
    /// How to reach a responder.
    fn channels(&self, responder: &ResponderId) -> Vec<ContactChannel>;
}

/// A registry held in memory: for tests, and for a server started without a registry.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StaticDirectory {
    pub sites: BTreeMap<SiteId, Site>,
    pub residents: BTreeMap<ResidentId, Resident>,
    pub devices: BTreeMap<DeviceId, Device>,
    pub gateways: BTreeMap<GatewayId, Gateway>,
    pub responders: BTreeMap<ResponderId, Responder>,
    pub policies: BTreeMap<SiteId, SiteEscalation>,
    pub roster: Roster,
}

impl StaticDirectory {
    pub fn with_site(mut self, site: Site) -> Self {
        self.sites.insert(site.id.clone(), site);
        self
    }

    pub fn with_resident(mut self, resident: Resident) -> Self {
        self.residents.insert(resident.id.clone(), resident);
        self
    }

    pub fn with_device(mut self, device: Device) -> Self {
        self.devices.insert(device.id.clone(), device);
        self
    }

    pub fn with_gateway(mut self, gateway: Gateway) -> Self {
        self.gateways.insert(gateway.id.clone(), gateway);
        self
    }

    pub fn with_responder(mut self, responder: Responder) -> Self {
        self.responders.insert(responder.id.clone(), responder);
        self
    }

    pub fn with_policy(mut self, site: SiteId, policy: impl Into<SiteEscalation>) -> Self {
        self.policies.insert(site, policy.into());
        self
    }
}

impl RosterLookup for StaticDirectory {
    fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId> {
        self.roster.on_duty(site, role, at)
    }

    fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId> {
        self.roster.emergency_contacts(subject)
    }
}

impl EngineDirectory for StaticDirectory {
    fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.devices.get(id)
    }

    fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id)
    }

    fn resident(&self, id: &ResidentId) -> Option<&Resident> {
        self.residents.get(id)
    }

    fn devices(&self) -> Vec<&Device> {
        self.devices.values().collect()
    }

    fn gateways(&self) -> Vec<&Gateway> {
        self.gateways.values().collect()
    }

    fn escalation(&self, site: &SiteId) -> SiteEscalation {
        self.policies
            .get(site)
            .cloned()
            .unwrap_or_else(|| EscalationPolicy::telecare_default().into())
    }

    fn channels(&self, responder: &ResponderId) -> Vec<ContactChannel> {
        self.responders
            .get(responder)
            .map(|r| r.channels.clone())
            .unwrap_or_default()
    }
}
