//! Where the engine's committed results go: the live feed, the webhook queue, the downlinks.
//!
//! Small traits so the engine does not depend on how each channel is driven; the server
//! plugs in the notify package's `LiveHub` and `WebhookHandle`, tests plug in recorders.

use std::sync::Arc;

use crate::alerts::audit::AuditRecord;
use crate::alerts::lifecycle::Alert;
use crate::escalation::Notification;

/// The live feed behind Server-Sent Events.
pub trait LiveSink: Send + Sync + 'static {
    fn publish_alert(&self, alert: &Alert);
    fn publish_audit(&self, record: &AuditRecord);
}

/// The outgoing webhook queue: `send` returns at once; each attempt's outcome is audited
/// on the alert when `notification` is given.
pub trait WebhookSink: Send + Sync + 'static {
    fn send(
        &self,
        endpoint_name: &str,
        url: &str,
        event: &str,
        body: String,
        notification: Option<Notification>,
    );
}

/// A live feed nobody listens to.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLive;

impl LiveSink for NoLive {
    fn publish_alert(&self, _alert: &Alert) {}
    fn publish_audit(&self, _record: &AuditRecord) {}
}

/// No webhook sender: webhook channels are audited as not delivered.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWebhooks;

impl WebhookSink for NoWebhooks {
    fn send(&self, _: &str, _: &str, _: &str, _: String, _: Option<Notification>) {}
}

/// Where the engine sends its results.
#[derive(Clone)]
pub struct Outputs {
    pub live: Arc<dyn LiveSink>,
    /// `None`: no webhook sender is running.
    pub webhooks: Option<Arc<dyn WebhookSink>>,
}

impl Default for Outputs {
    fn default() -> Self {
        Self {
            live: Arc::new(NoLive),
            webhooks: None,
        }
    }
}

impl LiveSink for crate::notify::live::LiveHub {
    fn publish_alert(&self, alert: &Alert) {
        crate::notify::live::LiveHub::publish_alert(self, alert);
    }
    fn publish_audit(&self, record: &AuditRecord) {
        crate::notify::live::LiveHub::publish_audit(self, record);
    }
}

impl WebhookSink for crate::notify::dispatch::WebhookHandle {
    fn send(
        &self,
        endpoint_name: &str,
        url: &str,
        event: &str,
        body: String,
        notification: Option<Notification>,
    ) {
        crate::notify::dispatch::WebhookHandle::send(
            self,
            endpoint_name,
            url,
            event,
            body,
            notification,
        );
    }
}
