//! The webhook dispatcher against local receivers on port 0: signatures, retries, rejection,
//! a dead receiver beside a healthy one, the delivery log and the audit trail on both
//! alert-store backends (a fresh PostgreSQL schema and a fresh SQLite file per test).

#[macro_use]
mod alert_store_support;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_store_support::{one_call, site, PgDb, SqliteDb, TestDb};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::{mpsc, oneshot};

use vigil_server::alert_store::{AlertStore, AnyAlertStore};
use vigil_server::alerts::audit::{AuditChange, NotifyOutcome};
use vigil_server::alerts::lifecycle::AlertId;
use vigil_server::alerts::{AlertKind, Timestamp};
use vigil_server::escalation::Notification;
use vigil_server::ids::ResponderId;
use vigil_server::notify::dispatch::{spawn_webhooks, WebhookHandle, WebhookSettings};
use vigil_server::notify::webhook::{
    verify, AttemptResult, DeliveryId, DeliveryOutcome, DeliveryRecord, RetrySchedule,
    WebhookSecret, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER,
};

const GUARD: Duration = Duration::from_secs(20);

// ---- receivers ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
}

#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

struct Behaviour {
    answers: Mutex<VecDeque<Answer>>,
    then: Answer,
    seen: mpsc::UnboundedSender<Received>,
}

async fn receive(State(b): State<Arc<Behaviour>>, headers: HeaderMap, body: String) -> StatusCode {
    let answer = b.answers.lock().unwrap().pop_front().unwrap_or(b.then);
    let _ = b.seen.send(Received { headers, body });
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Hang => std::future::pending().await,
    }
}

/// A receiver answering `first` in order, then `then` forever.
struct Receiver {
    url: String,
    seen: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start(first: &[Answer], then: Answer) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let behaviour = Arc::new(Behaviour {
            answers: Mutex::new(first.iter().copied().collect()),
            then,
            seen: tx,
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(behaviour);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen: rx }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(GUARD, self.seen.recv())
            .await
            .expect("a request in time")
            .expect("receiver running")
    }
}

