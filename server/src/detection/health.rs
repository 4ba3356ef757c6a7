//! Device health for one site: boards offline, low battery, tamper, and the gateway offline.
//!
//! - A board is offline after two missed heartbeats plus a grace period (per board kind);
//!   any frame from it, a will saying it is online, or its gateway listing it counts as life.
//!   A will saying it went offline makes it offline at once.
//! - While a gateway is offline its site gets **one** `gateway_offline` alert; its boards'
//!   own offline alerts are suppressed (they cannot report through a dead gateway). When the
//!   gateway returns, a board that still says nothing gets one heartbeat interval plus grace
//!   to be heard through it before its own alert is raised.
//! - Low battery below the board kind's threshold, cleared 100 mV above it (no flapping).
//! - Tamper from the meter's flag; cleared when the flag drops (the operator closes it).

use std::collections::VecDeque;
use std::sync::Arc;

use vigil_protocol::{DeviceState, GatewayStatus, Heartbeat, MeterReading, UplinkBody};

use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
use crate::detection::action::{
    details, AlertKey, ClearReason, Details, DetectorAction, FrameContext,
};
use crate::ids::{DeviceId, GatewayId, SiteId};

mod config;
pub use config::{BoardKind, BoardProfile, HealthConfig};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct BoardHealth {
    device: DeviceId,
    kind: BoardKind,
    /// The gateway it reports through; `None` means any gateway of the site.
    gateway: Option<GatewayId>,
    last_seen: Timestamp,
    /// Set when its gateway came back: the board gets a fresh interval from here.
    rewatch_from: Option<Timestamp>,
    offline: bool,
    /// Offline while its gateway was offline: no alert of its own.
    suppressed: bool,
    battery_low: bool,
    battery_at: Option<Timestamp>,
    tamper: bool,
    tamper_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct GatewayHealth {
    gateway: GatewayId,
    last_seen: Timestamp,
    offline: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthCounters {
    pub unknown_devices: u64,
    pub unknown_gateways: u64,
    /// Status reports naming another site than this detector's.
    pub wrong_site: u64,
    pub suppressed_offline: u64,
}

/// The detector's whole state, serialisable so it survives a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthState {
    site: SiteId,
    boards: Vec<BoardHealth>,
    gateways: Vec<GatewayHealth>,
    pub counters: HealthCounters,
}

/// A site's device health at a glance, for the facility manager and the supervision board.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealthStatus {
    pub boards: usize,
    pub offline: Vec<DeviceId>,
    /// Not heard from while their gateway is offline (no alert of their own).
    pub unreachable: Vec<DeviceId>,
    pub low_battery: Vec<DeviceId>,
    pub tampered: Vec<DeviceId>,
    pub gateways_offline: Vec<GatewayId>,
}

#[derive(Debug)]
pub struct HealthDetector {
    /// Shared by the detectors of every site on the same settings.
    config: Arc<HealthConfig>,
    state: HealthState,
    actions: VecDeque<DetectorAction>,
}

impl HealthDetector {
    pub fn new(config: impl Into<Arc<HealthConfig>>, site: SiteId) -> Self {
        let state = HealthState {
            site,
            boards: Vec::new(),
            gateways: Vec::new(),
            counters: HealthCounters::default(),
        };
        Self::restore(config, state)
    }

