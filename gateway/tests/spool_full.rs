//! Test (d): a full spool refuses routine readings (their board keeps them), never an alarm,
//! and loses nothing once the link returns.
// Against real brokers in real time: deadlines here are guards, not logic.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use vigil_gateway::harness::{
    meter_reading, test_mqtt_url, LinkCutter, SimBoard, SiteFixture, UpstreamCollector,
};
use vigil_gateway::spool::policy::record_cost;
use vigil_gateway::status::Counters;
use vigil_gateway::Gateway;
use vigil_protocol::{DeviceId, FallEvent, UplinkBody, UplinkFrame};

fn counter(c: &Arc<Counters>, name: &str) -> u64 {
    c.snapshot().get(name).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_routine_readings_but_never_an_alarm_and_loses_nothing() {
    let url = test_mqtt_url();
    let cutter = LinkCutter::start((url.host.clone(), url.port))
        .await
        .unwrap();
    cutter.cut();
    let mut site = SiteFixture::new(1, cutter.addr()).unwrap();
    let device = site.devices[0].clone();
    let sample = UplinkFrame {
        device_id: DeviceId::new(&device).unwrap(),
        boot_id: 1,
        seq: 10,
        uptime_ms: 10_000,
        wall_ms: None,
        body: meter_reading(5_000),
    };
    let mut buf = [0u8; 512];
    let frame_len = sample.encode(&mut buf).unwrap();
    const ROOM: u64 = 10;
    site.config.spool_max_bytes = ROOM * record_cost(frame_len);
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

    let mut board = SimBoard::start(broker, &device, &site.secret, 1);
    board.wait_connected(10).await.unwrap();
    for i in 0..25u64 {
        board.send(meter_reading(5_000 + i)).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while counter(&counters, "frames_refused_spool_full") < 25 - ROOM {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            counters.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter(&counters, "frames_spooled"), ROOM);
    while board.unreceipted() > (25 - ROOM) as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "receipts for the spooled frames"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        board.unreceipted(),
        (25 - ROOM) as usize,
        "refused frames stay on the board"
    );
    assert!(!board.is_unreceipted(1) && board.is_unreceipted(25));

    let fall = board
        .send(UplinkBody::Fall(FallEvent {
            free_fall_ms: 400,
            peak_mg: 3_500,
            stillness_ms: 30_000,
            orientation_change_deg: 80,
            cancelled: false,
        }))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while board.is_unreceipted(fall) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fall was not confirmed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        counter(&counters, "frames_spooled"),
        ROOM + 1,
        "an alarm is admitted above the limit"
    );

    cutter.restore();
    board
        .wait_receipted(60)
        .await
        .expect("refused readings are admitted once the backlog drains");
    collector
        .wait_for(30, |c| {
            (1..=26).all(|s| c.frames.contains(&(device.clone(), 1, s)))
        })
        .await
        .expect("every frame, refused at first or not, reaches upstream");
    let routine: Vec<u32> = collector.with(|c| {
        c.first_arrivals[&device]
            .iter()
            .map(|(_, s)| *s)
            .filter(|s| *s != fall)
            .collect()
    });
    assert!(
        routine.windows(2).all(|w| w[0] < w[1]),
        "routine readings keep their order: {routine:?}"
    );

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
