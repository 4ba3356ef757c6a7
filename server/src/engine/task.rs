//! The engine task: one tokio task owns the [`EngineCore`]; frames, status messages and
//! operator actions come in through one bounded channel, so ingest's
//! [`FrameSink::committed`] waits when the engine is behind (backpressure, never loss).
//!
//! Each input is one step: decide (sans-IO), commit the step's [`ChangeSet`] in one
//! transaction, and only then publish on the live feed, notify, and send downlinks. A commit
//! that fails for a transient reason is retried with backoff (the task waits, and with it
//! ingest); one the store refuses for good is logged and counted.
//!
//! Alert ids come from the store in blocks ([`AlertStore::reserve_alert_ids`]), never from a
//! count of this instance's own, so that instances sharing one database never collide: one
//! block at start, the next before a step once fewer than half a block is left, and more
//! within a step whose raises found the book short (they wait in the book meanwhile and are
//! committed with that step).

// The driver reads the clock once per step and passes it to the cores.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vigil_protocol::{DeviceState, GatewayStatus};

use super::actions::{ActionError, ActionRequest, AlertActions};
use super::core::{Downlink, EngineCore, Step};
use super::detectors::DetectionConfig;
use super::dispatch::dispatch;
use super::escalation_loop::{run_escalation_loop, EscalationLoop};
use super::outputs::Outputs;
use super::rebuild::rebuild_water;
use super::source::DirectorySource;
use crate::alert_store::{AlertStore, AlertStoreError, AnyAlertStore, Applied, ChangeSet};
use crate::alerts::book::help_coming;
use crate::alerts::lifecycle::{Alert, AlertPolicy, AlertState};
use crate::alerts::Timestamp;
use crate::ingest::FrameSink;
use crate::store::{IncomingFrame, SharedStore};

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Reads the server's clock.
pub type EngineClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> EngineClock {
    Arc::new(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp::from_unix_ms(ms)
    })
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Inputs waiting for the engine before senders wait.
    pub inbox: usize,
    /// The engine wakes at least this often even with no deadline due.
    pub max_sleep: Duration,
    /// How often changed detector states are saved (and at shutdown).
    pub save_states_every: Duration,
    /// How often the escalation loop looks for due tiers.
    pub escalation_poll: Duration,
    /// Due tiers claimed per round.
    pub claim_limit: u32,
    /// How long a claimed tier is this instance's alone.
    pub claim_lease: Duration,
    /// Days of stored meter readings replayed into the water detectors at start.
    pub water_history_days: u32,
    /// Alert ids reserved from the store at a time.
    pub alert_id_block: u32,
    pub detection: DetectionConfig,
    pub alert_policy: AlertPolicy,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            inbox: 1024,
            max_sleep: Duration::from_secs(1),
            save_states_every: Duration::from_secs(5),
            escalation_poll: Duration::from_secs(1),
            claim_limit: 50,
            claim_lease: Duration::from_secs(30),
            water_history_days: 29,
            alert_id_block: 32,
            detection: DetectionConfig::default(),
            alert_policy: AlertPolicy::default(),
        }
    }
}

/// What the engine is plugged into.
pub struct EngineParts {
    pub alerts: AnyAlertStore,
    /// The telemetry store, to rebuild water detectors from recent readings.
    pub telemetry: Option<SharedStore>,
    pub directory: Arc<dyn DirectorySource>,
    pub outputs: Outputs,
    /// Where "help is coming" goes (the MQTT publisher); `None` drops them, counted.
    pub downlinks: Option<mpsc::Sender<Downlink>>,
    pub clock: EngineClock,
}

/// Running totals, readable while the engine runs.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub frames: AtomicU64,
    pub steps_committed: AtomicU64,
    pub commit_errors: AtomicU64,
    pub steps_lost: AtomicU64,
    pub notifications: AtomicU64,
    pub downlinks: AtomicU64,
    pub downlinks_dropped: AtomicU64,
    pub tiers_completed: AtomicU64,
    pub tiers_superseded: AtomicU64,
    /// Blocks of alert ids reserved from the store.
    pub alert_id_blocks: AtomicU64,
    /// Reservations of alert ids that failed (each retry counts).
    pub alert_id_errors: AtomicU64,
}

