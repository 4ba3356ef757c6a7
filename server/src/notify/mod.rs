//! Notification channels as sans-IO cores: outgoing webhooks (signed, retried with backoff,
//! logged) and the live event feed behind Server-Sent Events. The HTTP client and the SSE
//! endpoint are thin drivers over these.

pub mod sse;
pub mod webhook;
