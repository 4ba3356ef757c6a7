//! Test (c): bad credentials, ACL violations and malformed frames are refused, counted and
//! quarantined; they never reach upstream and never stop the gateway.
// Against real brokers in real time: deadlines here are guards, not logic.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use vigil_gateway::harness::{
    meter_reading, test_mqtt_url, SimBoard, SiteFixture, UpstreamCollector,
};
use vigil_gateway::status::Counters;
use vigil_gateway::Gateway;
use vigil_protocol::{DeviceId, UplinkFrame};

async fn wait_counter(counters: &Arc<Counters>, name: &str, at_least: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = counters.snapshot().get(name).copied().unwrap_or(0);
        if v >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counter {name} is {v}, expected at least {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_acl_violations_and_malformed_frames_are_refused_counted_and_quarantined() {
    let url = test_mqtt_url();
    let upstream: std::net::SocketAddr = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let site = SiteFixture::new(2, upstream).unwrap();
    let collector = UpstreamCollector::start(&url, site.site(), site.gateway())
        .await
        .unwrap();
    let gateway = Gateway::bind(site.config.clone()).await.unwrap();
    let broker = gateway.boards_addr().unwrap();
    let counters = gateway.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let (a, b) = (site.devices[0].clone(), site.devices[1].clone());
    let wrong_secret = SimBoard::start(broker, &a, "not the secret", 1);
    let stranger = SimBoard::start(broker, "intruder-9", &site.secret, 1);
    wait_counter(&counters, "auth_refused", 2).await;
    assert!(!wrong_secret.is_connected() && !stranger.is_connected());
    drop((wrong_secret, stranger));

    let mut board = SimBoard::start(broker, &a, &site.secret, 1);
    board.wait_connected(10).await.unwrap();
    let up = format!("vigil/v1/dev/{a}/up");
    board
        .publish_raw(&up, vec![0xa1, 0x00, 0xff, 0x13])
        .unwrap();
    let forged = UplinkFrame {
        device_id: DeviceId::new(&b).unwrap(),
        boot_id: 1,
        seq: 1,
        uptime_ms: 1,
        wall_ms: None,
        body: meter_reading(1),
    };
    let mut buf = [0u8; 512];
    let n = forged.encode(&mut buf).unwrap();
    board.publish_raw(&up, buf[..n].to_vec()).unwrap();
    wait_counter(&counters, "refused_malformed", 1).await;
    wait_counter(&counters, "refused_acl_device_mismatch", 1).await;
    assert!(
        board.is_connected(),
        "a bad frame does not cost the board its connection"
    );

    // Topic ACLs are enforced per login: a violation closes the board's connection.
    board
        .publish_raw(&format!("vigil/v1/dev/{b}/up"), buf[..n].to_vec())
        .unwrap();
    wait_counter(&counters, "refused_acl_topic", 1).await;
    board.wait_connections(2, 10).await.unwrap();
    board
        .publish_raw(
            &format!("vigil/v1/site/{}/gw/{}/batch", site.site(), site.gateway()),
            buf[..n].to_vec(),
        )
        .unwrap();
    wait_counter(&counters, "refused_acl_topic", 2).await;
    board.wait_connections(3, 10).await.unwrap();
    board
        .subscribe_raw(&format!("vigil/v1/dev/{b}/down"))
        .unwrap();
    wait_counter(&counters, "refused_acl_subscribe", 1).await;
    board.wait_connections(4, 10).await.unwrap();

    // The gateway still works, and only the good frame goes upstream.
    let seq = board.send(meter_reading(5_000)).await.unwrap();
    board.wait_receipted(10).await.unwrap();
    collector
        .wait_for(15, |c| c.frames.contains(&(a.clone(), 1, seq)))
        .await
        .unwrap();
    assert_eq!(
        collector.with(|c| c.frames.len()),
        1,
        "refused frames never go upstream"
    );

    let quarantine =
        std::fs::read_to_string(site.config.data_dir.join("quarantine.jsonl")).unwrap();
    let reasons: Vec<String> = quarantine
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"].to_string())
        .collect();
    for r in [
        "malformed",
        "acl_device_mismatch",
        "acl_topic",
        "acl_subscribe",
    ] {
        assert!(
            reasons.iter().any(|x| x.contains(r)),
            "{r} missing from {reasons:?}"
        );
    }

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
