//! Notification channels as sans-IO cores: outgoing webhooks (signed, retried with backoff,
//! logged) and the live event feed behind Server-Sent Events. The HTTP client and the SSE
//! endpoint are thin drivers over these.
//!
//! # Layout
//! - [`sse`]: `LiveFeed`, numbered events with a replay buffer (sans-IO);
//!   [`live`]: `LiveHub`, its async driver that publishers and SSE streams share (the
//!   endpoint itself is `http::events_routes`).
//! - [`webhook`]: `WebhookQueue`, signing, retry schedule, delivery records (sans-IO);
//!   [`dispatch`]: `spawn_webhooks`, the task that drives it with `reqwest`.
//! - [`settings`]: the `[notify]` configuration table and the signing secret.

pub mod dispatch;
pub mod live;
pub mod settings;
pub mod sse;
pub mod webhook;

pub use settings::NotifyConfig;
