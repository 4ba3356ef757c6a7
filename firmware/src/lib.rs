//! Vigil board logic: `#![no_std]`, no allocator, generic over `embedded-hal` 1.0.
//!
//! # Layout
//!
//! - [`hal`]: the few board services `embedded-hal` has no trait for (battery voltage, a
//!   monotonic millisecond clock, persistent `boot_id` storage) and [`hal::Millis`].
//! - [`frame`]: stamps bodies into [`vigil_protocol::UplinkFrame`]s (`boot_id`, `seq`).
//! - [`debounce`]: a debounced digital input; [`button`] turns it into press / long press.
//! - [`meter`]: the water-meter board (pulses → millilitres, slots, flow, leak, tamper).
//! - [`lis3dh`]: an I2C driver for the LIS3DH accelerometer.
//! - [`fall`]: the fall detector that runs on the accelerometer samples.
//! - [`pendant`]: the call pendant (calls, the fall cancel window, LED and buzzer feedback).
//! - [`fire`]: the fire node (thresholds with hysteresis, signal classes, trouble, self-test).
//! - [`spool`]: the bounded RAM spool that holds frames until the gateway holds them durably.
//! - [`mqtt`]: the sans-IO MQTT 3.1.1 client state (connect, will, QoS 1, keepalive, backoff).
//! - [`link`]: drives [`mqtt::MqttClient`] over an `embedded-io` byte stream.
//! - [`traces`]: reference sensor traces (a fall, button presses, water use) for self-tests.
//!
//! Every state machine is sans-IO: inputs come with the time `now` (milliseconds since
//! boot), outputs are drained with `poll_*`, and `next_deadline()` says when to wake next.
//! Nothing here reads a clock or a random generator by itself.
#![no_std]
#![forbid(unsafe_code)]

pub mod button;
pub mod debounce;
pub mod fall;
pub mod fire;
pub mod frame;
pub mod hal;
pub mod link;
pub mod lis3dh;
pub mod meter;
pub mod mqtt;
pub mod pendant;
pub mod spool;
pub mod traces;

pub use hal::Millis;
