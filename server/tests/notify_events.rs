//! `GET /api/v1/events` on a real socket: Server-Sent Events of the caller's sites, in order,
//! with ids, resumed with `Last-Event-ID`; 401 without a session, 503 without a hub; the
//! server still stops while streams are open.

mod api_support;

use std::time::Duration;

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

use vigil_server::alerts::lifecycle::{Alert, AlertId, AlertState};
use vigil_server::alerts::{AlertKind, Severity, Subject, Timestamp};
use vigil_server::auth::Role;
use vigil_server::detection::action::{details, AlertKey};
use vigil_server::ids::SiteId;
use vigil_server::notify::live::LiveHub;

const GUARD: Duration = Duration::from_secs(20);

fn alert(site: &str, id: u64) -> Alert {
    Alert {
        id: AlertId(id),
        site: SiteId::new(site).unwrap(),
        key: AlertKey::new(
            Subject::Site(SiteId::new(site).unwrap()),
            AlertKind::GatewayOffline,
        ),
        severity: Severity::Major,
        state: AlertState::Open,
        opened_at: Timestamp::from_unix_s(1_700_000_000),
        last_seen_at: Timestamp::from_unix_s(1_700_000_000),
        repeat_count: 0,
        origin: None,
        details: details([]),
        cleared: None,
        acknowledged: None,
        dispatched_to: vec![],
        disposition: None,
        closed_at: None,
        closed_by: None,
    }
}

