//! Telling a responder: each of their channels gets the notification.
//!
//! - webhook channels → the webhook queue, which audits every attempt's outcome;
//! - the live feed already carries the alert and its audit trail to every console in scope,
//!   so it needs nothing per responder;
//! - phone, SMS and e-mail have no sender yet: each is audited as *not delivered*, saying so,
//!   so the trail never suggests somebody was reached who was not.

use super::directory::EngineDirectory;
use super::outputs::WebhookSink;
use crate::alerts::audit::{AuditRecord, NotifyOutcome};
use crate::alerts::lifecycle::Alert;
use crate::alerts::Timestamp;
use crate::escalation::Notification;
use crate::registry::ContactChannel;

/// The webhook event name of a notification.
pub const NOTIFY_EVENT: &str = "alert.notify";

/// The JSON a webhook receiver gets.
#[derive(Debug, serde::Serialize)]
pub struct NotifyBody<'a> {
    pub event: &'static str,
    pub notification: &'a Notification,
    /// The alert as it stood when the notification was decided, when the engine holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<&'a Alert>,
}

/// Sends `n` over the responder's channels; returns the audit records of the channels that
/// were decided at once (no sender, no channel).
pub fn dispatch(
    n: &Notification,
    alert: Option<&Alert>,
    dir: &dyn EngineDirectory,
    webhooks: Option<&dyn WebhookSink>,
    now: Timestamp,
) -> Vec<AuditRecord> {
    let channels = dir.channels(&n.responder);
    let mut audit = Vec::new();
    if channels.is_empty() {
        audit.push(n.outcome_record(
            "none",
            NotifyOutcome::Failed("the responder has no contact channel".into()),
            now,
        ));
        metrics::counter!("vigil_engine_notifications_total", "channel" => "none", "outcome" => "failed").increment(1);
        return audit;
    }
    for channel in channels {
        match channel {
            ContactChannel::Webhook { url } => match webhooks {
                Some(w) => {
                    let body = NotifyBody {
                        event: NOTIFY_EVENT,
                        notification: n,
                        alert,
                    };
                    let body = serde_json::to_string(&body).unwrap_or_else(|e| {
                        format!(r#"{{"event":"{NOTIFY_EVENT}","error":"{e}"}}"#)
                    });
                    w.send(
                        n.responder.as_str(),
                        &url,
                        NOTIFY_EVENT,
                        body,
                        Some(n.clone()),
                    );
                    metrics::counter!("vigil_engine_notifications_total", "channel" => "webhook", "outcome" => "queued").increment(1);
                }
                None => {
                    audit.push(n.outcome_record(
                        "webhook",
                        NotifyOutcome::Failed("no webhook sender is running".into()),
                        now,
                    ));
                }
            },
            ContactChannel::Phone { .. } => audit.push(not_sent(n, "phone", now)),
            ContactChannel::Sms { .. } => audit.push(not_sent(n, "sms", now)),
            ContactChannel::Email { .. } => audit.push(not_sent(n, "email", now)),
        }
    }
    audit
}

fn not_sent(n: &Notification, channel: &str, now: Timestamp) -> AuditRecord {
    metrics::counter!("vigil_engine_notifications_total", "channel" => channel.to_owned(), "outcome" => "no_sender").increment(1);
    n.outcome_record(
        channel,
        NotifyOutcome::Failed(format!(
            "not delivered: Vigil has no {channel} sender yet; reach this responder by hand"
        )),
        now,
    )
}
