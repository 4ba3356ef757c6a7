//! Test (a): 10 000 frames from 100 boards while the upstream link is cut for part of the run
//! and the gateway process is killed with SIGKILL twice: every frame reaches the upstream
//! broker at least once, each device's frames first arrive in order, and a real Vigil server
//! ingesting from the same broker stores every frame exactly once.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use vigil_gateway::harness::{
    meter_reading, test_mqtt_url, unique_name, LinkCutter, SimBoard, SiteFixture, UpstreamCollector,
};
use vigil_server::config::ServerConfig;
use vigil_server::run::{run_with, Attachments, Ready};
use vigil_server::store::{IncomingFrame, ReadingsQuery};

/// A Vigil server ingesting from `url` into a fresh SQLite store, in this process.
async fn start_server(
    url: &str,
    dir: &Path,
) -> (
    Ready,
    tokio::sync::mpsc::Receiver<IncomingFrame>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut config = ServerConfig::default();
    config.broker.url = Some(url.to_owned());
    // Own client id and shared group: other tests' servers on the same broker must not
    // take this one's share of the batches.
    config.broker.client_id = unique_name("crash-server");
    config.broker.shared_group = unique_name("crash-group");
    config.database.data_dir = dir.to_owned();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Every frame the server commits as new, for the test to await.
    let (sink, committed) = tokio::sync::mpsc::channel(1024);
    let attachments = Attachments {
        ready: Some(ready_tx),
        sink: std::sync::Arc::new(sink),
        // The simulated boards are not registered.
        directory: Some(std::sync::Arc::new(vigil_server::ingest::AcceptAllDevices)),
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        run_with(config, attachments, async {
            let _ = stop_rx.await;
        })
        .await
        .expect("the server runs");
    });
    let ready = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("server ready in time")
        .expect("server starts");
    (ready, committed, stop_tx, task)
}

/// Seqs the server stored for `device`, in storage order, duplicates included.
async fn stored_seqs(ready: &Ready, device: &str) -> Vec<u32> {
    let page = ready
        .store
        .readings(ReadingsQuery {
            device: vigil_protocol::DeviceId::new(device).unwrap(),
            from_ms: 0,
            to_ms: i64::MAX / 2,
            after: None,
            limit: 10_000,
        })
        .await
        .expect("readings query");
    page.readings.iter().map(|r| r.seq).collect()
}

const BOARDS: usize = 100;
const PER_BOARD: u64 = 100;

/// Starts `vigil gateway` and waits for it to report its boards' broker.
async fn start_gateway(config: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["gateway", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("vigil gateway starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("boards' broker on") {
                return;
            }
        }
        panic!("vigil gateway exited before listening");
    })
    .await
    .expect("vigil gateway listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn sigkill(child: &mut Child) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

async fn send_round(boards: &mut [SimBoard], frames: u64, total: &mut u64) {
    for _ in 0..frames {
        for b in boards.iter_mut() {
            b.send(meter_reading(*total)).await.unwrap();
        }
        *total += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_of_100_boards_reaches_upstream_in_order_through_an_outage_and_two_sigkills() {
    let url = test_mqtt_url();
    let cutter = LinkCutter::start((url.host.clone(), url.port))
        .await
        .unwrap();
    let site = SiteFixture::new(BOARDS, cutter.addr()).unwrap();
    let broker_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = site.write_config_file(broker_port).unwrap();
    let collector = UpstreamCollector::start(&url, site.site(), site.gateway())
        .await
        .unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let (server, mut committed, stop_server, server_task) = start_server(
        &format!("mqtt://{}:{}", url.host, url.port),
        store_dir.path(),
    )
    .await;
    let mut gateway = start_gateway(&config).await;
    let broker = std::net::SocketAddr::from(([127, 0, 0, 1], broker_port));
    let mut boards: Vec<SimBoard> = site
        .devices
        .iter()
        .map(|d| SimBoard::start(broker, d, &site.secret, 1))
        .collect();
    for b in &boards {
        b.wait_connected(30).await.unwrap();
    }

    let mut rounds = 0;
    send_round(&mut boards, 20, &mut rounds).await;
    cutter.cut();
    send_round(&mut boards, 20, &mut rounds).await;
    // Everything is confirmed durable while nothing can leave: the spool holds it.
    for b in &boards {
        b.wait_receipted(60).await.unwrap();
    }
    let before_kill = collector.with(|c| c.frames.len());
    assert!(before_kill < 4_000, "the link was cut");
    sigkill(&mut gateway).await;
    gateway = start_gateway(&config).await;
    for b in &boards {
        b.wait_connections(2, 30).await.unwrap();
    }
    send_round(&mut boards, 15, &mut rounds).await;
    cutter.restore();
    send_round(&mut boards, 15, &mut rounds).await;
    // Killed again while the backlog drains and new frames arrive.
    collector
        .wait_for(60, |c| c.frames.len() > before_kill)
        .await
        .expect("the backlog starts draining");
    sigkill(&mut gateway).await;
    gateway = start_gateway(&config).await;
    for b in &boards {
        b.wait_connections(3, 30).await.unwrap();
    }
    send_round(&mut boards, 30, &mut rounds).await;
    assert_eq!(rounds, PER_BOARD);

    for b in &boards {
        b.wait_receipted(120).await.unwrap();
    }
    let total = BOARDS as u64 * PER_BOARD;
    collector
        .wait_for(120, |c| c.frames.len() as u64 >= total)
        .await
        .expect("every frame reaches the upstream broker");
    collector.with(|c| {
        for d in &site.devices {
            for seq in 1..=PER_BOARD as u32 {
                assert!(
                    c.frames.contains(&(d.clone(), 1, seq)),
                    "{d} seq {seq} missing"
                );
            }
        }
        assert_eq!(c.frames.len() as u64, total);
        assert_eq!(c.bad_entries, 0);
        let disordered = c.out_of_order_devices();
        assert!(
            disordered.is_empty(),
            "frames out of order for {disordered:?}"
        );
        eprintln!(
            "{} distinct frames in {} batch entries ({} duplicates on the wire)",
            c.frames.len(),
            c.entries,
            c.entries - c.frames.len() as u64
        );
    });
    sigkill(&mut gateway).await;

    // The server saw the same deliveries, duplicates included, and kept each frame once.
    let ours: std::collections::HashSet<&str> = site.devices.iter().map(String::as_str).collect();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut new_frames = 0;
        while new_frames < total {
            let frame = committed.recv().await.expect("the server keeps running");
            if ours.contains(frame.frame.device_id.as_str()) {
                new_frames += 1;
            }
        }
    })
    .await
    .expect("the server commits every frame");
    for d in &site.devices {
        let mut seqs = stored_seqs(&server, d).await;
        seqs.sort_unstable();
        let expected: Vec<u32> = (1..=PER_BOARD as u32).collect();
        assert_eq!(
            seqs, expected,
            "{d}: the server's store holds each frame exactly once"
        );
    }
    stop_server.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server_task)
        .await
        .expect("server stops in time")
        .unwrap();
}
