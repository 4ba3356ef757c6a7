//! The engine's decisions in one sans-IO value: detectors → alert book → one [`Step`] per
//! input, holding the change set to commit and what to send once it is committed.
//!
//! The async task ([`super::task`]) owns one [`EngineCore`], commits each step's
//! [`ChangeSet`] and only then publishes, notifies and sends downlinks.

use std::collections::HashMap;
use std::ops::Range;

use vigil_protocol::topic::Topic;
use vigil_protocol::{DeviceState, DownlinkFrame, GatewayStatus};

use super::detectors::{DetectionConfig, DetectorSet};
use super::directory::EngineDirectory;
use super::router::{route, RouteError};
use crate::alert_store::{AfterCommit, ChangeSet};
use crate::alerts::audit::Actor;
use crate::alerts::book::{AlertBook, BookSnapshot};
use crate::alerts::lifecycle::{Alert, AlertId, AlertPolicy, LifecycleError, OperatorAction};
use crate::alerts::Timestamp;
use crate::escalation::EscalationTask;
use crate::ids::{DeviceId, GatewayId, SiteId};
use crate::store::IncomingFrame;

/// A downlink to publish, with the topic it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downlink {
    pub topic: String,
    pub frame: DownlinkFrame,
}

/// What one input changed: commit `changes`, then send `downlinks`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    pub changes: ChangeSet,
    pub downlinks: Vec<Downlink>,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.downlinks.is_empty()
    }
}

/// Inputs the engine could not use, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreCounters {
    pub frames: u64,
    pub unknown_devices: u64,
    pub unknown_sites: u64,
    pub states_for_unknown_devices: u64,
}

pub struct EngineCore {
    detectors: DetectorSet,
    book: AlertBook,
    /// The gateway each board was last heard through: its downlinks go back that way.
    via: HashMap<DeviceId, (SiteId, GatewayId)>,
    counters: CoreCounters,
}

impl EngineCore {
    pub fn new(config: DetectionConfig, policy: AlertPolicy) -> Self {
        Self::restore(config, policy, BookSnapshot::default())
    }

    /// Starts from the open alerts of the store, with no alert id: grant some
    /// ([`Self::grant_ids`]) before a detector raises.
    pub fn restore(config: DetectionConfig, policy: AlertPolicy, snapshot: BookSnapshot) -> Self {
        Self {
            detectors: DetectorSet::new(config),
            book: AlertBook::restore(policy, snapshot),
            via: HashMap::new(),
            counters: CoreCounters::default(),
        }
    }

    pub fn detectors(&mut self) -> &mut DetectorSet {
        &mut self.detectors
    }

    pub fn book(&self) -> &AlertBook {
        &self.book
    }

