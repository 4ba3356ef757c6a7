//! MQTT ingest: subscribe, decode, deduplicate and store in batches, acknowledge to the
//! broker only after the commit, then hand the new frames to the detectors.
//!
//! # Layout
//!
//! - [`decode`]: one MQTT message → frames and quarantine records (sans-IO).
//! - [`writer`]: groups decoded messages into store transactions (size and time bounds),
//!   retries a failed commit, acknowledges, feeds the [`FrameSink`].
//! - [`mqtt`]: the rumqttc (MQTT 5) connection: shared subscriptions, manual
//!   acknowledgements, `TCP_NODELAY`.
//!
//! Memory stays bounded end to end: the broker sends at most `receive_maximum`
//! unacknowledged messages (MQTT 5 flow control), and a message is acknowledged only after
//! its commit, so a slow store stops the flow at the broker instead of filling memory.

pub mod decode;
pub mod mqtt;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use thiserror::Error;
use vigil_protocol::DeviceId;

use crate::store::IncomingFrame;

/// Which devices the server accepts frames from. The registry implements it; until one is
/// attached, [`AcceptAllDevices`] accepts every well-formed device id.
pub trait DeviceDirectory: Send + Sync + 'static {
    fn knows(&self, device: &DeviceId) -> bool;
}

/// Accepts every device: the default until the registry is attached.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAllDevices;

impl DeviceDirectory for AcceptAllDevices {
    fn knows(&self, _device: &DeviceId) -> bool {
        true
    }
}

impl<F: Fn(&DeviceId) -> bool + Send + Sync + 'static> DeviceDirectory for F {
    fn knows(&self, device: &DeviceId) -> bool {
        self(device)
    }
}

/// Where committed frames go next (the detectors). Called after every commit with the frames
/// that were new, in the order received; awaiting it holds back the acknowledgements, so a
/// slow consumer slows ingest down instead of losing frames.
#[async_trait]
pub trait FrameSink: Send + Sync + 'static {
    async fn committed(&self, frames: Vec<IncomingFrame>);

    /// Whether this is [`DetectWithEngine`], which `run_with` replaces with the alert engine.
    fn is_engine_placeholder(&self) -> bool {
        false
    }
}

/// The default sink of `run_with`: stands for "feed the alert engine", which `run_with`
/// starts in its place. Give any other sink to run ingest without detection.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectWithEngine;

#[async_trait]
impl FrameSink for DetectWithEngine {
    async fn committed(&self, _frames: Vec<IncomingFrame>) {}

    fn is_engine_placeholder(&self) -> bool {
        true
    }
}

/// A sink that drops everything: for a server without detectors, and for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

#[async_trait]
impl FrameSink for NoSink {
    async fn committed(&self, _frames: Vec<IncomingFrame>) {}
}

#[async_trait]
impl FrameSink for tokio::sync::mpsc::Sender<IncomingFrame> {
    async fn committed(&self, frames: Vec<IncomingFrame>) {
        for f in frames {
            if self.send(f).await.is_err() {
                tracing::warn!("frame sink closed; committed frames are no longer forwarded");
                return;
            }
        }
    }
}

/// Running totals of one ingest, readable while it runs (the benchmark and tests use them;
/// the same figures go to the `metrics` facade).
#[derive(Debug)]
pub struct IngestStats {
    /// Counts the broker's subscription acknowledgements (one per filter per connection).
    pub subscriptions: tokio::sync::watch::Sender<u64>,
    pub messages: AtomicU64,
    pub frames_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub quarantined: AtomicU64,
    pub commits: AtomicU64,
    pub commit_errors: AtomicU64,
    /// Messages acknowledged to the broker (after their commit).
    pub acked: tokio::sync::watch::Sender<u64>,
}

impl Default for IngestStats {
    fn default() -> Self {
        Self {
            subscriptions: tokio::sync::watch::Sender::new(0),
            messages: AtomicU64::new(0),
            frames_stored: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_errors: AtomicU64::new(0),
            acked: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl IngestStats {
    /// Resolves once the broker has acknowledged `n` subscriptions since start.
    pub async fn subscribed(&self, n: u64) {
        let mut rx = self.subscriptions.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|&v| v >= n).await;
    }

    /// Resolves once `n` messages have been committed and acknowledged since start.
    pub async fn acknowledged(&self, n: u64) {
        let mut rx = self.acked.subscribe();
        let _ = rx.wait_for(|&v| v >= n).await;
    }

    pub fn acked_count(&self) -> u64 {
        *self.acked.borrow()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// `host:port` of an MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
}

/// A broker URL that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BrokerUrlError {
    #[error("expected mqtt://host:port or tcp://host:port, found {0:?}")]
    Scheme(String),
    #[error("port in {0:?} is not a number 1..=65535")]
    Port(String),
    #[error("no host in {0:?}")]
    Host(String),
}

impl BrokerAddress {
    /// Parses `mqtt://host[:port]` (or `tcp://`); the port defaults to 1883.
    pub fn parse(url: &str) -> Result<Self, BrokerUrlError> {
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| BrokerUrlError::Scheme(url.to_owned()))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port: u16 = p.parse().map_err(|_| BrokerUrlError::Port(url.into()))?;
                if port == 0 {
                    return Err(BrokerUrlError::Port(url.into()));
                }
                (h, port)
            }
            _ => (rest, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(BrokerUrlError::Host(url.to_owned()));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// Why ingest stopped.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("fault injection: stopped after a commit, before acknowledging it")]
    CrashedAfterCommit,
    #[error("the MQTT connection task ended")]
    ConnectionGone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_and_without_port() {
        assert_eq!(
            BrokerAddress::parse("mqtt://127.0.0.1:1884").unwrap(),
            BrokerAddress {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(BrokerAddress::parse("tcp://broker/").unwrap().port, 1883);
        assert!(matches!(
            BrokerAddress::parse("http://x"),
            Err(BrokerUrlError::Scheme(_))
        ));
        assert!(matches!(
            BrokerAddress::parse("mqtt://x:notaport"),
            Err(BrokerUrlError::Port(_))
        ));
        assert!(matches!(
            BrokerAddress::parse("mqtt://:1883"),
            Err(BrokerUrlError::Host(_))
        ));
    }
}
