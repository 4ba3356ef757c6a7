//! The webhook dispatcher: one task driving [`WebhookQueue`] on the real clock.
//!
//! Design: the task owns the queue. Every attempt is its own spawned HTTP request, so a slow
//! or dead receiver holds only its own attempt (bounded by the request timeout), never another
//! endpoint's delivery. Each attempt's [`DeliveryRecord`] goes to the delivery log and, for a
//! delivery made for a [`Notification`], its outcome to the alert's audit trail; a separate
//! writer task does the store writes in order, so a slow database delays the log, not the
//! webhooks. Store errors are logged and counted, never fatal.
//!
//! Restarts: with a queue file, the pending deliveries (and their notifications) are saved
//! after every change and at shutdown, and resumed at the next start; an attempt that was in
//! flight at the stop is made again (receivers deduplicate on `X-Vigil-Delivery`). Without
//! one, pending deliveries are lost at shutdown (logged with their number).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::settings::{NotifyConfig, NotifyConfigError};
use super::webhook::{
    AttemptResult, DeliveryId, DeliveryOutcome, DeliveryRecord, Endpoint, HttpRequest,
    WebhookQueue, WebhookSecret, WebhookSnapshot,
};
use crate::alert_store::{AlertStore, AnyAlertStore, ChangeSet};
use crate::alerts::audit::NotifyOutcome;
use crate::alerts::Timestamp;
use crate::escalation::Notification;

/// The channel name in the audit trail.
pub const CHANNEL: &str = "webhook";

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Signs every request.
    pub secret: WebhookSecret,
    pub connect_timeout: Duration,
    /// Longest wait for a whole answer; a receiver that takes longer fails the attempt.
    pub request_timeout: Duration,
    pub retry: super::webhook::RetrySchedule,
    /// Pending deliveries kept across restarts; `None`: not kept.
    pub queue_file: Option<PathBuf>,
}

impl WebhookSettings {
    /// The settings of `[notify]`; reads (or, the first time, creates) the secret file.
    /// Call [`NotifyConfig::resolve_paths`] first (`ServerConfig::load` and `run_with` do).
    pub fn from_config(config: &NotifyConfig) -> Result<Self, NotifyConfigError> {
        config.validate()?;
        Ok(Self {
            secret: config.webhook_secret()?,
            connect_timeout: Duration::from_millis(config.webhook_connect_timeout_ms),
            request_timeout: Duration::from_millis(config.webhook_timeout_ms),
            retry: config.retry_schedule(),
            queue_file: config.webhook_queue_file.clone(),
        })
    }
}

enum Command {
    Send {
        endpoint: Endpoint,
        event: String,
        body: String,
        notification: Option<Notification>,
    },
    /// A delivery that could not even be queued (bad URL): only its audit record is written.
    Refused {
        notification: Notification,
        reason: String,
    },
}

/// Queues webhook deliveries for the dispatcher task. Cheap to clone.
#[derive(Clone)]
pub struct WebhookHandle {
    commands: mpsc::UnboundedSender<Command>,
    secret: Arc<WebhookSecret>,
}

impl std::fmt::Debug for WebhookHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookHandle")
            .field("running", &!self.commands.is_closed())
            .finish_non_exhaustive()
    }
}

impl WebhookHandle {
    /// Queues `body` (JSON) as event `event` for the endpoint `endpoint_name` at `url`, and
    /// returns at once. The dispatcher retries with backoff and logs every attempt; with a
    /// `notification`, every attempt's outcome is also appended to that alert's audit trail.
    /// A URL that is not `http(s)://` is not sent: it is logged, counted and, with a
    /// notification, audited as a failed attempt.
    pub fn send(
        &self,
        endpoint_name: &str,
        url: &str,
        event: &str,
        body: String,
        notification: Option<Notification>,
    ) {
        let command = match Endpoint::new(endpoint_name, url, (*self.secret).clone()) {
            Ok(endpoint) => Command::Send {
                endpoint,
                event: event.to_owned(),
                body,
                notification,
            },
            Err(e) => {
                metrics::counter!("vigil_webhook_refused_total").increment(1);
                tracing::warn!(endpoint = endpoint_name, error = %e, "webhook not sent");
                match notification {
                    Some(notification) => Command::Refused {
                        notification,
                        reason: e.to_string(),
                    },
                    None => return,
                }
            }
        };
        if self.commands.send(command).is_err() {
            metrics::counter!("vigil_webhook_dropped_total").increment(1);
            tracing::error!(
                endpoint = endpoint_name,
                event,
                "webhook dispatcher has stopped: delivery dropped"
            );
        }
    }
}

