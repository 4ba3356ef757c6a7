//! Vigil server: ingest, storage, registry, detection, alerts, escalation and the HTTP API.

pub mod alerts;
pub mod detection;
pub mod ids;
