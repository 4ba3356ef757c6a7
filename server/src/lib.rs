//! Vigil server: ingest, storage, registry, detection, alerts, escalation and the HTTP API.

pub mod alert_store;
pub mod alerts;
pub mod auth;
pub mod bench;
pub mod bench_detection;
pub mod broker;
pub mod config;
pub mod dedup;
pub mod detection;
pub mod engine;
pub mod escalation;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod notify;
pub mod registry;
pub mod run;
pub mod store;