/// Starts the dispatcher; it runs until `shutdown` completes, then saves what is pending
/// (with a queue file), finishes its store writes and ends.
pub fn spawn_webhooks(
    store: AnyAlertStore,
    settings: WebhookSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (WebhookHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = WebhookHandle {
        commands: tx,
        secret: Arc::new(settings.secret.clone()),
    };
    let task = tokio::spawn(run(store, settings, rx, shutdown));
    (handle, task)
}

// The dispatcher is a driver: it reads the wall clock here and passes it to the queue.
#[allow(clippy::disallowed_methods)]
fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_ms(ms)
}

/// What is kept across restarts: the queue and the notifications its deliveries belong to.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SavedQueue {
    queue: WebhookSnapshot,
    notifications: Vec<(DeliveryId, Notification)>,
}

fn load_queue(path: &Path) -> Option<SavedQueue> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            metrics::counter!("vigil_webhook_queue_file_errors_total").increment(1);
            tracing::error!(file = %path.display(), error = %e,
                "cannot read the pending webhook deliveries; starting with none");
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(saved) => Some(saved),
        Err(e) => {
            metrics::counter!("vigil_webhook_queue_file_errors_total").increment(1);
            tracing::error!(file = %path.display(), error = %e,
                "pending webhook deliveries unreadable; starting with none");
            None
        }
    }
}

/// Writes `saved` beside `path` and renames it over, so a crash leaves the old or the new.
fn save_queue(path: &Path, saved: &SavedQueue) {
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // It holds the signing secret.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(&mut file, &text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        metrics::counter!("vigil_webhook_queue_file_errors_total").increment(1);
        tracing::error!(file = %path.display(), error = %e,
            "cannot save the pending webhook deliveries");
    }
}

struct Dispatcher {
    queue: WebhookQueue,
    notifications: BTreeMap<DeliveryId, Notification>,
    queue_file: Option<PathBuf>,
    dirty: bool,
    writes: mpsc::UnboundedSender<Write>,
}

/// One store write, in order.
enum Write {
    Deliveries(Vec<DeliveryRecord>),
    Audit(Box<crate::alerts::audit::AuditRecord>),
}

impl Dispatcher {
    fn saved(&self) -> SavedQueue {
        SavedQueue {
            queue: self.queue.snapshot(),
            notifications: self
                .notifications
                .iter()
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
        }
    }

    fn save_if_dirty(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if let Some(path) = &self.queue_file {
            save_queue(path, &self.saved());
        }
    }

    fn write(&self, w: Write) {
        // The writer ends only after this task drops its sender.
        let _ = self.writes.send(w);
    }

    /// Hands the attempts the queue logged to the writer, with their audit records.
    fn drain_log(&mut self) {
        let mut records = Vec::new();
        while let Some(record) = self.queue.poll_log() {
            let outcome = match &record.outcome {
                DeliveryOutcome::Delivered => "delivered",
                DeliveryOutcome::WillRetry { .. } => "will_retry",
                DeliveryOutcome::Rejected => "rejected",
                DeliveryOutcome::GaveUp => "gave_up",
            };
            metrics::counter!("vigil_webhook_attempts_total", "outcome" => outcome).increment(1);
            tracing::info!(delivery = record.delivery.0, endpoint = %record.endpoint,
                attempt = record.attempt, outcome, "webhook attempt");
            let settled = match record.outcome {
                DeliveryOutcome::WillRetry { .. } => false,
                DeliveryOutcome::Delivered
                | DeliveryOutcome::Rejected
                | DeliveryOutcome::GaveUp => true,
            };
            let notification = if settled {
                self.notifications.remove(&record.delivery)
            } else {
                self.notifications.get(&record.delivery).cloned()
            };
            if let Some(n) = notification {
                let audit = n.outcome_record(CHANNEL, record.notify_outcome(), record.at);
                // The log record goes first: write the batch so far, then the audit record.
                if !records.is_empty() {
                    self.write(Write::Deliveries(std::mem::take(&mut records)));
                }
                records.push(record);
                self.write(Write::Deliveries(std::mem::take(&mut records)));
                self.write(Write::Audit(Box::new(audit)));
            } else {
                records.push(record);
            }
            self.dirty = true;
        }
        if !records.is_empty() {
            self.write(Write::Deliveries(records));
        }
    }
}