impl EngineStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(super) fn add_pub(counter: &AtomicU64, n: u64) {
        Self::add(counter, n);
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub(super) enum Command {
    Frames(Vec<IncomingFrame>),
    DeviceState(DeviceState),
    GatewayStatus(Box<GatewayStatus>),
    Act {
        request: ActionRequest,
        reply: oneshot::Sender<Result<Alert, ActionError>>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Frames(v) => write!(f, "Frames({})", v.len()),
            Self::DeviceState(s) => write!(f, "DeviceState({})", s.device_id),
            Self::GatewayStatus(s) => write!(f, "GatewayStatus({})", s.gateway_id),
            Self::Act { request, .. } => write!(f, "Act({:?})", request),
        }
    }
}

/// The running engine's handle: the ingest sink, the status inputs, the actions.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub fn actions(&self) -> AlertActions {
        AlertActions {
            tx: self.tx.clone(),
        }
    }

    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// A board's online state (its MQTT will).
    pub async fn device_state(&self, state: DeviceState) {
        let _ = self.tx.send(Command::DeviceState(state)).await;
    }

    /// A gateway's status report.
    pub async fn gateway_status(&self, status: GatewayStatus) {
        let _ = self.tx.send(Command::GatewayStatus(Box::new(status))).await;
    }
}

#[async_trait]
impl FrameSink for EngineHandle {
    async fn committed(&self, frames: Vec<IncomingFrame>) {
        if frames.is_empty() {
            return;
        }
        if self.tx.send(Command::Frames(frames)).await.is_err() {
            metrics::counter!("vigil_engine_frames_dropped_total").increment(1);
            tracing::error!("alert engine stopped: committed frames are not analysed");
        }
    }
}

