//! `vigil server` raises alerts end to end: a call frame published over MQTT as a board would
//! becomes a call alert that reaches the duty operator's live feed (Server-Sent Events) and
//! the on-duty caregiver's webhook (signed), then climbs the escalation tiers while nobody
//! answers; a restart in the middle neither loses nor repeats a tier; acknowledging it over
//! the HTTP API stops the escalation and sends "help is coming" to the pendant's downlink
//! topic. On SQLite with the embedded broker, and on PostgreSQL with Mosquitto.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use vigil_protocol::{DownlinkBody, DownlinkFrame};
use vigil_server::alert_store::{AlertFilter, AlertStore, AnyAlertStore};
use vigil_server::alerts::audit::AuditChange;
use vigil_server::alerts::lifecycle::AlertId;
use vigil_server::alerts::Severity;
use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::config::ServerConfig;
use vigil_server::escalation::{EscalationPolicy, RoleName, Target, Tier};
use vigil_server::http::ApiConfig;
use vigil_server::notify::settings::SecretText;
use vigil_server::notify::webhook::{verify, WebhookSecret, EVENT_HEADER, SIGNATURE_HEADER};
use vigil_server::registry::{PostgresRegistry, RegistryStore, SqliteRegistry};
use vigil_server::run::{run_with, Attachments, Ready};

const GUARD: Duration = Duration::from_secs(30);
const WEBHOOK_SECRET: &str = "engine-e2e-webhook-secret";

/// A responder's webhook receiver on port 0: every request's signature header and body.
struct WebhookReceiver {
    url: String,
    seen: mpsc::UnboundedReceiver<(String, String, String)>,
}

impl WebhookReceiver {
    async fn start() -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let (tx, seen) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/carer",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let tx = tx.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let _ = tx.send((header(SIGNATURE_HEADER), header(EVENT_HEADER), body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/carer", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    /// The next notification about `alert` (others, e.g. for another test's alert, are skipped).
    async fn notified_about(&mut self, alert: AlertId) -> (String, String, Value) {
        let wait = async {
            loop {
                let (signature, event, body) = self.seen.recv().await.expect("receiver running");
                let json: Value = serde_json::from_str(&body).unwrap();
                if json["notification"]["alert"] == json!(alert.0) {
                    let now = vigil_server::alerts::Timestamp::from_unix_ms(now_ms() as u64);
                    let secret = WebhookSecret::new(WEBHOOK_SECRET.as_bytes()).unwrap();
                    verify(
                        &secret,
                        &signature,
                        body.as_bytes(),
                        now,
                        Duration::from_secs(300),
                    )
                    .expect("the webhook is signed with the server's secret");
                    return (signature, event, json);
                }
            }
        };
        tokio::time::timeout(GUARD, wait)
            .await
            .expect("the caregiver's webhook is called in time")
    }
}

/// The duty operator's live feed: `GET /api/v1/events` read as Server-Sent Events.
struct LiveFeed {
    response: reqwest::Response,
    buffer: String,
}

