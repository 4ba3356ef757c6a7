//! Vigil server: ingest, storage, registry, detection, alerts, escalation and the HTTP API.

pub mod alert_store;
pub mod alerts;
pub mod auth;
pub mod detection;
pub mod escalation;
pub mod http;
pub mod ids;
pub mod notify;
pub mod registry;
