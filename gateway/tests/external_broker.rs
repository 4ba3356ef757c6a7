//! The gateway with an external local broker (here the test Mosquitto) instead of the
//! embedded one: frames are validated, spooled, confirmed and forwarded the same way.

// Against real brokers in real time: deadlines here are guards, not logic.
#![allow(clippy::disallowed_methods)]

use tokio::sync::oneshot;
use vigil_gateway::config::BoardBroker;
use vigil_gateway::harness::{
    meter_reading, test_mqtt_url, SimBoard, SiteFixture, UpstreamCollector,
};
use vigil_gateway::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_through_an_external_local_broker_are_confirmed_and_forwarded() {
    let url = test_mqtt_url();
    let upstream: std::net::SocketAddr = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut site = SiteFixture::new(2, upstream).unwrap();
    site.config.boards = BoardBroker::External { url: url.clone() };
    let collector = UpstreamCollector::start(&url, site.site(), site.gateway())
        .await
        .unwrap();
    let gateway = Gateway::bind(site.config.clone()).await.unwrap();
    assert_eq!(gateway.boards_addr(), None);
    let counters = gateway.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let device = site.devices[0].clone();
    let mut board = SimBoard::start(upstream, &device, &site.secret, 3);
    board.wait_connected(10).await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..20 {
        seqs.push(board.send(meter_reading(i)).await.unwrap());
    }
    board
        .wait_receipted(30)
        .await
        .expect("the gateway confirms frames read from the external broker");
    collector
        .wait_for(30, |c| {
            seqs.iter()
                .all(|s| c.frames.contains(&(device.clone(), 3, *s)))
        })
        .await
        .unwrap();
    assert!(counters.snapshot()["frames_spooled"] >= 20);
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
