//! Test (b): a call made while the internet link is down shows on the local console at once,
//! reaches the upstream broker when the link returns, and its local acknowledgement and the
//! server's "help is coming" flow through the gateway.
// Against real brokers in real time: deadlines here are guards, not logic.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use rumqttc::QoS;
use serde_json::Value;
use tokio::sync::oneshot;
use vigil_gateway::harness::{
    http_get, http_post_json, test_mqtt_url, LinkCutter, SimBoard, SiteFixture, UpstreamCollector,
};
use vigil_gateway::Gateway;
use vigil_protocol::{
    ButtonEvent, ButtonKind, DeviceId, DownlinkBody, DownlinkFrame, HelpComing, UplinkBody,
};

async fn console_alarm(console: std::net::SocketAddr, device: &str, seq: u32) -> Option<Value> {
    let (status, body) = http_get(console, "/api/alarms").await.ok()?;
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).ok()?;
    view["alarms"]
        .as_array()?
        .iter()
        .find(|a| a["device"] == device && a["seq"] == seq)
        .cloned()
}

/// Polls the console (a page refreshes the same way) until `pred` holds; a guard, not a pace.
async fn wait_console(
    console: std::net::SocketAddr,
    device: &str,
    seq: u32,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(a) = console_alarm(console, device, seq).await {
            if pred(&a) {
                return a;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "console did not show the expected alarm state within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_an_outage_shows_on_the_console_at_once_and_upstream_when_the_link_returns() {
    let url = test_mqtt_url();
    let cutter = LinkCutter::start((url.host.clone(), url.port))
        .await
        .unwrap();
    let site = SiteFixture::new(3, cutter.addr()).unwrap();
    let collector = UpstreamCollector::start(&url, site.site(), site.gateway())
        .await
        .unwrap();
    let gateway = Gateway::bind(site.config.clone()).await.unwrap();
    let broker = gateway.boards_addr().unwrap();
    let console = gateway.console_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    collector
        .wait_for(15, |c| !c.statuses.is_empty())
        .await
        .expect("the gateway reports its status upstream");

    let (status, page) = http_get(console, "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("Local alarms") && page.contains("/console.js"),
        "{page}"
    );
    let (status, script) = http_get(console, "/console.js").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        script.contains("AudioContext"),
        "the page beeps without external assets"
    );

    cutter.cut();
    let device = site.devices[1].clone();
    let mut pendant = SimBoard::start(broker, &device, &site.secret, 7);
    pendant.wait_connected(10).await.unwrap();
    let call = UplinkBody::Button(ButtonEvent {
        kind: ButtonKind::Press,
        cancels_seq: None,
    });
    let seq = pendant.send(call).await.unwrap();
    pendant
        .wait_receipted(10)
        .await
        .expect("the call is durable on the gateway");

    let alarm = wait_console(console, &device, seq, 5, |_| true).await;
    assert_eq!(alarm["kind"], "call");
    assert_eq!(alarm["resident"], "Resident 1");
    assert_eq!(alarm["room"], "101");
    assert_eq!(alarm["reached_server"], false, "the link is cut");
    let (_, view) = http_get(console, "/api/alarms").await.unwrap();
    assert!(view.contains("\"uplink_connected\":false"), "{view}");
    assert!(
        collector.with(|c| c.urgent.is_empty()),
        "nothing can cross a cut link"
    );

    cutter.restore();
    collector
        .wait_for(30, |c| {
            c.urgent
                .iter()
                .any(|f| f.device_id.as_str() == device && f.seq == seq && f.boot_id == 7)
        })
        .await
        .expect("the call reaches the upstream broker once the link returns");
    wait_console(console, &device, seq, 10, |a| a["reached_server"] == true).await;

    let path = format!("/api/alarms/{device}/7/{seq}/ack");
    let (status, body) = http_post_json(console, &path, r#"{"by":"Nurse Wang"}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_post_json(console, &path, r#"{"by":"Someone Else"}"#)
        .await
        .unwrap();
    assert_eq!(status, 409, "an alarm is acknowledged once");
    let (status, _) = http_post_json(console, "/api/alarms/nobody/1/1/ack", r#"{"by":"X"}"#)
        .await
        .unwrap();
    assert_eq!(status, 404);
    collector
        .wait_for(10, |c| {
            c.acks.iter().any(|a| {
                a.device_id.as_str() == device && a.seq == seq && a.by.as_str() == "Nurse Wang"
            })
        })
        .await
        .expect("the local acknowledgement is forwarded upstream");

    let help = DownlinkFrame {
        device_id: DeviceId::new(&device).unwrap(),
        body: DownlinkBody::HelpComing(HelpComing {
            boot_id: 7,
            seq,
            alert_id: 4242,
        }),
    };
    let mut buf = [0u8; 512];
    let n = help.encode(&mut buf).unwrap();
    collector
        .client()
        .publish(
            format!("vigil/v1/site/{}/gw/{}/down", site.site(), site.gateway()),
            QoS::AtLeastOnce,
            false,
            buf[..n].to_vec(),
        )
        .await
        .unwrap();
    let got = pendant.wait_help_coming(10).await.unwrap();
    assert_eq!((got.boot_id, got.seq, got.alert_id), (7, seq, 4242));

    collector
        .wait_for(10, |c| {
            c.statuses.iter().any(|s| {
                s.uplink_connected && s.boards.iter().any(|b| b.device_id.as_str() == device)
            })
        })
        .await
        .expect("the status report lists the board's last-seen time");

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_coming_for_a_board_that_was_offline_is_given_when_it_is_next_heard_from() {
    let url = test_mqtt_url();
    let upstream: std::net::SocketAddr = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let site = SiteFixture::new(1, upstream).unwrap();
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
    collector
        .wait_for(15, |c| !c.statuses.is_empty())
        .await
        .expect("the gateway is connected upstream");

    let device = site.devices[0].clone();
    let help = DownlinkFrame {
        device_id: DeviceId::new(&device).unwrap(),
        body: DownlinkBody::HelpComing(HelpComing {
            boot_id: 2,
            seq: 5,
            alert_id: 99,
        }),
    };
    let mut buf = [0u8; 512];
    let n = help.encode(&mut buf).unwrap();
    collector
        .client()
        .publish(
            format!("vigil/v1/site/{}/gw/{}/down", site.site(), site.gateway()),
            QoS::AtLeastOnce,
            false,
            buf[..n].to_vec(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counters.snapshot()["downlinks_relayed"] < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the downlink was not relayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The board was offline; it connects later and sends a frame.
    let mut board = SimBoard::start(broker, &device, &site.secret, 2);
    board.wait_connected(10).await.unwrap();
    board
        .send(vigil_gateway::harness::meter_reading(1))
        .await
        .unwrap();
    let got = board.wait_help_coming(10).await.unwrap();
    assert_eq!((got.seq, got.alert_id), (5, 99));

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
