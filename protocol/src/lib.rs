//! Vigil's wire contract, shared by the boards, the gateway and the server.
//!
//! # Layout
//!
//! - [`limits`]: hard limits every decoder enforces (frame size, batch length, string lengths).
//! - [`ids`]: validated identifiers (`DeviceId`, `SiteId`, …) that are safe inside MQTT topics.
//! - [`uplink`]: what a board sends — [`UplinkFrame`] with one [`UplinkBody`].
//! - [`batch`]: what a gateway sends upstream — many board frames with their receive times.
//! - [`downlink`]: what flows back — durable receipts, "help is coming", configuration.
//! - [`status`]: gateway health and board liveness (will) messages.
//! - [`topic`]: `vigil/v1/…` topic builders and parsers.
//! - [`error`]: the typed errors the codec returns.
//!
//! Everything is `#![no_std]` without an allocator: frames hold `heapless` buffers, decoders
//! borrow from the input and never panic on any input. The normative description is
//! `docs/protocol.md`; the test vectors in `protocol/vectors/` pin it down byte for byte.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

pub mod batch;
mod cbor;
pub mod downlink;
pub mod error;
pub mod ids;
pub mod limits;
pub mod status;
pub mod topic;
pub mod uplink;

pub use batch::{encode_batch, Batch, BatchEntry, BatchHeader};
pub use downlink::{ConfigUpdate, DownlinkBody, DownlinkFrame, DurableReceipt, HelpComing};
pub use error::{DecodeError, EncodeError};
pub use ids::{DeviceId, FirmwareVersion, GatewayId, SiteId, StaffName, ZoneId};
pub use status::{BoardStatus, DeviceState, GatewayStatus, LocalAck};
pub use topic::Topic;
pub use uplink::{
    ButtonEvent, ButtonKind, FallEvent, FireReport, Heartbeat, MeterReading, SensorKind,
    SignalClass, Unit, UplinkBody, UplinkFrame,
};

/// The protocol version this crate speaks. Every frame carries it under key 0.
///
/// Decoders reject any other version with [`DecodeError::UnsupportedVersion`]; see
/// `docs/protocol.md` ("Versioning") for what may change without a new version.
pub const PROTOCOL_VERSION: u8 = 1;
