//! `vigil server` as a whole: frames published to its embedded broker become readings that
//! a signed-in user reads over its HTTP API.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::config::ServerConfig;
use vigil_server::http::server::REGISTRY_FILE;
use vigil_server::http::ApiConfig;
use vigil_server::registry::SqliteRegistry;
use vigil_server::run::{run_with, Attachments};

/// One HTTP/1.1 request on a fresh connection; returns the status and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Small answers may come chunked: take the JSON between the first `{` and the last `}`.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

#[tokio::test]
async fn readings_published_to_the_server_are_served_over_its_api_to_a_signed_in_user() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.broker.embedded.port = 0;
    config.database.data_dir = dir.path().to_owned();
    config.ingest.max_batch_delay_ms = 5;
    config.api = Some(ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ApiConfig::default()
    });
    let stats = Arc::new(vigil_server::ingest::IngestStats::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(run_with(
        config,
        Attachments {
            stats: stats.clone(),
            ready: Some(ready_tx),
            ..Default::default()
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    let ready = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("ready in time")
        .expect("server starts");
    let api = ready.api.expect("the API is served when configured");
    tokio::time::timeout(Duration::from_secs(30), stats.subscribed(2))
        .await
        .expect("ingest subscribes");

    // An account, made the way `vigil user add` makes it.
    let registry = SqliteRegistry::open(&dir.path().join(REGISTRY_FILE)).unwrap();
    let user = NewUser {
        username: "duty".into(),
        password: "a long enough password".into(),
        role: Role::Admin,
        scope: SiteScope::All,
    };
    create_user(
        &registry,
        &PasswordHashing::insecure_fast_for_tests(),
        user,
        chrono::DateTime::from_timestamp_millis(now_ms()).unwrap(),
    )
    .await
    .unwrap();
    let (status, login) = http(
        api,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "duty", "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();

    let doc = json!({
        "sites": [{"id": "home-1", "kind": "household", "name": "Flat 3", "address": "1 Main Street", "timezone": "Europe/Rome"}],
        "residents": [{"id": "res-1", "site_id": "home-1", "name": "Maria", "emergency_contacts": [], "conditions": []}],
        "devices": [{"id": "e2e-m1", "kind": "meter", "site_id": "home-1", "resident_id": "res-1"}],
    });
    let (status, body) = http(api, "POST", "/api/v1/import", Some(&token), Some(doc)).await;
    assert!(status == 200 || status == 201, "import: {status} {body}");

    let now = now_ms() as u64;
    let frames: Vec<_> = (1..=3)
        .map(|s| (now, meter("e2e-m1", 1, s, 2000, 3300)))
        .collect();
    publish(
        &ready.broker_url,
        vec![(
            "vigil/v1/site/home-1/gw/gw-1/batch".into(),
            batch("home-1", "gw-1", 1, &frames),
        )],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(30), stats.acknowledged(1))
        .await
        .expect("the batch is committed and acknowledged");

    let from = chrono::DateTime::from_timestamp_millis(now as i64 - 3_600_000)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = chrono::DateTime::from_timestamp_millis(now as i64 + 3_600_000)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, page) = http(
        api,
        "GET",
        &format!("/api/v1/devices/e2e-m1/readings?from={from}&to={to}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<u64> = page["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3], "{page}");
    let (status, _) = http(
        api,
        "GET",
        &format!("/api/v1/devices/e2e-m1/readings?from={from}&to={to}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "telemetry needs a session");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("stops in time")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_busy_api_address_stops_the_server_with_an_error_naming_it_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.broker.embedded.port = 0;
    config.database.data_dir = dir.path().to_owned();
    config.api = Some(ApiConfig {
        listen: addr,
        ..ApiConfig::default()
    });
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        run_with(config, Attachments::default(), std::future::pending()),
    )
    .await
    .expect("fails at start, not later");
    let message = result.expect_err("the address is taken").to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("--api-listen"), "{message}");
}