async fn run(
    store: AnyAlertStore,
    settings: WebhookSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (writes, writes_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(store, writes_rx));
    let client = match reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        // A redirect would turn the POST into a GET elsewhere: a 3xx is a failed attempt.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            // Without a client nothing can be sent; say so loudly rather than lose silently.
            metrics::counter!("vigil_webhook_dispatcher_failures_total").increment(1);
            tracing::error!(error = %e, "cannot build the webhook HTTP client: webhooks are off");
            drop(writes);
            let _ = writer.await;
            return;
        }
    };
    let saved = settings.queue_file.as_deref().and_then(load_queue);
    let mut d = Dispatcher {
        queue: WebhookQueue::new(settings.retry.clone()),
        notifications: BTreeMap::new(),
        queue_file: settings.queue_file.clone(),
        dirty: false,
        writes,
    };
    if let Some(saved) = saved {
        d.queue = WebhookQueue::restore(settings.retry.clone(), saved.queue, now());
        d.notifications = saved.notifications.into_iter().collect();
        if d.queue.pending() > 0 {
            tracing::info!(
                pending = d.queue.pending(),
                "resuming pending webhook deliveries"
            );
        }
    }
    let mut in_flight: JoinSet<(DeliveryId, AttemptResult)> = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let t = now();
        while let Some(request) = d.queue.poll_transmit(t) {
            d.dirty = true;
            in_flight.spawn(attempt(client.clone(), request));
        }
        d.drain_log();
        d.save_if_dirty();
        let sleep = d
            .queue
            .next_deadline()
            .map(|at| at.since(now()))
            // Nothing scheduled: wake only for a command or a finished attempt.
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = in_flight.join_next() => match joined {
                Ok((delivery, result)) => d.queue.handle_result(delivery, result, now()),
                Err(e) => {
                    // Only a panic in the HTTP client could get here; the delivery stays
                    // in flight in the queue until a restart resumes it.
                    metrics::counter!("vigil_webhook_dispatcher_failures_total").increment(1);
                    tracing::error!(error = %e, "a webhook attempt failed to complete");
                }
            },
            command = commands.recv() => match command {
                Some(Command::Send { endpoint, event, body, notification }) => {
                    let id = d.queue.enqueue(endpoint, &event, body, now());
                    if let Some(n) = notification {
                        d.notifications.insert(id, n);
                    }
                    d.dirty = true;
                }
                Some(Command::Refused { notification, reason }) => {
                    let audit = notification.outcome_record(
                        CHANNEL,
                        NotifyOutcome::Failed(format!("not sent: {reason}")),
                        now(),
                    );
                    d.write(Write::Audit(Box::new(audit)));
                }
                // Every handle is gone: nothing more can come, but what is queued goes on.
                None if d.queue.pending() == 0 && in_flight.is_empty() => break,
                None => wait_for_work(&mut shutdown, &mut in_flight, &mut d, sleep).await,
            },
            () = tokio::time::sleep(sleep) => {}
        }
    }
    // Attempts still in flight are dropped; the saved queue has them as due again.
    in_flight.abort_all();
    d.dirty = true;
    d.save_if_dirty();
    let pending = d.queue.pending();
    if pending > 0 {
        match &d.queue_file {
            Some(path) => tracing::info!(pending, file = %path.display(),
                "webhook dispatcher stopped; pending deliveries resume at the next start"),
            None => tracing::warn!(
                pending,
                "webhook dispatcher stopped; pending deliveries are dropped (no queue file)"
            ),
        }
    }
    drop(d);
    let _ = writer.await;
}

/// With no handle left, the command channel is always ready: wait for an attempt or a
/// deadline here instead, so the loop does not spin.
async fn wait_for_work(
    shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    in_flight: &mut JoinSet<(DeliveryId, AttemptResult)>,
    d: &mut Dispatcher,
    sleep: Duration,
) {
    tokio::select! {
        () = shutdown.as_mut() => {}
        Some(Ok((delivery, result))) = in_flight.join_next() => {
            d.queue.handle_result(delivery, result, now());
        }
        () = tokio::time::sleep(sleep) => {}
    }
}

/// One POST; every failure becomes an [`AttemptResult`], never an error.
async fn attempt(client: reqwest::Client, request: HttpRequest) -> (DeliveryId, AttemptResult) {
    let mut builder = client.post(&request.url).body(request.body);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let result = match builder.send().await {
        Ok(response) => AttemptResult::Status {
            code: response.status().as_u16(),
        },
        Err(e) => AttemptResult::Transport {
            error: describe(&e),
        },
    };
    (request.delivery, result)
}

/// The error and its causes, without the URL (which may carry a receiver's token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Writes to the store in order; retries a failed write a few times, then logs and drops it.
async fn write_loop(store: AnyAlertStore, mut writes: mpsc::UnboundedReceiver<Write>) {
    const TRIES: u32 = 3;
    while let Some(w) = writes.recv().await {
        for attempt in 1..=TRIES {
            let result = match &w {
                Write::Deliveries(records) => store.append_deliveries(records).await,
                Write::Audit(record) => {
                    let changes = ChangeSet {
                        audit: vec![(**record).clone()],
                        ..ChangeSet::default()
                    };
                    store.apply(&changes).await.map(|_| ())
                }
            };
            let what = match &w {
                Write::Deliveries(_) => "delivery_log",
                Write::Audit(_) => "audit",
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    metrics::counter!("vigil_webhook_store_errors_total", "write" => what)
                        .increment(1);
                    if attempt == TRIES {
                        tracing::error!(error = %e, write = what, "webhook record not stored");
                    } else {
                        tracing::warn!(error = %e, write = what, attempt, "store write failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
        }
    }
}