    pub fn counters(&self) -> &CoreCounters {
        &self.counters
    }

    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        self.detectors.next_deadline()
    }

    /// One committed frame.
    pub fn handle_frame(
        &mut self,
        frame: &IncomingFrame,
        dir: &dyn EngineDirectory,
        now: Timestamp,
    ) -> Step {
        self.counters.frames += 1;
        match route(frame, dir) {
            Ok(routed) => {
                if let Some(via) = &routed.via {
                    self.via
                        .insert(routed.ctx.frame.device.clone(), via.clone());
                }
                self.detectors.handle_frame(&routed, &frame.frame.body, now);
            }
            Err(e) => {
                match e {
                    RouteError::UnknownDevice(_) => self.counters.unknown_devices += 1,
                    RouteError::UnknownSite { .. } => self.counters.unknown_sites += 1,
                }
                metrics::counter!("vigil_engine_unroutable_frames_total", "reason" => e.code())
                    .increment(1);
                tracing::debug!(error = %e, "frame not routed to any detector");
            }
        }
        self.finish(dir, now)
    }

    /// A board's MQTT will / online state.
    pub fn handle_device_state(
        &mut self,
        state: &DeviceState,
        dir: &dyn EngineDirectory,
        now: Timestamp,
    ) -> Step {
        match dir.device(&state.device_id) {
            Some(d) => {
                let site = d.site_id.clone();
                self.detectors.handle_device_state(&site, state, now);
            }
            None => self.counters.states_for_unknown_devices += 1,
        }
        self.finish(dir, now)
    }

    /// A gateway's status report.
    pub fn handle_gateway_status(
        &mut self,
        status: &GatewayStatus,
        dir: &dyn EngineDirectory,
        now: Timestamp,
    ) -> Step {
        self.detectors.handle_gateway_status(status, now);
        self.finish(dir, now)
    }

    /// The registry changed: register new devices and gateways, apply "away until".
    pub fn handle_registry(&mut self, dir: &dyn EngineDirectory, now: Timestamp) -> Step {
        self.detectors.sync_registry(dir, now);
        self.finish(dir, now)
    }

    /// Advances the detectors' clocks.
    pub fn handle_timeout(&mut self, dir: &dyn EngineDirectory, now: Timestamp) -> Step {
        self.detectors.handle_timeout(now);
        self.finish(dir, now)
    }

    /// Gives the book alert ids reserved in the store for this engine alone; the detector
    /// actions that were waiting for an id are applied now, into the returned step.
    pub fn grant_ids(
        &mut self,
        ids: Range<u64>,
        dir: &dyn EngineDirectory,
        now: Timestamp,
    ) -> Step {
        self.book.grant_ids(ids);
        self.finish(dir, now)
    }

    /// Whether the book holds `id` open (else the driver looks it up in the store).
    pub fn open_alert(&self, id: AlertId) -> Option<&Alert> {
        self.book.get(id)
    }

    /// A person's action on an open alert of the book.
    pub fn handle_operator(
        &mut self,
        id: AlertId,
        action: &OperatorAction,
        actor: Actor,
        note: Option<String>,
        dir: &dyn EngineDirectory,
        now: Timestamp,
    ) -> Result<Step, LifecycleError> {
        self.book.handle_operator(id, action, actor, note, now)?;
        Ok(self.finish(dir, now))
    }

    /// Drains detectors into the book and the book into one step.
    fn finish(&mut self, dir: &dyn EngineDirectory, now: Timestamp) -> Step {
        for action in self.detectors.drain_actions() {
            self.book.handle_detection(action, now);
        }
        let mut step = Step::default();
        while let Some(event) = self.book.poll_event() {
            match step.changes.record_book_event(event) {
                None => {}
                Some(AfterCommit::StartEscalation(id)) => {
                    let Some(alert) = self.book.get(id) else {
                        // Closed within this very step (auto-closed): nobody to page.
                        continue;
                    };
                    let chains = dir.escalation(&alert.site);
                    let policy = chains.for_kind(alert.key.kind);
                    if !policy.escalates(alert.severity) {
                        continue;
                    }
                    let (task, actions) = EscalationTask::start(alert, policy, dir, now);
                    step.changes.start(task, actions);
                }
                Some(AfterCommit::Downlink(frame)) => {
                    let topics = self.downlink_topics(&frame.device_id, dir);
                    for topic in topics {
                        step.downlinks.push(Downlink {
                            topic,
                            frame: frame.clone(),
                        });
                    }
                }
            }
        }
        step
    }

    /// Where a downlink for `device` goes: back through the gateway it was last heard
    /// through; else through each gateway of its site (a gateway refuses boards it does not
    /// serve); else straight to the board's own topic.
    pub fn downlink_topics(&self, device: &DeviceId, dir: &dyn EngineDirectory) -> Vec<String> {
        let topic = |t: Topic| t.to_topic_string().as_str().to_owned();
        if let Some((site, gateway)) = self.via.get(device) {
            return vec![topic(Topic::GatewayDown {
                site: site.clone(),
                gateway: gateway.clone(),
            })];
        }
        let site = dir.device(device).map(|d| d.site_id.clone());
        let gateways: Vec<String> = match &site {
            Some(site) => dir
                .gateways()
                .into_iter()
                .filter(|g| &g.site_id == site)
                .map(|g| {
                    topic(Topic::GatewayDown {
                        site: site.clone(),
                        gateway: g.id.clone(),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        if gateways.is_empty() {
            vec![topic(Topic::DeviceDown(device.clone()))]
        } else {
            gateways
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
