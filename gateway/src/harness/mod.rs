//! What the gateway's tests and `vigil bench gateway` drive it with: simulated boards that
//! speak the real protocol and honour durable receipts, a collector that reads what reaches
//! the upstream broker, and a TCP link that can be cut like a failing internet line.
// Test drivers run against real brokers in real time.
#![allow(clippy::disallowed_methods)]

mod board;
mod collector;
mod cutter;
mod http;
mod site;

pub use board::{meter_reading, BoardError, SimBoard};
pub use collector::{Collected, UpstreamCollector};
pub use cutter::LinkCutter;
pub use http::{http_get, http_post_json};
pub use site::SiteFixture;

use crate::config::MqttUrl;

/// The MQTT broker the tests use as the district's broker: `VIGIL_TEST_MQTT_URL`, by default
/// `mqtt://127.0.0.1:1883`.
pub fn test_mqtt_url() -> MqttUrl {
    let url =
        std::env::var("VIGIL_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    match MqttUrl::parse("VIGIL_TEST_MQTT_URL", &url) {
        Ok(u) => u,
        Err(e) => panic!("{e}"),
    }
}

/// A name unique to this process and call, for site, gateway and client ids in tests.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}