fn delivery_id(r: &Received) -> DeliveryId {
    DeliveryId(
        r.headers[DELIVERY_HEADER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

// ---- the dispatcher -----------------------------------------------------------------

const SECRET: &[u8] = b"test-secret-of-enough-bytes";

fn settings(retry_initial_ms: u64, max_attempts: u32, timeout: Duration) -> WebhookSettings {
    WebhookSettings {
        secret: WebhookSecret::new(SECRET).unwrap(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
        retry: RetrySchedule {
            initial: Duration::from_millis(retry_initial_ms),
            max_delay: Duration::from_secs(1),
            max_attempts,
        },
        queue_file: None,
    }
}

struct Running {
    handle: WebhookHandle,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(store: AnyAlertStore, settings: WebhookSettings) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle, task) = spawn_webhooks(store, settings, async {
            let _ = stopped.await;
        });
        Self {
            handle,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(GUARD, self.task)
            .await
            .expect("the dispatcher stops in time")
            .unwrap();
    }
}

/// The notification of the call `one_call` raised (alert 1 of home-1).
fn notification() -> Notification {
    Notification {
        alert: AlertId(1),
        site: site("home-1"),
        kind: AlertKind::Call,
        tier: 0,
        responder: ResponderId::new("carer-a").unwrap(),
    }
}

/// Waits until `check` gives a value (the store is written after the receiver answered).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(GUARD, poll)
        .await
        .unwrap_or_else(|_| panic!("{what}: not seen in time"))
}

async fn log_of(store: &AnyAlertStore, id: DeliveryId, n: usize) -> Vec<DeliveryRecord> {
    eventually("delivery log", || async {
        let log = store.deliveries(id).await.unwrap();
        (log.len() >= n).then_some(log)
    })
    .await
}

/// The webhook outcomes in alert 1's audit trail, once there are `n`.
async fn webhook_outcomes(store: &AnyAlertStore, n: usize) -> Vec<NotifyOutcome> {
    eventually("audit outcomes", || async {
        let trail = store.alert_detail(AlertId(1)).await.unwrap()?.trail;
        let outcomes: Vec<NotifyOutcome> = trail
            .into_iter()
            .filter_map(|r| match r.change {
                AuditChange::Notified {
                    channel, outcome, ..
                } if channel == "webhook" => Some(outcome),
                _ => None,
            })
            .collect();
        (outcomes.len() >= n).then_some(outcomes)
    })
    .await
}

#[allow(clippy::disallowed_methods)] // the receiver's side checks against the real clock
fn wall_now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_ms(ms as u64)
}

// ---- tests (each on both backends) ----------------------------------------------------

async fn a_delivery_is_signed_so_the_receiver_can_verify_it_and_logged<D: TestDb>(db: &D)
where
    AnyAlertStore: From<D::Store>,
{
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let mut receiver = Receiver::start(&[], Answer::Status(204)).await;
    let running = Running::start(store.clone(), settings(50, 3, Duration::from_secs(5)));
    let body = r#"{"alert":1,"kind":"call"}"#.to_owned();
    running.handle.send(
        "carer-a",
        &receiver.url,
        "alert.raised",
        body.clone(),
        Some(notification()),
    );

    let got = receiver.next().await;
    assert_eq!(got.body, body);
    assert_eq!(got.headers[EVENT_HEADER], "alert.raised");
    assert_eq!(got.headers["content-type"], "application/json");
    let signature = got.headers[SIGNATURE_HEADER].to_str().unwrap();
    let secret = WebhookSecret::new(SECRET).unwrap();
    verify(
        &secret,
        signature,
        got.body.as_bytes(),
        wall_now(),
        Duration::from_secs(300),
    )
    .expect("the signature verifies with the shared secret");
    assert!(
        verify(
            &secret,
            signature,
            b"{\"alert\":2}",
            wall_now(),
            Duration::from_secs(300)
        )
        .is_err(),
        "and binds the body"
    );

    let log = log_of(&store, delivery_id(&got), 1).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].endpoint, "carer-a");
    assert_eq!(log[0].event, "alert.raised");
    assert_eq!(log[0].attempt, 1);
    assert_eq!(log[0].result, AttemptResult::Status { code: 204 });
    assert_eq!(log[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(
        webhook_outcomes(&store, 1).await,
        vec![NotifyOutcome::Delivered]
    );
    running.stop().await;
}

async fn a_server_error_is_retried_with_backoff_until_delivered<D: TestDb>(db: &D)
where
    AnyAlertStore: From<D::Store>,
{
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let mut receiver = Receiver::start(
        &[Answer::Status(500), Answer::Status(503)],
        Answer::Status(200),
    )
    .await;
    let running = Running::start(store.clone(), settings(50, 5, Duration::from_secs(5)));
    running.handle.send(
        "carer-a",
        &receiver.url,
        "alert.raised",
        "{}".into(),
        Some(notification()),
    );
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    let id = delivery_id(&first);
    assert_eq!(delivery_id(&second), id, "the same delivery, again");
    assert_eq!(delivery_id(&third), id);

    let log = log_of(&store, id, 3).await;
    let summary: Vec<(u32, AttemptResult)> =
        log.iter().map(|r| (r.attempt, r.result.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (1, AttemptResult::Status { code: 500 }),
            (2, AttemptResult::Status { code: 503 }),
            (3, AttemptResult::Status { code: 200 }),
        ]
    );
    assert!(matches!(log[0].outcome, DeliveryOutcome::WillRetry { .. }));
    assert_eq!(log[2].outcome, DeliveryOutcome::Delivered);
    // Backoff: the second wait (100 ms) is twice the first (50 ms).
    assert!(log[1].at.since(log[0].at) >= Duration::from_millis(50));
    assert!(log[2].at.since(log[1].at) >= Duration::from_millis(100));

    let outcomes = webhook_outcomes(&store, 3).await;
    assert!(
        matches!(&outcomes[0], NotifyOutcome::Failed(m) if m.contains("HTTP 500") && m.contains("retrying")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], NotifyOutcome::Delivered);
    running.stop().await;
}

async fn a_client_error_is_rejected_at_once_and_not_retried<D: TestDb>(db: &D)
where
    AnyAlertStore: From<D::Store>,
{
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let mut receiver = Receiver::start(&[Answer::Status(400)], Answer::Status(200)).await;
    let running = Running::start(store.clone(), settings(10, 5, Duration::from_secs(5)));
    running.handle.send(
        "carer-a",
        &receiver.url,
        "alert.raised",
        "{}".into(),
        Some(notification()),
    );
    let got = receiver.next().await;
    let log = log_of(&store, delivery_id(&got), 1).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, DeliveryOutcome::Rejected);
    let outcomes = webhook_outcomes(&store, 1).await;
    assert!(
        matches!(&outcomes[..], [NotifyOutcome::Failed(m)] if m.contains("HTTP 400") && m.contains("rejected")),
        "{outcomes:?}"
    );
    // A second delivery goes through: had the first been retried (10 ms backoff), the
    // receiver would have seen it again before this one.
    running
        .handle
        .send("carer-a", &receiver.url, "alert.closed", "{}".into(), None);
    let next = receiver.next().await;
    assert_eq!(next.headers[EVENT_HEADER], "alert.closed");
    running.stop().await;
    assert!(receiver.seen.try_recv().is_err(), "nothing more was sent");
}