impl LiveFeed {
    async fn open(api: SocketAddr, token: &str) -> Self {
        let response = reqwest::Client::new()
            .get(format!("http://{api}/api/v1/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// Waits for an `alert` event of `site`; returns its data.
    async fn alert_of(&mut self, site: &str) -> Value {
        let wait = async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let event = block.lines().find_map(|l| l.strip_prefix("event:"));
                    let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                    if let (Some(event), Some(data)) = (event, data) {
                        let data: Value = serde_json::from_str(data.trim()).unwrap();
                        if event.trim() == "alert" && data["site"] == site {
                            return data;
                        }
                    }
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .unwrap()
                    .expect("the stream is open");
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        };
        tokio::time::timeout(GUARD, wait)
            .await
            .expect("an alert event on the live feed in time")
    }
}

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
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

/// Tier 0 (the on-duty caregiver) and tier 1 (the nurse lead: roles the registry derives from
/// the responders' roles), 2 s each; the nurse is re-told every 2 s.
fn policy() -> EscalationPolicy {
    let role = |r: &str| Target::Role(RoleName::new(r).unwrap());
    EscalationPolicy::new(
        vec![
            Tier {
                targets: vec![role("on_duty_caregiver")],
                ack_deadline: Duration::from_secs(2),
            },
            Tier {
                targets: vec![role("nurse_lead")],
                ack_deadline: Duration::from_secs(2),
            },
        ],
        Severity::Major,
    )
    .unwrap()
}

struct Server {
    ready: Ready,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), vigil_server::run::RunError>>,
}

impl Server {
    async fn start(config: ServerConfig) -> Self {
        let stats = Arc::new(vigil_server::ingest::IngestStats::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_with(
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
        let ready = tokio::time::timeout(GUARD, ready_rx)
            .await
            .expect("ready in time")
            .expect("server starts");
        tokio::time::timeout(GUARD, stats.subscribed(2))
            .await
            .expect("ingest subscribes");
        Self { ready, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("stops in time")
            .unwrap()
            .unwrap();
    }

    fn alerts(&self) -> AnyAlertStore {
        self.ready.alerts.clone()
    }
}

async fn login(api: SocketAddr, user: &str) -> String {
    let (status, login) = http(
        api,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": user, "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    login["token"].as_str().unwrap().to_owned()
}

async fn add_user(registry: &dyn RegistryStore, site: &str, name: &str, role: Role) {
    {
        let user = NewUser {
            username: name.into(),
            password: "a long enough password".into(),
            role,
            scope: if role == Role::Admin {
                SiteScope::All
            } else {
                SiteScope::Sites(vec![site.to_owned()])
            },
        };
        create_user(
            registry,
            &PasswordHashing::insecure_fast_for_tests(),
            user,
            chrono::DateTime::from_timestamp_millis(now_ms()).unwrap(),
        )
        .await
        .unwrap();
    }
}

/// Awaits the escalation records of `id` reaching `tiers` tiers, polling the store.
async fn trail_tiers(alerts: &AnyAlertStore, id: AlertId, tiers: usize) -> Vec<usize> {
    let wait = async {
        loop {
            let t = escalated(alerts, id).await;
            if t.len() >= tiers {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(GUARD, wait)
        .await
        .unwrap_or_else(|_| panic!("{tiers} tiers escalated in time"))
}

async fn escalated(alerts: &AnyAlertStore, id: AlertId) -> Vec<usize> {
    let detail = alerts.alert_detail(id).await.unwrap().unwrap();
    detail
        .trail
        .iter()
        .filter_map(|r| match r.change {
            AuditChange::Escalated { tier } => Some(tier),
            _ => None,
        })
        .collect()
}

/// Subscribes to a downlink topic; returns the first downlink frame published on it.
async fn downlink_listener(broker_url: &str, topic: &str) -> oneshot::Receiver<DownlinkFrame> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let addr = vigil_server::ingest::BrokerAddress::parse(broker_url).unwrap();
    let o = MqttOptions::new(unique("down"), addr.host, addr.port);
    let (client, mut eventloop) = AsyncClient::new(o, 16);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = oneshot::channel();
    let (subscribed_tx, subscribed_rx) = oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        let mut tx = Some(tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed_tx.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let (Some(tx), Ok(frame)) = (tx.take(), DownlinkFrame::decode(&p.payload)) {
                        let _ = tx.send(frame);
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(GUARD, subscribed_rx)
        .await
        .expect("subscribed in time")
        .unwrap();
    rx
}

async fn call_flow(config: ServerConfig, registry: Box<dyn RegistryStore>, site: &str) {
    add_user(registry.as_ref(), site, "duty", Role::Admin).await;
    let mut carer_hook = WebhookReceiver::start().await;
    let server = Server::start(config.clone()).await;
    let api = server.ready.api.unwrap();
    let token = login(api, "duty").await;
    let pendant = format!("{site}-p");
    let far = chrono::DateTime::from_timestamp_millis(now_ms() + 86_400_000)
        .unwrap()
        .to_rfc3339();
    let past = chrono::DateTime::from_timestamp_millis(now_ms() - 86_400_000)
        .unwrap()
        .to_rfc3339();
    let doc = json!({
        "sites": [{"id": site, "kind": "household", "name": "Flat 9", "address": "9 Main Street", "timezone": "Asia/Shanghai"}],
        "residents": [{"id": format!("{site}-r"), "site_id": site, "name": "Wang Wei", "emergency_contacts": [], "conditions": []}],
        "devices": [{"id": pendant, "kind": "pendant", "site_id": site, "resident_id": format!("{site}-r")}],
        "responders": [
            {"id": format!("{site}-carer"), "name": "Carer", "role": "caregiver", "site_ids": [site],
             "channels": [{"kind": "webhook", "url": carer_hook.url}]},
            {"id": format!("{site}-nurse"), "name": "Nurse", "role": "nurse", "site_ids": [site],
             "channels": [{"kind": "phone", "number": "+86 138 0000 0000"}]}
        ],
        "shifts": [
            {"id": format!("{site}-s1"), "site_id": site, "responder_id": format!("{site}-carer"),
             "schedule": {"type": "dated", "start": past, "end": far}},
            {"id": format!("{site}-s2"), "site_id": site, "responder_id": format!("{site}-nurse"),
             "schedule": {"type": "dated", "start": past, "end": far}}
        ],
    });
    let (status, body) = http(api, "POST", "/api/v1/import", Some(&token), Some(doc)).await;
    assert!(status == 200 || status == 201, "import: {status} {body}");
    // A supervisor of this site (the site exists now).
    add_user(registry.as_ref(), site, "watcher", Role::Supervisor).await;
    // The engine reloads the registry every 100 ms; a frame of a board it does not know yet
    // would be counted and dropped, so give it a few reloads.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut live = LiveFeed::open(api, &token).await;

    publish(
        &server.ready.broker_url,
        vec![(
            format!("vigil/v1/dev/{pendant}/up"),
            encode(&press(&pendant, 4, 31)),
        )],
    )
    .await;
    let alerts = server.alerts();
    let find = async {
        loop {
            let page = alerts.list_alerts(&AlertFilter::default()).await.unwrap();
            if let Some(a) = page.alerts.into_iter().find(|a| a.site.as_str() == site) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let alert = tokio::time::timeout(GUARD, find)
        .await
        .expect("a call alert is raised");
    assert_eq!(alert.key.kind.as_str(), "call");
    // The duty operator's console hears of it at once…
    let event = live.alert_of(site).await;
    assert_eq!(event["id"], json!(alert.id.0), "{event}");
    assert_eq!(event["key"]["kind"], "call", "{event}");
    assert_eq!(event["severity"], "critical", "{event}");
    // …and the on-duty caregiver's webhook is called, signed, as tier 0.
    let (_, hook_event, body) = carer_hook.notified_about(alert.id).await;
    assert_eq!(hook_event, "alert.notify");
    assert_eq!(body["notification"]["tier"], 0, "{body}");
    assert_eq!(body["notification"]["kind"], "call", "{body}");
    assert_eq!(trail_tiers(&alerts, alert.id, 1).await, [0]);

    // Restart in the middle: tier 1 is due while the server is down.
    server.stop().await;
    let server = Server::start(config.clone()).await;
    let api = server.ready.api.unwrap();
    let alerts = server.alerts();
    assert_eq!(
        trail_tiers(&alerts, alert.id, 2).await,
        [0, 1],
        "nothing lost, nothing repeated"
    );

    // The nurse has only a phone: the trail says it was not delivered, never that it was.
    let detail = alerts.alert_detail(alert.id).await.unwrap().unwrap();
    assert!(detail.trail.iter().any(|r| matches!(&r.change,
        AuditChange::Notified { channel, outcome: vigil_server::alerts::audit::NotifyOutcome::Failed(m), .. }
            if channel == "phone" && m.contains("not delivered"))));

    let token = login(api, "duty").await;
    let watcher = login(api, "watcher").await;
    let path = format!("/api/v1/alerts/{}/acknowledge", alert.id.0);
    let (status, body) = http(api, "POST", &path, Some(&watcher), None).await;
    assert_eq!(status, 403, "supervisors watch: {body}");
    let down = downlink_listener(
        &server.ready.broker_url,
        &format!("vigil/v1/dev/{pendant}/down"),
    )
    .await;
    let (status, body) = http(
        api,
        "POST",
        &path,
        Some(&token),
        Some(json!({"note": "on the phone with Mr Wang"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "acknowledged", "{body}");
    let (status, body) = http(api, "POST", &path, Some(&token), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acknowledged"),
        "{body}"
    );
    let (status, _) = http(
        api,
        "POST",
        "/api/v1/alerts/999999/acknowledge",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let frame = tokio::time::timeout(GUARD, down)
        .await
        .expect("help is coming in time")
        .unwrap();
    assert!(
        matches!(frame.body, DownlinkBody::HelpComing(h) if h.seq == 31 && h.boot_id == 4 && h.alert_id == alert.id.0),
        "{frame:?}"
    );
    // Two deadlines later nobody else has been told.
    let tiers = escalated(&alerts, alert.id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(escalated(&alerts, alert.id).await, tiers);
    server.stop().await;
}

fn base_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.ingest.max_batch_delay_ms = 5;
    config.api = Some(ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ApiConfig::default()
    });
    config.engine.default_policy = Some(policy());
    config.engine.escalation_poll_ms = 100;
    config.notify.webhook_secret = Some(SecretText(WEBHOOK_SECRET.into()));
    config
}

#[tokio::test]
async fn sqlite_and_embedded_broker_a_call_escalates_survives_a_restart_and_stops_when_acknowledged(
) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config();
    config.broker.embedded.port = 0;
    config.database.data_dir = dir.path().to_owned();
    let registry =
        SqliteRegistry::open(&dir.path().join(vigil_server::http::server::REGISTRY_FILE)).unwrap();
    call_flow(config, Box::new(registry), "e2e-home").await;
}

#[tokio::test]
async fn postgres_and_mosquitto_a_call_escalates_survives_a_restart_and_stops_when_acknowledged() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config();
    // The webhook queue file lives in the data directory even with PostgreSQL.
    config.database.data_dir = dir.path().to_owned();
    config.broker.url = Some(mqtt_url());
    config.broker.client_id = unique("engine-e2e");
    // Other tests share Mosquitto: a group of our own, so no other server takes our frames.
    config.broker.shared_group = unique("g");
    config.database.url = Some(schema.url.clone());
    let registry = PostgresRegistry::connect(&schema.url, None).await.unwrap();
    let site = unique("pg-");
    call_flow(config, Box::new(registry), &site).await;
    schema.drop_schema().await;
}