    pub fn restore(config: impl Into<Arc<HealthConfig>>, state: HealthState) -> Self {
        Self {
            config: config.into(),
            state,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &HealthState {
        &self.state
    }

    pub fn status(&self) -> HealthStatus {
        let boards = &self.state.boards;
        let pick = |f: fn(&BoardHealth) -> bool| -> Vec<DeviceId> {
            boards
                .iter()
                .filter(|b| f(b))
                .map(|b| b.device.clone())
                .collect()
        };
        HealthStatus {
            boards: boards.len(),
            offline: pick(|b| b.offline),
            unreachable: pick(|b| b.suppressed),
            low_battery: pick(|b| b.battery_low),
            tampered: pick(|b| b.tamper),
            gateways_offline: self
                .state
                .gateways
                .iter()
                .filter(|g| g.offline)
                .map(|g| g.gateway.clone())
                .collect(),
        }
    }

    pub fn poll_action(&mut self) -> Option<DetectorAction> {
        let action = self.actions.pop_front();
        if action.is_none() {
            // Outputs are rare; a drained queue should not keep its buffer for every subject.
            self.actions = VecDeque::new();
        }
        action
    }

    /// Starts watching a board; it has a full interval from `now` to be heard.
    pub fn register_device(
        &mut self,
        device: DeviceId,
        kind: BoardKind,
        gateway: Option<GatewayId>,
        now: Timestamp,
    ) {
        if let Some(b) = self.state.boards.iter_mut().find(|b| b.device == device) {
            b.kind = kind;
            b.gateway = gateway;
            return;
        }
        // Sites have a handful of boards and rarely gain one: no spare capacity per site.
        self.state.boards.reserve_exact(1);
        self.state.boards.push(BoardHealth {
            device,
            kind,
            gateway,
            last_seen: now,
            rewatch_from: None,
            offline: false,
            suppressed: false,
            battery_low: false,
            battery_at: None,
            tamper: false,
            tamper_at: None,
        });
    }

    pub fn register_gateway(&mut self, gateway: GatewayId, now: Timestamp) {
        if self.state.gateways.iter().any(|g| g.gateway == gateway) {
            return;
        }
        self.state.gateways.reserve_exact(1);
        self.state.gateways.push(GatewayHealth {
            gateway,
            last_seen: now,
            offline: false,
        });
    }

    fn board_deadline(&self, b: &BoardHealth) -> Timestamp {
        let p = self.config.profile(b.kind);
        let missed = b.last_seen + p.heartbeat_interval * 2 + self.config.grace;
        match b.rewatch_from {
            Some(t) => missed.max(t + p.heartbeat_interval + self.config.grace),
            None => missed,
        }
    }

    fn gateway_deadline(&self, g: &GatewayHealth) -> Timestamp {
        g.last_seen + self.config.gateway_interval * 2 + self.config.gateway_grace
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        let boards = self
            .state
            .boards
            .iter()
            .filter(|b| !b.offline && !b.suppressed)
            .map(|b| self.board_deadline(b));
        let gateways = self
            .state
            .gateways
            .iter()
            .filter(|g| !g.offline)
            .map(|g| self.gateway_deadline(g));
        boards.chain(gateways).min()
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        // Gateways first, so that a site whose gateway died gets one alert, not one per board.
        for i in 0..self.state.gateways.len() {
            let g = &self.state.gateways[i];
            if g.offline || now < self.gateway_deadline(g) {
                continue;
            }
            let at = self.gateway_deadline(g);
            let gateway = g.gateway.clone();
            self.state.gateways[i].offline = true;
            let behind = self
                .state
                .boards
                .iter()
                .filter(|b| b.gateway.as_ref().is_none_or(|x| x == &gateway))
                .count();
            let d = details([
                ("last_seen", self.state.gateways[i].last_seen.to_string()),
                ("boards_behind_it", behind.to_string()),
            ]);
            self.raise(
                Subject::Gateway(gateway),
                AlertKind::GatewayOffline,
                Severity::Major,
                at,
                d,
            );
        }
        for i in 0..self.state.boards.len() {
            let b = &self.state.boards[i];
            if b.offline || b.suppressed || now < self.board_deadline(b) {
                continue;
            }
            let at = self.board_deadline(b);
            self.mark_offline(i, at, "heartbeats_missed");
        }
    }

    fn gateway_down_for(&self, b: &BoardHealth) -> bool {
        self.state
            .gateways
            .iter()
            .any(|g| g.offline && b.gateway.as_ref().is_none_or(|x| x == &g.gateway))
    }

    fn mark_offline(&mut self, i: usize, at: Timestamp, why: &str) {
        if self.gateway_down_for(&self.state.boards[i]) {
            self.state.boards[i].suppressed = true;
            self.state.counters.suppressed_offline += 1;
            return;
        }
        let b = &mut self.state.boards[i];
        b.offline = true;
        let d = details([
            ("last_seen", b.last_seen.to_string()),
            ("reason", why.to_owned()),
        ]);
        let subject = Subject::Device(b.device.clone());
        self.raise(subject, AlertKind::DeviceOffline, Severity::Minor, at, d);
    }

    fn board_index(&mut self, device: &DeviceId) -> Option<usize> {
        let i = self.state.boards.iter().position(|b| &b.device == device);
        if i.is_none() {
            self.state.counters.unknown_devices += 1;
        }
        i
    }

    /// Any uplink frame: the driver feeds every frame here (and calls, falls, fire reports
    /// and meter readings to their own detectors as well).
    pub fn handle_uplink(&mut self, ctx: &FrameContext, body: &UplinkBody, now: Timestamp) {
        let device = &ctx.frame.device;
        match body {
            UplinkBody::Heartbeat(hb) => self.handle_heartbeat(device, hb, ctx.occurred_at, now),
            UplinkBody::Meter(m) => self.handle_meter(device, m, ctx.occurred_at, now),
            UplinkBody::Button(_) | UplinkBody::Fall(_) | UplinkBody::Fire(_) => {
                self.handle_frame(device, ctx.occurred_at, now)
            }
        }
    }

    /// Any frame from the board: it is alive at `occurred_at`.
    pub fn handle_frame(&mut self, device: &DeviceId, occurred_at: Timestamp, now: Timestamp) {
        self.handle_timeout(now);
        if let Some(i) = self.board_index(device) {
            self.seen(i, occurred_at.min(now), now);
        }
    }

    fn seen(&mut self, i: usize, at: Timestamp, now: Timestamp) {
        let b = &mut self.state.boards[i];
        b.last_seen = b.last_seen.max(at);
        b.suppressed = false;
        if b.offline {
            b.offline = false;
            let subject = Subject::Device(b.device.clone());
            let d = details([("seen_at", at.to_string())]);
            self.clear(
                subject,
                AlertKind::DeviceOffline,
                now,
                ClearReason::BackOnline,
                d,
            );
        }
    }

    pub fn handle_heartbeat(
        &mut self,
        device: &DeviceId,
        hb: &Heartbeat,
        occurred_at: Timestamp,
        now: Timestamp,
    ) {
        self.handle_timeout(now);
        // A board whose clock runs ahead must not make every later report look stale.
        let occurred_at = occurred_at.min(now);
        if let Some(i) = self.board_index(device) {
            self.seen(i, occurred_at, now);
            self.battery(i, hb.battery_mv, occurred_at);
        }
    }

    pub fn handle_meter(
        &mut self,
        device: &DeviceId,
        m: &MeterReading,
        occurred_at: Timestamp,
        now: Timestamp,
    ) {
        self.handle_timeout(now);
        let Some(i) = self.board_index(device) else {
            return;
        };
        let occurred_at = occurred_at.min(now);
        self.seen(i, occurred_at, now);
        self.battery(i, m.battery_mv, occurred_at);
        let b = &mut self.state.boards[i];
        if b.tamper_at.is_some_and(|t| occurred_at < t) || b.tamper == m.tamper {
            b.tamper_at = Some(b.tamper_at.map_or(occurred_at, |t| t.max(occurred_at)));
            return;
        }
        b.tamper_at = Some(occurred_at);
        b.tamper = m.tamper;
        let subject = Subject::Device(b.device.clone());
        if m.tamper {
            let d = details([("tamper_at", occurred_at.to_string())]);
            self.raise(subject, AlertKind::Tamper, Severity::Major, occurred_at, d);
        } else {
            let d = details([("tamper_cleared_at", occurred_at.to_string())]);
            self.clear(
                subject,
                AlertKind::Tamper,
                occurred_at,
                ClearReason::ReturnedToNormal,
                d,
            );
        }
    }

    fn battery(&mut self, i: usize, mv: u16, at: Timestamp) {
        let threshold = self
            .config
            .profile(self.state.boards[i].kind)
            .low_battery_mv;
        let restore = threshold.saturating_add(self.config.battery_hysteresis_mv);
        let b = &mut self.state.boards[i];
        if b.battery_at.is_some_and(|t| at < t) {
            return;
        }
        b.battery_at = Some(at);
        let crosses = (!b.battery_low && mv < threshold) || (b.battery_low && mv >= restore);
        if !crosses {
            return;
        }
        let d = details([
            ("battery_mv", mv.to_string()),
            ("threshold_mv", threshold.to_string()),
        ]);
        let subject = Subject::Device(b.device.clone());
        if !b.battery_low && mv < threshold {
            b.battery_low = true;
            self.raise(subject, AlertKind::LowBattery, Severity::Warning, at, d);
        } else if b.battery_low && mv >= restore {
            b.battery_low = false;
            self.clear(
                subject,
                AlertKind::LowBattery,
                at,
                ClearReason::BatteryRestored,
                d,
            );
        }
    }

    /// A board's retained online state (its MQTT will says `online: false`).
    pub fn handle_device_state(&mut self, state: &DeviceState, now: Timestamp) {
        self.handle_timeout(now);
        let Some(i) = self.board_index(&state.device_id) else {
            return;
        };
        if state.online {
            self.seen(i, now, now);
        } else if !self.state.boards[i].offline && !self.state.boards[i].suppressed {
            self.mark_offline(i, now, "connection_lost");
        }
    }

    pub fn handle_gateway_status(&mut self, status: &GatewayStatus, now: Timestamp) {
        self.handle_timeout(now);
        if status.site_id != self.state.site {
            self.state.counters.wrong_site += 1;
            return;
        }
        let Some(gi) = self
            .state
            .gateways
            .iter()
            .position(|g| g.gateway == status.gateway_id)
        else {
            self.state.counters.unknown_gateways += 1;
            return;
        };
        let g = &mut self.state.gateways[gi];
        g.last_seen = g.last_seen.max(now);
        if g.offline {
            g.offline = false;
            let gateway = g.gateway.clone();
            for b in self.state.boards.iter_mut() {
                if b.suppressed && b.gateway.as_ref().is_none_or(|x| x == &gateway) {
                    b.suppressed = false;
                    b.rewatch_from = Some(now);
                }
            }
            let d = details([("back_at", now.to_string())]);
            self.clear(
                Subject::Gateway(gateway),
                AlertKind::GatewayOffline,
                now,
                ClearReason::BackOnline,
                d,
            );
        }
        for board in &status.boards {
            if let Some(i) = self
                .state
                .boards
                .iter()
                .position(|b| b.device == board.device_id)
            {
                self.seen(i, Timestamp::from_unix_ms(board.last_seen_ms).min(now), now);
            }
        }
    }

    fn raise(
        &mut self,
        subject: Subject,
        kind: AlertKind,
        severity: Severity,
        at: Timestamp,
        details: Details,
    ) {
        self.actions.push_back(DetectorAction::Raise {
            site: self.state.site.clone(),
            key: AlertKey::new(subject, kind),
            severity,
            at,
            origin: None,
            details,
        });
    }

    fn clear(
        &mut self,
        subject: Subject,
        kind: AlertKind,
        at: Timestamp,
        reason: ClearReason,
        details: Details,
    ) {
        self.actions.push_back(DetectorAction::Clear {
            site: self.state.site.clone(),
            key: AlertKey::new(subject, kind),
            at,
            reason,
            details,
        });
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