async fn a_receiver_that_never_answers_does_not_delay_a_healthy_one<D: TestDb>(db: &D)
where
    AnyAlertStore: From<D::Store>,
{
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let mut dead = Receiver::start(&[], Answer::Hang).await;
    let mut healthy = Receiver::start(&[], Answer::Status(200)).await;
    let timeout = Duration::from_secs(6);
    let running = Running::start(store.clone(), settings(50, 1, timeout));
    running
        .handle
        .send("dead", &dead.url, "alert.raised", "{}".into(), None);
    let stuck = dead.next().await;
    running.handle.send(
        "healthy",
        &healthy.url,
        "alert.raised",
        "{}".into(),
        Some(notification()),
    );
    let ok = healthy.next().await;
    let healthy_log = log_of(&store, delivery_id(&ok), 1).await;
    assert_eq!(healthy_log[0].outcome, DeliveryOutcome::Delivered);
    // Delivered while the dead receiver's attempt is still waiting for its timeout.
    assert!(
        store
            .deliveries(delivery_id(&stuck))
            .await
            .unwrap()
            .is_empty(),
        "the healthy delivery did not wait for the dead one"
    );
    let dead_log = log_of(&store, delivery_id(&stuck), 1).await;
    assert!(
        matches!(&dead_log[0].result, AttemptResult::Transport { error } if error.contains("timed out")),
        "{dead_log:?}"
    );
    assert_eq!(dead_log[0].outcome, DeliveryOutcome::GaveUp);
    running.stop().await;
}

async fn an_unusable_url_is_audited_as_a_failed_notification_and_never_sent<D: TestDb>(db: &D)
where
    AnyAlertStore: From<D::Store>,
{
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let running = Running::start(store.clone(), settings(50, 3, Duration::from_secs(5)));
    running.handle.send(
        "carer-a",
        "ftp://example.invalid/hook",
        "alert.raised",
        "{}".into(),
        Some(notification()),
    );
    let outcomes = webhook_outcomes(&store, 1).await;
    assert!(
        matches!(&outcomes[..], [NotifyOutcome::Failed(m)] if m.contains("not sent") && m.contains("http://")),
        "{outcomes:?}"
    );
    running.stop().await;
}

conformance!(
    a_delivery_is_signed_so_the_receiver_can_verify_it_and_logged,
    a_server_error_is_retried_with_backoff_until_delivered,
    a_client_error_is_rejected_at_once_and_not_retried,
    a_receiver_that_never_answers_does_not_delay_a_healthy_one,
    an_unusable_url_is_audited_as_a_failed_notification_and_never_sent,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_at_shutdown_is_sent_again_after_a_restart_with_its_id() {
    let db = SqliteDb::new().await;
    let store = AnyAlertStore::from(db.instance().await);
    let _ = one_call(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let mut with_file = settings(50, 3, Duration::from_secs(30));
    with_file.queue_file = Some(dir.path().join("webhook-queue.json"));

    let mut receiver = Receiver::start(&[Answer::Hang], Answer::Status(200)).await;
    let running = Running::start(store.clone(), with_file.clone());
    running.handle.send(
        "carer-a",
        &receiver.url,
        "alert.raised",
        "{\"n\":1}".into(),
        Some(notification()),
    );
    let first = receiver.next().await;
    running.stop().await;
    assert!(dir.path().join("webhook-queue.json").exists());

    let running = Running::start(store.clone(), with_file);
    let again = receiver.next().await;
    assert_eq!(
        delivery_id(&again),
        delivery_id(&first),
        "receivers deduplicate on it"
    );
    assert_eq!(again.body, "{\"n\":1}");
    let log = log_of(&store, delivery_id(&first), 1).await;
    assert_eq!(
        log.len(),
        1,
        "the interrupted attempt left no record: {log:?}"
    );
    assert_eq!(log[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(
        webhook_outcomes(&store, 1).await,
        vec![NotifyOutcome::Delivered],
        "the notification was kept with the delivery"
    );
    // Ids go on after the restored ones.
    running
        .handle
        .send("carer-a", &receiver.url, "alert.closed", "{}".into(), None);
    let next = receiver.next().await;
    assert!(delivery_id(&next) > delivery_id(&first));
    running.stop().await;
    db.cleanup().await;
}
