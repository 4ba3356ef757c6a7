//! Telemetry endpoints over an in-memory `TelemetryQueries`: joining, scoping, paging, buckets.

mod api_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use vigil_server::auth::Role;
use vigil_server::http::telemetry::{DeviceLatestState, Reading, ReadingBody};
use vigil_server::ids::DeviceId;

async fn setup(tag: &str) -> (TestApp, String) {
    let app = TestApp::new(Backend::Sqlite, tag).await;
    app.add_user("root", Role::Admin, None).await;
    let t = app.login("root").await;
    let doc = json!({
        "sites": [site_json("site-a"), site_json("site-b")],
        "residents": [resident_json("res-a", "site-a"), resident_json("res-b", "site-b")],
        "devices": [device_json("met-a", "site-a", "res-a"), device_json("met-b", "site-b", "res-b"),
            {"id": "pend-a", "kind": "pendant", "site_id": "site-a", "resident_id": "res-a"}],
    });
    let r = app
        .call(Method::POST, "/api/v1/import", Some(&t), Some(doc))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (app, t)
}

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn meter(total_ml: u64) -> ReadingBody {
    ReadingBody::Meter {
        total_ml,
        flow_ml_per_min: 0,
        battery_mv: 3000,
        tamper: false,
        leak: false,
    }
}

#[tokio::test]
async fn device_states_join_the_registry_with_the_latest_state_in_scope() {
    let (app, t) = setup("states").await;
    app.telemetry.latest.lock().unwrap().extend([
        DeviceLatestState {
            device_id: dev("met-a"),
            last_seen: t0(),
            battery_mv: Some(2900),
            last_reading: None,
        },
        DeviceLatestState {
            device_id: dev("met-b"),
            last_seen: t0(),
            battery_mv: Some(3100),
            last_reading: None,
        },
    ]);
    let r = app
        .call(Method::GET, "/api/v1/device-states", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let met_a = items.iter().find(|i| i["device"]["id"] == "met-a").unwrap();
    assert_eq!(met_a["state"]["battery_mv"], 2900);
    let pend = items
        .iter()
        .find(|i| i["device"]["id"] == "pend-a")
        .unwrap();
    assert!(pend.get("state").is_none(), "never reported: {pend}");

    app.add_user("mgr-a", Role::Manager, Some(&["site-a"]))
        .await;
    let m = app.login("mgr-a").await;
    let r = app
        .call(Method::GET, "/api/v1/device-states?limit=1", Some(&m), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["next_after"], "met-a");
    let r = app
        .call(
            Method::GET,
            "/api/v1/device-states?limit=1&after=met-a",
            Some(&m),
            None,
        )
        .await;
    assert_eq!(r.body["items"][0]["device"]["id"], "pend-a");
    assert!(!r.text.contains("met-b"));
}

#[tokio::test]
async fn readings_are_paged_in_order_within_the_range() {
    let (app, t) = setup("readings").await;
    {
        let mut rs = app.telemetry.readings.lock().unwrap();
        for i in 0..25u32 {
            rs.push((
                dev("met-a"),
                Reading {
                    boot_id: 1,
                    seq: i + 1,
                    at: t0() + Duration::minutes(i64::from(i)),
                    body: meter(u64::from(i) * 1000),
                },
            ));
        }
        rs.push((
            dev("met-b"),
            Reading {
                boot_id: 1,
                seq: 1,
                at: t0(),
                body: meter(7),
            },
        ));
    }
    let from = t0().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (t0() + Duration::minutes(20)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut uri = format!("/api/v1/devices/met-a/readings?from={from}&to={to}&limit=8");
    let mut seqs = Vec::new();
    let mut pages = 0;
    loop {
        let r = app.call(Method::GET, &uri, Some(&t), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        pages += 1;
        for reading in r.body["readings"].as_array().unwrap() {
            assert_eq!(reading["body"]["kind"], "meter");
            seqs.push(reading["seq"].as_u64().unwrap());
        }
        match r.body["next"].as_str() {
            Some(next) => {
                uri = format!(
                    "/api/v1/devices/met-a/readings?from={from}&to={to}&limit=8&after={next}"
                )
            }
            None => break,
        }
    }
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    assert_eq!(pages, 3);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/devices/met-a/readings?from={to}&to={from}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "to");
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/devices/met-a/readings?from={from}&to={to}&after=1.2"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "after");
}

#[tokio::test]
async fn water_use_sums_the_residents_meters_per_local_day() {
    let (app, t) = setup("water").await;
    // Shanghai is UTC+8: local midnight of 1 Dec is 30 Nov 16:00 UTC.
    let utc = |d, h| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
    app.telemetry.usage.lock().unwrap().extend([
        (dev("met-a"), utc(30, 15), 10_000),  // 30 Nov 23:00 local
        (dev("met-a"), utc(30, 16), 20_000),  // 1 Dec 00:00 local
        (dev("met-a"), utc(30, 23), 5_000),   // 1 Dec 07:00 local
        (dev("pend-a"), utc(30, 23), 99_999), // not a meter
        (dev("met-b"), utc(30, 23), 77_777),  // someone else's
    ]);
    let r = app
        .call(Method::GET, "/api/v1/residents/res-a/water-use?from=2026-11-29T16:00:00Z&to=2026-12-01T16:00:00Z&bucket=day", Some(&t), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["timezone"], "Asia/Shanghai");
    assert_eq!(
        r.body["buckets"],
        json!([
            {"start": "2026-11-29T16:00:00Z", "used_ml": 10_000},
            {"start": "2026-11-30T16:00:00Z", "used_ml": 25_000},
        ])
    );
    let r = app
        .call(Method::GET, "/api/v1/residents/res-a/water-use?from=2026-11-30T15:00:00Z&to=2026-11-30T17:00:00Z&bucket=hour", Some(&t), None)
        .await;
    assert_eq!(r.body["buckets"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = app
        .call(Method::GET, "/api/v1/residents/res-a/water-use?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&bucket=hour", Some(&t), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "two months of hours is too long"
    );
}
