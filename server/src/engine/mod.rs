//! The alert engine: the thin async driver that turns committed frames into alerts,
//! escalations, notifications and "help is coming" downlinks.
//!
//! # Layout
//!
//! - [`directory`]: what the engine reads from the registry ([`EngineDirectory`]).
//! - [`router`]: a committed frame → its context and detectors (sans-IO).
//! - [`detectors`]: every detector instance, their timers ([`timers`]) and persisted state.
//! - [`core`]: detectors → alert book → one [`Step`] (change set + downlinks) per input.
//! - [`task`]: the engine task owning the core: commit, then publish, notify, downlink.
//! - [`escalation_loop`]: claims due tiers from the store's work queue.
//! - [`dispatch`]: a notification over the responder's channels.
//! - [`actions`]: operator actions sent into the engine task ([`AlertActions`]).
//! - [`rebuild`]: water detectors replayed from stored readings at start.
//! - [`mqtt`]: the engine's broker connection: downlinks out, wills and gateway status in.

pub mod actions;
pub mod core;
pub mod detectors;
pub mod directory;
pub mod dispatch;
pub mod escalation_loop;
pub mod mqtt;
pub mod outputs;
pub mod rebuild;
pub mod router;
pub mod source;
pub mod task;
pub mod timers;

#[cfg(test)]
mod testkit;

pub use self::actions::{ActionError, ActionRequest, ActionScope, AlertActions};
pub use self::core::{Downlink, EngineCore, Step};
pub use self::detectors::{DetectionConfig, DetectorKey, DetectorSet, DetectorState};
pub use self::directory::{EngineDirectory, StaticDirectory};
pub use self::outputs::{LiveSink, NoLive, NoWebhooks, Outputs, WebhookSink};
pub use self::source::{DirectorySource, StaticSource};
pub use self::task::{
    start, system_clock, EngineClock, EngineHandle, EngineParts, EngineSettings, EngineStats,
};
