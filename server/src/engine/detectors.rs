//! Every detector instance of the engine, their timers, and their persisted state (sans-IO).
//!
//! - one [`CallDetector`] per subject (the resident, else the pendant);
//! - one [`FireDetector`] and one [`HealthDetector`] per site;
//! - one [`WaterDetector`] per household meter.
//!
//! Detectors are created on first use. The registry registers every device and gateway with
//! its site's health detector ([`DetectorSet::sync_registry`]), so a board never heard goes
//! offline on time. Timers live in one [`DeadlineQueue`]: a tick costs the due detectors, not
//! a scan of all of them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use vigil_protocol::{DeviceState, GatewayStatus, UplinkBody};

use super::directory::EngineDirectory;
use super::router::{RoutedFrame, WaterRoute};
use super::timers::DeadlineQueue;
use crate::alerts::{Subject, Timestamp};
use crate::detection::action::{details, AlertKey, ClearReason, DetectorAction};
use crate::detection::call::{CallConfig, CallDetector, CallState};
use crate::detection::fire::{FireConfig, FireDetector, FireState};
use crate::detection::health::{BoardKind, HealthConfig, HealthDetector, HealthState};
use crate::detection::water::{WaterAction, WaterDetector, WaterRules};
use crate::ids::{DeviceId, SiteId};
use crate::registry::DeviceKind;

/// The thresholds every site gets (per-site settings are not in the registry yet).
#[derive(Debug, Clone, Default)]
pub struct DetectionConfig {
    pub call: CallConfig,
    pub fire: FireConfig,
    /// Shared by every site's health detector.
    pub health: Arc<HealthConfig>,
    pub water: Arc<WaterRules>,
}

/// One detector instance.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKey {
    Call(Subject),
    Fire(SiteId),
    Health(SiteId),
    Water(DeviceId),
}

impl DetectorKey {
    /// The key a persisted state is stored under.
    pub fn storage_key(&self) -> String {
        // Ids are restricted to `A-Z a-z 0-9 . _ -`, so the JSON form is unambiguous.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse_storage_key(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// The persisted state of the detectors that carry timers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "detector", content = "state", rename_all = "snake_case")]
pub enum DetectorState {
    Call(CallState),
    Fire(FireState),
    Health(HealthState),
}

/// Inputs that changed nothing or could not be used, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorCounters {
    pub water_rejected: u64,
    pub water_suppressed_away: u64,
    pub unknown_states: u64,
    pub corrupt_states: u64,
}

struct WaterHousehold {
    detector: WaterDetector,
    site: SiteId,
    subject: Subject,
    away_until: Option<DateTime<Utc>>,
}

pub struct DetectorSet {
    config: DetectionConfig,
    calls: HashMap<Subject, CallDetector>,
    fires: HashMap<SiteId, FireDetector>,
    health: HashMap<SiteId, HealthDetector>,
    water: HashMap<DeviceId, WaterHousehold>,
    timers: DeadlineQueue<DetectorKey>,
    /// Detectors whose persisted state changed since the last [`Self::take_changed_states`].
    changed: BTreeSet<DetectorKey>,
    actions: Vec<DetectorAction>,
    counters: DetectorCounters,
}

fn to_datetime(t: Timestamp) -> DateTime<Utc> {
    let ms = i64::try_from(t.unix_ms()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix_ms(u64::try_from(t.timestamp_millis()).unwrap_or(0))
}

pub fn board_kind(kind: DeviceKind) -> BoardKind {
    match kind {
        DeviceKind::Meter => BoardKind::Meter,
        DeviceKind::Pendant => BoardKind::Pendant,
        DeviceKind::FireNode => BoardKind::FireNode,
    }
}

impl DetectorSet {
    pub fn new(config: DetectionConfig) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            fires: HashMap::new(),
            health: HashMap::new(),
            water: HashMap::new(),
            timers: DeadlineQueue::new(),
            changed: BTreeSet::new(),
            actions: Vec::new(),
            counters: DetectorCounters::default(),
        }
    }