/// An app with a live hub, served on a free port.
struct Served {
    app: TestApp,
    hub: LiveHub,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(tag: &str) -> Self {
        let config = vigil_server::http::ApiConfig {
            events_session_check_s: 1,
            ..Default::default()
        };
        let mut app = TestApp::with_config(Backend::Sqlite, tag, config).await;
        let hub = LiveHub::new(64);
        app.state = app.state.clone().with_live(hub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(vigil_server::http::serve(
            listener,
            app.state.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            app,
            hub,
            base,
            stop: Some(stop),
            server,
        }
    }

    async fn open(&self, token: Option<&str>, last_event_id: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(format!("{}/api/v1/events", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        tokio::time::timeout(GUARD, req.send())
            .await
            .expect("an answer in time")
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(GUARD, self.server)
            .await
            .expect("the server stops in time, open streams included")
            .unwrap()
            .unwrap();
    }
}

/// Creates the sites (a user's scope may name only existing sites).
async fn add_sites(app: &TestApp, sites: &[&str]) {
    app.add_user("setup", Role::Admin, None).await;
    let token = app.login("setup").await;
    for site in sites {
        let r = app
            .call(
                Method::POST,
                "/api/v1/sites",
                Some(&token),
                Some(site_json(site)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Option<Value>,
}

/// Reads SSE frames off a response; comments and keep-alives are skipped.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an SSE stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: None,
                    data: None,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data = Some(serde_json::from_str(v.trim()).unwrap());
                    }
                }
                if frame.event.is_some() || frame.data.is_some() {
                    return frame;
                }
                continue;
            }
            let chunk = tokio::time::timeout(GUARD, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn alert_ids(frames: &[Frame]) -> Vec<(String, u64)> {
    frames
        .iter()
        .map(|f| {
            (
                f.id.clone().unwrap(),
                f.data.as_ref().unwrap()["id"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_signed_in_user_gets_alert_events_in_order_with_ids() {
    let s = Served::start("events_order").await;
    s.app.add_user("chief", Role::Admin, None).await;
    let token = s.app.login("chief").await;
    let mut events = Events::new(s.open(Some(&token), None).await);
    assert_eq!(s.hub.subscribers(), 1);
    for i in 1..=3 {
        s.hub.publish_alert(&alert("home-a", 10 + i));
    }
    let frames = [
        events.next().await,
        events.next().await,
        events.next().await,
    ];
    assert!(frames.iter().all(|f| f.event.as_deref() == Some("alert")));
    assert_eq!(
        alert_ids(&frames),
        vec![("1".into(), 11), ("2".into(), 12), ("3".into(), 13)]
    );
    assert_eq!(frames[0].data.as_ref().unwrap()["site"], "home-a");
    assert_eq!(frames[0].data.as_ref().unwrap()["state"], "open");
    s.stop().await;
}

#[tokio::test]
async fn a_manager_of_one_site_never_sees_another_sites_events() {
    let s = Served::start("events_scope").await;
    add_sites(&s.app, &["home-a", "home-b"]).await;
    s.app
        .add_user("anna", Role::Manager, Some(&["home-a"]))
        .await;
    let token = s.app.login("anna").await;
    let mut events = Events::new(s.open(Some(&token), None).await);
    s.hub.publish_alert(&alert("home-b", 1));
    s.hub.publish_alert(&alert("home-a", 2));
    s.hub.publish_alert(&alert("home-b", 3));
    s.hub.publish_alert(&alert("home-a", 4));
    let frames = [events.next().await, events.next().await];
    assert_eq!(
        alert_ids(&frames),
        vec![("2".into(), 2), ("4".into(), 4)],
        "only home-a's"
    );
    // Nor on a reconnect that replays.
    let mut replay = Events::new(s.open(Some(&token), Some("0")).await);
    let frames = [replay.next().await, replay.next().await];
    assert_eq!(alert_ids(&frames), vec![("2".into(), 2), ("4".into(), 4)]);
    s.stop().await;
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_resumes_after_it() {
    let s = Served::start("events_resume").await;
    add_sites(&s.app, &["home-a"]).await;
    s.app
        .add_user("olga", Role::Operator, Some(&["home-a"]))
        .await;
    let token = s.app.login("olga").await;
    for i in 1..=4 {
        s.hub.publish_alert(&alert("home-a", i));
    }
    let mut events = Events::new(s.open(Some(&token), Some("2")).await);
    let frames = [events.next().await, events.next().await];
    assert_eq!(alert_ids(&frames), vec![("3".into(), 3), ("4".into(), 4)]);
    s.hub.publish_alert(&alert("home-a", 5));
    assert_eq!(alert_ids(&[events.next().await]), vec![("5".into(), 5)]);
    s.stop().await;
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_to_reload() {
    let s = Served::start("events_reload").await;
    s.app.add_user("chief", Role::Admin, None).await;
    let token = s.app.login("chief").await;
    for i in 1..=100 {
        s.hub.publish_alert(&alert("home-a", i)); // the hub keeps 64
    }
    let mut events = Events::new(s.open(Some(&token), Some("3")).await);
    let reload = events.next().await;
    assert_eq!(reload.event.as_deref(), Some("reload"));
    assert_eq!(reload.id.as_deref(), Some("100"), "resume from the newest");
    assert_eq!(reload.data.unwrap()["oldest"], 37);
    s.stop().await;
}

#[tokio::test]
async fn without_a_session_the_stream_is_refused_with_401() {
    let s = Served::start("events_401").await;
    let r = s.open(None, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let r = s.open(Some(&"0".repeat(64)), None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.hub.subscribers(), 0);
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400_naming_the_header() {
    let s = Served::start("events_400").await;
    s.app.add_user("chief", Role::Admin, None).await;
    let token = s.app.login("chief").await;
    let r = s.open(Some(&token), Some("yesterday")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["field"], "Last-Event-ID");
    s.stop().await;
}

#[tokio::test]
async fn without_a_live_hub_the_endpoint_answers_503_saying_why() {
    let app = TestApp::new(Backend::Sqlite, "events_503").await;
    app.add_user("chief", Role::Admin, None).await;
    let token = app.login("chief").await;
    let r = app
        .call(Method::GET, "/api/v1/events", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"]["code"], "live_events_unavailable");
}

#[tokio::test]
async fn the_stream_ends_when_its_session_is_logged_out() {
    let s = Served::start("events_logout").await;
    s.app.add_user("chief", Role::Admin, None).await;
    let token = s.app.login("chief").await;
    let mut events = Events::new(s.open(Some(&token), None).await);
    let r = s
        .app
        .call(Method::POST, "/api/v1/logout", Some(&token), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    // The next session check (every second here) ends it.
    let end = tokio::time::timeout(GUARD, async {
        loop {
            match events.response.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ended");
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_event_stream() {
    let doc = serde_json::to_value(vigil_server::http::openapi()).unwrap();
    let get = &doc["paths"]["/api/v1/events"]["get"];
    assert!(get.is_object(), "documented");
    assert!(get["responses"]["200"]["content"]["text/event-stream"].is_object());
}
