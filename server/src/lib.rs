//! Vigil server: ingest, storage, registry, detection, alerts, escalation and the HTTP API.

pub mod alerts;
pub mod bench;
pub mod broker;
pub mod config;
pub mod dedup;
pub mod ids;
pub mod ingest;
pub mod run;
pub mod store;
