//! Vigil server: ingest, storage, registry, detection, alerts, escalation and the HTTP API.

pub mod alerts;
pub mod auth;
pub mod http;
pub mod ids;
pub mod registry;