/// Starts the engine: rebuilds its state from the stores, then runs the engine task and the
/// escalation loop until `shutdown` resolves.
pub async fn start(
    parts: EngineParts,
    settings: EngineSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(EngineHandle, JoinHandle<()>), AlertStoreError> {
    let now = (parts.clock)();
    let snapshot = parts.alerts.book_snapshot().await?;
    let open = snapshot.open.len();
    let mut core = EngineCore::restore(
        settings.detection.clone(),
        settings.alert_policy.clone(),
        snapshot,
    );
    // A fresh block, never "the stored maximum + 1": another instance on the same database
    // may be raising alerts too. Ids left unspent by the previous run stay unused.
    let ids = parts
        .alerts
        .reserve_alert_ids(settings.alert_id_block.max(1))
        .await?;
    let states = parts.alerts.detector_states().await?;
    let restored = states.len();
    for (key, json) in &states {
        core.detectors().restore_stored(key, json);
    }
    let dir = parts.directory.current();
    if let Some(telemetry) = &parts.telemetry {
        rebuild_water(
            &mut core,
            telemetry,
            &*dir,
            &settings.detection,
            settings.water_history_days,
            now,
        )
        .await;
    }
    // A restored book holds no action waiting for an id: this grant has nothing to store.
    let _ = core.grant_ids(ids.clone(), &*dir, now);
    tracing::info!(
        first_alert_id = ids.start,
        alert_ids = ids.end.saturating_sub(ids.start),
        open_alerts = open,
        detector_states = restored,
        "alert engine starting"
    );
    let (tx, rx) = mpsc::channel(settings.inbox.max(1));
    let stats = Arc::new(EngineStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = EngineTask {
        core,
        store: parts.alerts.clone(),
        source: Arc::clone(&parts.directory),
        outputs: parts.outputs.clone(),
        downlinks: parts.downlinks,
        clock: Arc::clone(&parts.clock),
        stats: Arc::clone(&stats),
        settings: settings.clone(),
        stopping: stop_rx.clone(),
    };
    let escalation = EscalationLoop {
        store: parts.alerts,
        source: parts.directory,
        outputs: parts.outputs,
        clock: parts.clock,
        stats: Arc::clone(&stats),
        poll: settings.escalation_poll,
        limit: settings.claim_limit,
        lease: settings.claim_lease,
    };
    let task = tokio::spawn(async move {
        let escalation = tokio::spawn(run_escalation_loop(escalation, stop_rx.clone()));
        let mut engine_task = tokio::spawn(engine.run(rx, stop_rx));
        tokio::select! {
            () = shutdown => {}
            _ = &mut engine_task => {
                tracing::error!("alert engine task ended before shutdown");
            }
        }
        let _ = stop_tx.send(true);
        let _ = engine_task.await;
        let _ = escalation.await;
    });
    Ok((EngineHandle { tx, stats }, task))
}

struct EngineTask {
    core: EngineCore,
    store: AnyAlertStore,
    source: Arc<dyn DirectorySource>,
    outputs: Outputs,
    downlinks: Option<mpsc::Sender<Downlink>>,
    clock: EngineClock,
    stats: Arc<EngineStats>,
    settings: EngineSettings,
    stopping: watch::Receiver<bool>,
}

/// Errors a retry cannot fix: the store refuses this change set as such.
fn is_permanent(e: &AlertStoreError) -> bool {
    match e {
        AlertStoreError::AlertClosed(_)
        | AlertStoreError::OpenAlertConflict(_)
        | AlertStoreError::Corrupt { .. }
        | AlertStoreError::InvalidColumn { .. }
        | AlertStoreError::OutOfRange { .. } => true,
        AlertStoreError::Postgres(_)
        | AlertStoreError::Pool(_)
        | AlertStoreError::PoolSetup(_)
        | AlertStoreError::Sqlite(_)
        | AlertStoreError::SqliteSetup(_)
        | AlertStoreError::Migration(_)
        | AlertStoreError::Worker(_) => false,
    }
}

impl EngineTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut stop: watch::Receiver<bool>) {
        let mut changes = self.source.changes();
        let mut registry_live = true;
        let mut save = tokio::time::interval(self.settings.save_states_every);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Register every device and gateway before the first frame.
        let now = (self.clock)();
        self.keep_ids_ready(now).await;
        let dir = self.source.current();
        let step = self.core.handle_registry(&*dir, now);
        self.run_step(step, now).await;
        loop {
            let now = (self.clock)();
            let wake = match self.core.next_deadline() {
                Some(d) if d <= now => {
                    self.keep_ids_ready(now).await;
                    let dir = self.source.current();
                    let step = self.core.handle_timeout(&*dir, now);
                    self.run_step(step, now).await;
                    continue;
                }
                Some(d) => d.since(now).min(self.settings.max_sleep),
                None => self.settings.max_sleep,
            };
            tokio::select! {
                () = super::task::stopped(&mut stop) => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                changed = changes.changed(), if registry_live => {
                    if changed.is_err() {
                        registry_live = false;
                        continue;
                    }
                    let now = (self.clock)();
                    self.keep_ids_ready(now).await;
                    let dir = self.source.current();
                    let step = self.core.handle_registry(&*dir, now);
                    self.run_step(step, now).await;
                }
                _ = save.tick() => self.save_states().await,
                () = tokio::time::sleep(wake) => {}
            }
        }
        self.save_states().await;
        tracing::info!("alert engine stopped");
    }

    async fn handle(&mut self, cmd: Command) {
        let now = (self.clock)();
        self.keep_ids_ready(now).await;
        let dir = self.source.current();
        match cmd {
            Command::Frames(frames) => {
                EngineStats::add(&self.stats.frames, frames.len() as u64);
                let mut merged = Step::default();
                for f in &frames {
                    let step = self.core.handle_frame(f, &*dir, now);
                    merge(&mut merged, step);
                }
                self.run_step(merged, now).await;
            }
            Command::DeviceState(s) => {
                let step = self.core.handle_device_state(&s, &*dir, now);
                self.run_step(step, now).await;
            }
            Command::GatewayStatus(s) => {
                let step = self.core.handle_gateway_status(&s, &*dir, now);
                self.run_step(step, now).await;
            }
            Command::Act { request, reply } => {
                let result = self.act(request, now).await;
                let _ = reply.send(result);
            }
        }
    }

    async fn act(&mut self, req: ActionRequest, now: Timestamp) -> Result<Alert, ActionError> {
        let dir = self.source.current();
        if let Some(alert) = self.core.open_alert(req.alert) {
            if !req.scope.allows(&alert.site) {
                return Err(ActionError::NotFound(req.alert));
            }
            let step = self
                .core
                .handle_operator(req.alert, &req.action, req.actor, req.note, &*dir, now)
                .map_err(ActionError::Refused)?;
            let alert = step
                .changes
                .alerts
                .iter()
                .rev()
                .find(|a| a.id == req.alert)
                .cloned();
            if !self.run_step(step, now).await {
                return Err(ActionError::Unavailable(
                    "the change could not be stored".into(),
                ));
            }
            return alert.ok_or(ActionError::NotFound(req.alert));
        }
        // Closed, or opened by another instance: act on the stored copy.
        let detail = self
            .store
            .alert_detail(req.alert)
            .await
            .map_err(|e| ActionError::Unavailable(e.to_string()))?
            .ok_or(ActionError::NotFound(req.alert))?;
        let mut alert = detail.alert;
        if !req.scope.allows(&alert.site) {
            return Err(ActionError::NotFound(req.alert));
        }
        let before = alert.state;
        let record = alert
            .apply(&req.action, req.actor, req.note, now)
            .map_err(ActionError::Refused)?;
        let mut step = Step::default();
        if !before.is_closed() {
            step.changes.alerts.push(alert.clone());
        }
        step.changes.audit.push(record);
        if before == AlertState::Open && alert.state != AlertState::Open {
            step.changes.stopped.push(alert.id);
        }
        if before == AlertState::Open && alert.state == AlertState::Acknowledged {
            if let Some(frame) = help_coming(&alert) {
                for topic in self.core.downlink_topics(&frame.device_id, &*dir) {
                    step.downlinks.push(Downlink {
                        topic,
                        frame: frame.clone(),
                    });
                }
            }
        }
        if !self.run_step(step, now).await {
            return Err(ActionError::Unavailable(
                "the change could not be stored".into(),
            ));
        }
        Ok(alert)
    }

    /// Commits a step, then publishes, notifies and sends downlinks. False when the step
    /// could not be stored.
    async fn run_step(&mut self, mut step: Step, now: Timestamp) -> bool {
        if self.core.book().ids_wanted() > 0 {
            // A raise of this step found the book short of ids: it waits in the book until
            // ids are granted, and what it opens is committed with this step.
            let opened = self.grant_ids(now).await;
            merge(&mut step, opened);
        }
        if step.is_empty() {
            return true;
        }
        let Step { changes, downlinks } = step;
        let applied = if changes.is_empty() {
            Applied::default()
        } else {
            match self.commit(&changes).await {
                Some(a) => a,
                None => return false,
            }
        };
        publish(&self.outputs, &changes, &applied);
        let dir = self.source.current();
        let mut outcomes = Vec::new();
        for n in &applied.notify {
            EngineStats::add(&self.stats.notifications, 1);
            let alert = self.core.open_alert(n.alert);
            outcomes.extend(dispatch(
                n,
                alert,
                &*dir,
                self.outputs.webhooks.as_deref(),
                now,
            ));
        }
        for d in downlinks {
            self.send_downlink(d);
        }
        if !outcomes.is_empty() {
            let follow_up = ChangeSet {
                audit: outcomes,
                ..ChangeSet::default()
            };
            if let Some(applied) = self.commit(&follow_up).await {
                publish(&self.outputs, &follow_up, &applied);
            }
        }
        true
    }

    /// Tops the book up before a step: a new block once fewer than half a block is left
    /// (so a step's raises find ids), or at once when raises wait for ids.
    async fn keep_ids_ready(&mut self, now: Timestamp) {
        let block = u64::from(self.settings.alert_id_block.max(1));
        let book = self.core.book();
        if book.ids_wanted() == 0 && book.ids_left().saturating_mul(2) >= block {
            return;
        }
        let step = self.grant_ids(now).await;
        self.run_step(step, now).await;
    }

    /// Reserves a block (more if more raises wait) and grants it to the book; returns what
    /// the waiting raises opened. Empty when the store could not reserve: they keep waiting
    /// for the next step.
    async fn grant_ids(&mut self, now: Timestamp) -> Step {
        let wanted = self.core.book().ids_wanted();
        if wanted > 0 {
            metrics::counter!("vigil_engine_raises_short_of_ids_total").increment(wanted);
            tracing::warn!(
                waiting = wanted,
                "raises found no alert id left; reserving more"
            );
        }
        let block = u64::from(self.settings.alert_id_block.max(1));
        let count = u32::try_from(wanted.max(block)).unwrap_or(u32::MAX);
        let Some(ids) = self.reserve_ids(count).await else {
            return Step::default();
        };
        let dir = self.source.current();
        self.core.grant_ids(ids, &*dir, now)
    }

    /// Reserves alert ids with retries on transient errors, like a commit; `None` when the
    /// store refused for good or the server is stopping.
    async fn reserve_ids(&mut self, count: u32) -> Option<Range<u64>> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.store.reserve_alert_ids(count).await {
                Ok(ids) => {
                    EngineStats::add(&self.stats.alert_id_blocks, 1);
                    metrics::counter!("vigil_engine_alert_id_blocks_total").increment(1);
                    tracing::debug!(first = ids.start, end = ids.end, "alert ids reserved");
                    return Some(ids);
                }
                Err(e) => {
                    EngineStats::add(&self.stats.alert_id_errors, 1);
                    metrics::counter!("vigil_engine_alert_id_errors_total").increment(1);
                    if is_permanent(&e) || *self.stopping.borrow() {
                        tracing::error!(error = %e, "alert ids not reserved; new alerts wait");
                        return None;
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "reserving alert ids failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn send_downlink(&self, d: Downlink) {
        let Some(tx) = &self.downlinks else {
            EngineStats::add(&self.stats.downlinks_dropped, 1);
            tracing::warn!(device = %d.frame.device_id, "no MQTT publisher: downlink not sent");
            return;
        };
        match tx.try_send(d) {
            Ok(()) => EngineStats::add(&self.stats.downlinks, 1),
            Err(e) => {
                EngineStats::add(&self.stats.downlinks_dropped, 1);
                metrics::counter!("vigil_engine_downlinks_dropped_total").increment(1);
                tracing::error!(error = %e, "downlink queue full or closed: \"help is coming\" not sent");
            }
        }
    }

    /// Commits with retries on transient errors; `None` when the store refused it for good
    /// or the server is stopping.
    async fn commit(&mut self, changes: &ChangeSet) -> Option<Applied> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.store.apply(changes).await {
                Ok(applied) => {
                    EngineStats::add(&self.stats.steps_committed, 1);
                    return Some(applied);
                }
                Err(e) => {
                    EngineStats::add(&self.stats.commit_errors, 1);
                    metrics::counter!("vigil_engine_commit_errors_total").increment(1);
                    if is_permanent(&e) {
                        EngineStats::add(&self.stats.steps_lost, 1);
                        tracing::error!(error = %e, alerts = changes.alerts.len(),
                            audit = changes.audit.len(), "the alert store refused a step; it is not stored");
                        return None;
                    }
                    let stopping = *self.stopping.borrow();
                    if stopping {
                        EngineStats::add(&self.stats.steps_lost, 1);
                        tracing::error!(error = %e, "stopping with a step not stored");
                        return None;
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "alert store commit failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn save_states(&mut self) {
        let states = self.core.detectors().take_changed_states();
        if states.is_empty() {
            return;
        }
        let rows: Vec<(String, String)> = states
            .iter()
            .filter_map(|(key, state)| {
                serde_json::to_string(state)
                    .ok()
                    .map(|json| (key.storage_key(), json))
            })
            .collect();
        if let Err(e) = self.store.save_detector_states(&rows).await {
            metrics::counter!("vigil_engine_state_save_errors_total").increment(1);
            tracing::warn!(error = %e, states = rows.len(), "detector states not saved; will retry");
            // Mark them changed again so the next round saves them.
            for (key, _) in states {
                self.core.detectors().mark_changed(key);
            }
        }
    }
}

/// Live feed: every alert state and audit record of a committed step.
pub(super) fn publish(outputs: &Outputs, changes: &ChangeSet, applied: &Applied) {
    for a in &changes.alerts {
        outputs.live.publish_alert(a);
    }
    for r in &changes.audit {
        outputs.live.publish_audit(r);
    }
    for s in &changes.started {
        // A start that lost to an existing task wrote nothing: publish only what was stored.
        let stored = s.notify.is_empty() || applied.notify.iter().any(|n| n.alert == s.task.alert);
        if stored {
            for r in &s.audit {
                outputs.live.publish_audit(r);
            }
        }
    }
}

fn merge(into: &mut Step, step: Step) {
    let Step { changes, downlinks } = step;
    into.changes.alerts.extend(changes.alerts);
    into.changes.audit.extend(changes.audit);
    into.changes.started.extend(changes.started);
    into.changes.stopped.extend(changes.stopped);
    into.downlinks.extend(downlinks);
}
