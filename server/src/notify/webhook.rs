//! Outgoing webhooks: one delivery per (endpoint, event), signed with HMAC-SHA256, retried
//! with exponential backoff, every attempt written to a delivery log.
//!
//! Design: deliveries are independent — a failing endpoint only delays its own deliveries,
//! never another endpoint's, and nothing waits for a slow response except that delivery.
//! A delivery that was in flight when the server stopped is sent again after a restart;
//! receivers deduplicate on the `X-Vigil-Delivery` header.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::alerts::audit::NotifyOutcome;
use crate::alerts::{duration_secs, Timestamp};

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature";
pub const DELIVERY_HEADER: &str = "X-Vigil-Delivery";
pub const EVENT_HEADER: &str = "X-Vigil-Event";

/// A shared secret for signing; never printed.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, WebhookError> {
        let bytes = bytes.into();
        if bytes.len() < 16 {
            return Err(WebhookError::ShortSecret(bytes.len()));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook secret too short: expected at least 16 bytes, found {0}")]
    ShortSecret(usize),
    #[error("webhook URL must start with http:// or https://, found {0:?}")]
    BadUrl(String),
    #[error("malformed signature header: expected t=<unix seconds>,v1=<64 hex digits>")]
    MalformedSignature,
    #[error("signature timestamp {found} is more than {tolerance_s} s away from now ({now})")]
    StaleSignature {
        found: u64,
        now: u64,
        tolerance_s: u64,
    },
    #[error("signature does not match the body")]
    BadSignature,
}

