//! `vigil sim load --broker URL`: load mode on the network. The generated boards' frames
//! are published at QoS 1 to each board's own `up` topic through real MQTT connections.
//!
//! Design: thousands of boards per process cannot each hold a socket cheaply, so boards are
//! multiplexed over `--connections` MQTT clients (board i publishes through client
//! i mod C). A broker without per-board ACLs accepts that (the server's embedded broker,
//! Mosquitto); a gateway's broker checks every board's own login, which this mode does not
//! make (`vigil bench gateway` measures the gateway).

// A driver: it paces publishing on the real clock.
#![allow(clippy::disallowed_methods)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use vigil_protocol::Topic;
use vigil_sim::load::LoadGenerator;

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[arg(long, default_value_t = 1000)]
    pub boards: usize,
    /// Frames per second, all boards together.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Seconds of traffic (virtual when only encoding, real when publishing).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Publish to this broker (mqtt://host:port) instead of only encoding.
    #[arg(long)]
    pub broker: Option<String>,
    /// MQTT connections the boards are multiplexed over.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// A server (http://host:port) ingesting from that broker: report the readings it
    /// committed, from its /metrics.
    #[arg(long)]
    pub server: Option<String>,
}

/// `mqtt://host:port` → (host, port).
fn broker_address(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or_else(|| anyhow!("--broker: expected mqtt://host:port, found {url:?}"))?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("--broker: no port in {url:?}"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow!("--broker: {port:?} is not a port"))?;
    Ok((host.to_owned(), port))
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(publish(args))
}

/// What the server's ingest has taken in, from its Prometheus page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Ingested {
    /// Readings committed (new ones and duplicates of committed ones).
    committed: u64,
    /// Frames refused and kept for inspection (e.g. from devices the registry lacks).
    quarantined: u64,
}

impl Ingested {
    fn since(self, before: Ingested) -> Ingested {
        Ingested {
            committed: self.committed.saturating_sub(before.committed),
            quarantined: self.quarantined.saturating_sub(before.quarantined),
        }
    }
}

fn sum_of(text: &str, metric: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(metric))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn ingested(server: &str) -> anyhow::Result<Ingested> {
    let authority = crate::sim_api::authority_of(server)?;
    let text = crate::sim_api::get_text(&authority, "/metrics").await?;
    Ok(Ingested {
        committed: sum_of(&text, "vigil_ingest_readings_stored_total")
            + sum_of(&text, "vigil_ingest_dedup_hits_total"),
        quarantined: sum_of(&text, "vigil_ingest_quarantined_total"),
    })
}

async fn publish(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let url = args.broker.clone().unwrap_or_default();
    let (host, port) = broker_address(&url)?;
    if args.connections == 0 {
        bail!("--connections: expected at least 1");
    }
    let mut generator = LoadGenerator::new(args.boards, args.rate)?;
    let connections = args.connections.min(args.boards);
    let before = match &args.server {
        Some(s) => Some(ingested(s).await.context("reading the server's /metrics")?),
        None => None,
    };
    let acked = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let tag = std::process::id();
    let mut clients = Vec::with_capacity(connections);
    let mut loops = Vec::with_capacity(connections);
    for c in 0..connections {
        let mut o = MqttOptions::new(format!("vigil-sim-load-{tag}-{c}"), host.clone(), port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_inflight(200);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        let (client, mut eventloop) = AsyncClient::new(o, 1_000);
        eventloop.set_network_options(net);
        let acked = Arc::clone(&acked);
        let connected = Arc::clone(&connected);
        loops.push(tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("vigil sim load: connection {c}: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
        clients.push(client);
    }
    let guard = Instant::now() + Duration::from_secs(10);
    while connected.load(Ordering::Relaxed) < connections as u64 {
        if Instant::now() >= guard {
            for l in &loops {
                l.abort();
            }
            bail!(
                "only {} of {connections} connection(s) to {url} came up within 10 s",
                connected.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
    let (mut published, mut bytes) = (0u64, 0u64);
    let span = Duration::from_secs(args.seconds);
    let began = Instant::now();
    loop {
        let now = began.elapsed().min(span);
        while let Some(frame) = generator.poll_frame(now) {
            let n = frame.encode(&mut buf)?;
            // Board i of N publishes through connection i mod C (ids carry the index).
            let index: usize = frame
                .device_id
                .as_str()
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let topic = Topic::DeviceUp(frame.device_id.clone()).to_topic_string();
            let publish = clients[index % connections].publish(
                topic.as_str(),
                QoS::AtLeastOnce,
                false,
                buf[..n].to_vec(),
            );
            tokio::time::timeout(Duration::from_secs(30), publish)
                .await
                .map_err(|_| anyhow!("the broker took no frame for 30 s"))?
                .map_err(|e| anyhow!("publishing: {e}"))?;
            published += 1;
            bytes += n as u64;
        }
        if now >= span {
            break;
        }
        let next = generator.next_deadline().min(span);
        let wait = next.saturating_sub(began.elapsed());
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }
    let sent_in = began.elapsed();
    // Wait (bounded) for the broker's acknowledgements of what was sent.
    let guard = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::Relaxed) < published && Instant::now() < guard {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked_in = began.elapsed();
    let acked_n = acked.load(Ordering::Relaxed);
    println!(
        "{} boards over {connections} MQTT connection(s) to {url}, {} frames/s requested for {} s:",
        args.boards, args.rate, args.seconds
    );
    println!(
        "  published {published} frames ({bytes} bytes) in {:.2} s: {:.0} frames/s",
        sent_in.as_secs_f64(),
        published as f64 / sent_in.as_secs_f64().max(1e-9)
    );
    println!(
        "  acknowledged by the broker (PUBACK): {acked_n} by {:.2} s: {:.0} frames/s",
        acked_in.as_secs_f64(),
        acked_n as f64 / acked_in.as_secs_f64().max(1e-9)
    );
    let mut ok = acked_n == published;
    if let (Some(server), Some(before)) = (&args.server, before) {
        // Wait (bounded) until the server has taken all of it in, or stops progressing.
        let mut taken = Ingested::default();
        let mut last_change = Instant::now();
        while Instant::now() < last_change + Duration::from_secs(5) {
            let now = ingested(server).await?.since(before);
            if now != taken {
                taken = now;
                last_change = Instant::now();
            }
            if taken.committed + taken.quarantined >= published {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let in_s = began.elapsed().as_secs_f64();
        println!(
            "  committed by the server (readings stored + duplicates, from /metrics): {} by {in_s:.2} s: {:.0} frames/s",
            taken.committed,
            taken.committed as f64 / in_s.max(1e-9)
        );
        if taken.quarantined > 0 {
            println!(
                "  quarantined by the server: {} (devices its registry does not know are refused)",
                taken.quarantined
            );
        }
        ok &= taken.committed + taken.quarantined >= published;
    }
    for c in &clients {
        let _ = c.disconnect().await;
    }
    for l in loops {
        l.abort();
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        println!(
            "  not everything published was acknowledged{}",
            if args.server.is_some() {
                " and committed"
            } else {
                ""
            }
        );
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_give_host_and_port_and_bad_ones_say_why() {
        assert_eq!(
            broker_address("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_owned(), 1883)
        );
        assert!(broker_address("tcp://x:1")
            .unwrap_err()
            .to_string()
            .contains("mqtt://"));
        assert!(broker_address("mqtt://x")
            .unwrap_err()
            .to_string()
            .contains("no port"));
    }
}