    pub fn counters(&self) -> &DetectorCounters {
        &self.counters
    }

    /// Detectors alive, per kind: (calls, fires, health, water).
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.calls.len(),
            self.fires.len(),
            self.health.len(),
            self.water.len(),
        )
    }

    /// What the detectors decided since the last call.
    pub fn drain_actions(&mut self) -> Vec<DetectorAction> {
        std::mem::take(&mut self.actions)
    }

    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        self.timers.next_deadline()
    }

    /// Feeds one placed frame to its detectors.
    pub fn handle_frame(&mut self, routed: &RoutedFrame, body: &UplinkBody, now: Timestamp) {
        let ctx = &routed.ctx;
        match body {
            UplinkBody::Button(b) => {
                if let Some(subject) = &routed.call {
                    let key = DetectorKey::Call(subject.clone());
                    let config = &self.config.call;
                    let d = self
                        .calls
                        .entry(subject.clone())
                        .or_insert_with(|| CallDetector::new(config.clone()));
                    d.handle_button(ctx, b, now);
                    self.after(key);
                }
            }
            UplinkBody::Fall(f) => {
                if let Some(subject) = &routed.call {
                    let key = DetectorKey::Call(subject.clone());
                    let config = &self.config.call;
                    let d = self
                        .calls
                        .entry(subject.clone())
                        .or_insert_with(|| CallDetector::new(config.clone()));
                    d.handle_fall(ctx, f, now);
                    self.after(key);
                }
            }
            UplinkBody::Fire(report) => {
                let config = &self.config.fire;
                let d = self
                    .fires
                    .entry(ctx.site.clone())
                    .or_insert_with(|| FireDetector::new(config.clone(), ctx.site.clone()));
                d.handle_report(ctx, report, now);
                self.after(DetectorKey::Fire(ctx.site.clone()));
            }
            UplinkBody::Meter(_) => {
                if let Some(w) = &routed.water {
                    self.handle_water(&ctx.site, w, now);
                }
            }
            UplinkBody::Heartbeat(_) => {}
        }
        let health = self.health_of(&ctx.site);
        health.register_device(
            ctx.frame.device.clone(),
            board_kind(routed.device_kind),
            None,
            ctx.occurred_at.min(now),
        );
        health.handle_uplink(ctx, body, now);
        self.after(DetectorKey::Health(ctx.site.clone()));
    }

    fn health_of(&mut self, site: &SiteId) -> &mut HealthDetector {
        let config = &self.config.health;
        self.health
            .entry(site.clone())
            .or_insert_with(|| HealthDetector::new(config.clone(), site.clone()))
    }

    fn handle_water(&mut self, site: &SiteId, w: &WaterRoute, now: Timestamp) {
        let rules = &self.config.water;
        let household = self
            .water
            .entry(w.meter.clone())
            .or_insert_with(|| WaterHousehold {
                detector: new_water(rules, w.timezone, w.away_until),
                site: site.clone(),
                subject: w.subject.clone(),
                away_until: w.away_until,
            });
        household.site = site.clone();
        household.subject = w.subject.clone();
        if household.away_until != w.away_until {
            household.away_until = w.away_until;
            household.detector.set_away_until(w.away_until);
        }
        let now_dt = to_datetime(now);
        for (minute, litres) in &w.minutes {
            if let Err(e) = household.detector.handle_reading(*minute, *litres, now_dt) {
                self.counters.water_rejected += 1;
                tracing::debug!(meter = %w.meter, error = %e, "water reading not used");
            }
        }
        household.detector.handle_timeout(now_dt);
        self.after(DetectorKey::Water(w.meter.clone()));
    }

    /// A board's retained online state (its MQTT will).
    pub fn handle_device_state(&mut self, site: &SiteId, state: &DeviceState, now: Timestamp) {
        self.health_of(site).handle_device_state(state, now);
        self.after(DetectorKey::Health(site.clone()));
    }

    /// A gateway's periodic status report.
    pub fn handle_gateway_status(&mut self, status: &GatewayStatus, now: Timestamp) {
        let site = status.site_id.clone();
        self.health_of(&site).handle_gateway_status(status, now);
        self.after(DetectorKey::Health(site));
    }

    /// Registers every device and gateway of the registry with its site's health detector
    /// (new ones get a full interval from `now` to be heard), and applies "away until"
    /// changes to the water detectors.
    pub fn sync_registry(&mut self, dir: &dyn EngineDirectory, now: Timestamp) {
        let mut touched = BTreeSet::new();
        for device in dir.devices() {
            let kind = board_kind(device.kind);
            self.health_of(&device.site_id)
                .register_device(device.id.clone(), kind, None, now);
            touched.insert(device.site_id.clone());
            if let Some(household) = self.water.get_mut(&device.id) {
                let away = device
                    .resident_id
                    .as_ref()
                    .and_then(|r| dir.resident(r))
                    .and_then(|r| r.away_until);
                if household.away_until != away {
                    household.away_until = away;
                    household.detector.set_away_until(away);
                    household.detector.handle_timeout(to_datetime(now));
                    self.after(DetectorKey::Water(device.id.clone()));
                }
            }
        }
        for gateway in dir.gateways() {
            self.health_of(&gateway.site_id)
                .register_gateway(gateway.id.clone(), now);
            touched.insert(gateway.site_id.clone());
        }
        for site in touched {
            self.after(DetectorKey::Health(site));
        }
    }

    /// Puts back a water detector rebuilt from stored readings.
    pub fn insert_water(
        &mut self,
        meter: DeviceId,
        site: SiteId,
        subject: Subject,
        away_until: Option<DateTime<Utc>>,
        detector: WaterDetector,
    ) {
        self.water.insert(
            meter.clone(),
            WaterHousehold {
                detector,
                site,
                subject,
                away_until,
            },
        );
        self.after(DetectorKey::Water(meter));
    }

    /// Advances every detector due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(key) = self.timers.pop_due(now) {
            match &key {
                DetectorKey::Call(s) => {
                    if let Some(d) = self.calls.get_mut(s) {
                        d.handle_timeout(now);
                    }
                }
                DetectorKey::Fire(s) => {
                    if let Some(d) = self.fires.get_mut(s) {
                        d.handle_timeout(now);
                    }
                }
                DetectorKey::Health(s) => {
                    if let Some(d) = self.health.get_mut(s) {
                        d.handle_timeout(now);
                    }
                }
                DetectorKey::Water(m) => {
                    if let Some(h) = self.water.get_mut(m) {
                        h.detector.handle_timeout(to_datetime(now));
                    }
                }
            }
            self.after(key);
        }
    }

    /// Drains a detector's outputs and schedules its next deadline.
    fn after(&mut self, key: DetectorKey) {
        let deadline = match &key {
            DetectorKey::Call(s) => self.calls.get_mut(s).and_then(|d| {
                self.actions.extend(std::iter::from_fn(|| d.poll_action()));
                self.changed.insert(key.clone());
                d.next_deadline()
            }),
            DetectorKey::Fire(s) => self.fires.get_mut(s).and_then(|d| {
                self.actions.extend(std::iter::from_fn(|| d.poll_action()));
                self.changed.insert(key.clone());
                d.next_deadline()
            }),
            DetectorKey::Health(s) => self.health.get_mut(s).and_then(|d| {
                self.actions.extend(std::iter::from_fn(|| d.poll_action()));
                self.changed.insert(key.clone());
                d.next_deadline()
            }),
            DetectorKey::Water(m) => match self.water.get_mut(m) {
                Some(h) => {
                    while let Some(a) = h.detector.poll_action() {
                        match water_action(&h.site, &h.subject, a) {
                            Some(action) => self.actions.push(action),
                            None => self.counters.water_suppressed_away += 1,
                        }
                    }
                    h.detector.next_deadline().map(to_timestamp)
                }
                None => None,
            },
        };
        self.timers.schedule(key, deadline);
    }

    /// The persisted states that changed since the last call (water detectors are rebuilt
    /// from the stored readings instead).
    pub fn take_changed_states(&mut self) -> Vec<(DetectorKey, DetectorState)> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .filter_map(|key| {
                let state = match &key {
                    DetectorKey::Call(s) => DetectorState::Call(self.calls.get(s)?.state().clone()),
                    DetectorKey::Fire(s) => DetectorState::Fire(self.fires.get(s)?.state().clone()),
                    DetectorKey::Health(s) => {
                        DetectorState::Health(self.health.get(s)?.state().clone())
                    }
                    DetectorKey::Water(_) => return None,
                };
                Some((key, state))
            })
            .collect()
    }

    /// Saves `key` again at the next round (its last save failed).
    pub fn mark_changed(&mut self, key: DetectorKey) {
        self.changed.insert(key);
    }

    /// Restores one persisted detector; its deadlines (also ones that passed while the
    /// server was down) fire at the next [`Self::handle_timeout`].
    pub fn restore(&mut self, key: DetectorKey, state: DetectorState) {
        match (&key, state) {
            (DetectorKey::Call(s), DetectorState::Call(st)) => {
                self.calls.insert(
                    s.clone(),
                    CallDetector::restore(self.config.call.clone(), st),
                );
            }
            (DetectorKey::Fire(s), DetectorState::Fire(st)) => {
                self.fires.insert(
                    s.clone(),
                    FireDetector::restore(self.config.fire.clone(), st),
                );
            }
            (DetectorKey::Health(s), DetectorState::Health(st)) => {
                self.health.insert(
                    s.clone(),
                    HealthDetector::restore(self.config.health.clone(), st),
                );
            }
            (
                DetectorKey::Call(_)
                | DetectorKey::Fire(_)
                | DetectorKey::Health(_)
                | DetectorKey::Water(_),
                _,
            ) => {
                self.counters.corrupt_states += 1;
                return;
            }
        }
        self.after(key.clone());
        // Restoring is not a change to save again.
        self.changed.remove(&key);
    }

    /// Restores a state read from the store by its storage key and JSON text.
    pub fn restore_stored(&mut self, key: &str, json: &str) {
        let Some(key) = DetectorKey::parse_storage_key(key) else {
            self.counters.unknown_states += 1;
            return;
        };
        match serde_json::from_str::<DetectorState>(json) {
            Ok(state) => self.restore(key, state),
            Err(e) => {
                self.counters.corrupt_states += 1;
                tracing::warn!(key = ?key, error = %e, "stored detector state not readable; starting it afresh");
            }
        }
    }
}

fn new_water(rules: &Arc<WaterRules>, tz: Tz, away: Option<DateTime<Utc>>) -> WaterDetector {
    let mut d = WaterDetector::new(Arc::clone(rules), tz);
    d.set_away_until(away);
    d
}

/// A water detector's output as an alert action; `None` for a rule held back while away.
fn water_action(site: &SiteId, subject: &Subject, action: WaterAction) -> Option<DetectorAction> {
    match action {
        WaterAction::Raise {
            kind,
            severity,
            at,
            suppressed_while_away_until,
        } => {
            let d = match suppressed_while_away_until {
                Some(until) => details([("suppressed_while_away_until", until.to_rfc3339())]),
                None => details([]),
            };
            Some(DetectorAction::Raise {
                site: site.clone(),
                key: AlertKey::new(subject.clone(), kind),
                severity,
                at: to_timestamp(at),
                origin: None,
                details: d,
            })
        }
        WaterAction::Clear { kind, at } => Some(DetectorAction::Clear {
            site: site.clone(),
            key: AlertKey::new(subject.clone(), kind),
            at: to_timestamp(at),
            reason: ClearReason::ReturnedToNormal,
            details: details([]),
        }),
        WaterAction::Suppressed { .. } => None,
    }
}