fn mac(secret: &WebhookSecret, t: u64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = HmacSha256::new_from_slice(&secret.0).unwrap_or_else(|_| unreachable!());
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed too, so a
/// captured request cannot be replayed later.
pub fn sign(secret: &WebhookSecret, now: Timestamp, body: &[u8]) -> String {
    let t = now.unix_ms() / 1000;
    let tag = mac(secret, t, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Checks a signature header as a receiver would (constant-time comparison).
pub fn verify(
    secret: &WebhookSecret,
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let (t, hex) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .ok_or(WebhookError::MalformedSignature)?;
    let t: u64 = t.parse().map_err(|_| WebhookError::MalformedSignature)?;
    // Checked byte-wise before slicing: a multi-byte character must not split a slice.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebhookError::MalformedSignature);
    }
    let tag: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| WebhookError::MalformedSignature)?;
    let now_s = now.unix_ms() / 1000;
    if now_s.abs_diff(t) > tolerance.as_secs() {
        return Err(WebhookError::StaleSignature {
            found: t,
            now: now_s,
            tolerance_s: tolerance.as_secs(),
        });
    }
    mac(secret, t, body)
        .verify_slice(&tag)
        .map_err(|_| WebhookError::BadSignature)
}

/// Exponential backoff: `initial`, `2 × initial`, … capped at `max_delay`, `max_attempts` in all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetrySchedule {
    #[serde(with = "duration_secs")]
    pub initial: Duration,
    #[serde(with = "duration_secs")]
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

impl RetrySchedule {
    /// The wait after failed attempt number `attempt` (1 is the first).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where a responder's or site's events go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub secret: WebhookSecret,
}

impl Endpoint {
    pub fn new(name: &str, url: &str, secret: WebhookSecret) -> Result<Self, WebhookError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(WebhookError::BadUrl(url.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            secret,
        })
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct DeliveryId(pub u64);

/// One HTTP POST for the driver to make.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct HttpRequest {
    pub delivery: DeliveryId,
    pub attempt: u32,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What came back from one attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttemptResult {
    Status {
        code: u16,
    },
    /// Connection refused, reset, TLS failure, timeout…
    Transport {
        error: String,
    },
}

impl AttemptResult {
    fn verdict(&self) -> Verdict {
        match self {
            Self::Status { code: 200..=299 } => Verdict::Delivered,
            // The receiver is overloaded or timed out: try again later.
            Self::Status {
                code: 408 | 425 | 429,
            } => Verdict::Retry,
            // The request itself is wrong: sending it again cannot help.
            Self::Status { code: 400..=499 } => Verdict::Rejected,
            Self::Status { .. } | Self::Transport { .. } => Verdict::Retry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Rejected,
}

/// How an attempt ended, as written to the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    Delivered,
    WillRetry {
        next_attempt_at: Timestamp,
    },
    /// Refused by the receiver (a 4xx other than 408/425/429): not retried.
    Rejected,
    /// Every attempt failed.
    GaveUp,
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryRecord {
    pub delivery: DeliveryId,
    pub endpoint: String,
    pub event: String,
    pub attempt: u32,
    pub at: Timestamp,
    pub result: AttemptResult,
    pub outcome: DeliveryOutcome,
}

impl DeliveryRecord {
    /// The attempt as a notification outcome for the alert's audit trail.
    pub fn notify_outcome(&self) -> NotifyOutcome {
        let what = match &self.result {
            AttemptResult::Status { code } => format!("HTTP {code}"),
            AttemptResult::Transport { error } => error.clone(),
        };
        match &self.outcome {
            DeliveryOutcome::Delivered => NotifyOutcome::Delivered,
            DeliveryOutcome::WillRetry { next_attempt_at } => NotifyOutcome::Failed(format!(
                "attempt {}: {what}; retrying at {next_attempt_at}",
                self.attempt
            )),
            DeliveryOutcome::Rejected => NotifyOutcome::Failed(format!(
                "attempt {}: {what}; rejected, not retried",
                self.attempt
            )),
            DeliveryOutcome::GaveUp => {
                NotifyOutcome::Failed(format!("attempt {}: {what}; gave up", self.attempt))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Delivery {
    endpoint: Endpoint,
    event: String,
    body: String,
    attempts: u32,
    /// `None` while an attempt is in flight.
    next_attempt_at: Option<Timestamp>,
}

/// Pending deliveries as stored, to resume after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookSnapshot {
    next_id: u64,
    pending: Vec<(DeliveryId, Delivery)>,
}

#[derive(Debug, Default)]
pub struct WebhookQueue {
    schedule: RetrySchedule,
    next_id: u64,
    pending: BTreeMap<DeliveryId, Delivery>,
    log: VecDeque<DeliveryRecord>,
}

impl WebhookQueue {
    pub fn new(schedule: RetrySchedule) -> Self {
        Self {
            schedule,
            next_id: 1,
            ..Self::default()
        }
    }

    /// Resumes; deliveries in flight at the stop are due again at `now`.
    pub fn restore(schedule: RetrySchedule, snapshot: WebhookSnapshot, now: Timestamp) -> Self {
        let mut q = Self::new(schedule);
        q.next_id = snapshot.next_id.max(1);
        for (id, mut d) in snapshot.pending {
            d.next_attempt_at.get_or_insert(now);
            q.next_id = q.next_id.max(id.0 + 1);
            q.pending.insert(id, d);
        }
        q
    }

    /// Signs every pending delivery with `secret` from now on (a restart with a new secret
    /// resumes the saved deliveries under it).
    pub fn rekey(&mut self, secret: &WebhookSecret) {
        for d in self.pending.values_mut() {
            d.endpoint.secret = secret.clone();
        }
    }

    pub fn snapshot(&self) -> WebhookSnapshot {
        WebhookSnapshot {
            next_id: self.next_id,
            pending: self
                .pending
                .iter()
                .map(|(id, d)| (*id, d.clone()))
                .collect(),
        }
    }

    /// Queues `body` (JSON) for `endpoint`; the first attempt is due at `now`.
    pub fn enqueue(
        &mut self,
        endpoint: Endpoint,
        event: &str,
        body: String,
        now: Timestamp,
    ) -> DeliveryId {
        let id = DeliveryId(self.next_id);
        self.next_id += 1;
        self.pending.insert(
            id,
            Delivery {
                endpoint,
                event: event.to_owned(),
                body,
                attempts: 0,
                next_attempt_at: Some(now),
            },
        );
        id
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.pending
            .values()
            .filter_map(|d| d.next_attempt_at)
            .min()
    }

    /// The next request that is due at `now`, signed at `now`.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<HttpRequest> {
        let (id, d) = self
            .pending
            .iter_mut()
            .filter(|(_, d)| d.next_attempt_at.is_some_and(|t| t <= now))
            .min_by_key(|(_, d)| d.next_attempt_at)?;
        d.attempts += 1;
        d.next_attempt_at = None;
        let signature = sign(&d.endpoint.secret, now, d.body.as_bytes());
        Some(HttpRequest {
            delivery: *id,
            attempt: d.attempts,
            url: d.endpoint.url.clone(),
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                (DELIVERY_HEADER, id.0.to_string()),
                (EVENT_HEADER, d.event.clone()),
                (SIGNATURE_HEADER, signature),
            ],
            body: d.body.clone(),
        })
    }

    /// The outcome of the attempt the driver made for `delivery`. Unknown or settled
    /// deliveries (a late duplicate response) are ignored.
    pub fn handle_result(&mut self, delivery: DeliveryId, result: AttemptResult, now: Timestamp) {
        let Some(d) = self.pending.get_mut(&delivery) else {
            return;
        };
        if d.next_attempt_at.is_some() {
            return;
        }
        let outcome = match result.verdict() {
            Verdict::Delivered => DeliveryOutcome::Delivered,
            Verdict::Rejected => DeliveryOutcome::Rejected,
            Verdict::Retry if d.attempts >= self.schedule.max_attempts => DeliveryOutcome::GaveUp,
            Verdict::Retry => {
                let at = now + self.schedule.delay_after(d.attempts);
                d.next_attempt_at = Some(at);
                DeliveryOutcome::WillRetry {
                    next_attempt_at: at,
                }
            }
        };
        self.log.push_back(DeliveryRecord {
            delivery,
            endpoint: d.endpoint.name.clone(),
            event: d.event.clone(),
            attempt: d.attempts,
            at: now,
            result,
            outcome: outcome.clone(),
        });
        match outcome {
            DeliveryOutcome::WillRetry { .. } => {}
            DeliveryOutcome::Delivered | DeliveryOutcome::Rejected | DeliveryOutcome::GaveUp => {
                self.pending.remove(&delivery);
            }
        }
    }

    pub fn poll_log(&mut self) -> Option<DeliveryRecord> {
        self.log.pop_front()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
