//! Test (a): 10 000 frames from 100 boards while the upstream link is cut for part of the run
//! and the gateway process is killed with SIGKILL twice: every frame reaches the upstream
//! broker at least once, and each device's frames first arrive in order.
//!
//! The "exactly once in the server's store" half of the test is the server's
//! deduplication on `(device, boot, seq)`; the collector here deduplicates the same way.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use vigil_gateway::harness::{
    meter_reading, test_mqtt_url, LinkCutter, SimBoard, SiteFixture, UpstreamCollector,
};

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
}
