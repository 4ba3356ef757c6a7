use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, Notify};
use vigil_protocol::{
    DeviceId, DeviceState, DownlinkBody, DownlinkFrame, HelpComing, MeterReading, Topic,
    UplinkBody, UplinkFrame,
};

/// A simulated board failed to do what a test expected in time.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("board {device}: {what} did not happen within {secs} s")]
    Timeout {
        device: String,
        what: &'static str,
        secs: u64,
    },
    #[error("board {0} has stopped")]
    Stopped(String),
    #[error("frame does not encode: {0}")]
    Encode(vigil_protocol::EncodeError),
}

#[derive(Debug, Default)]
struct BoardState {
    /// Frames not yet covered by a durable receipt, by seq: a real board keeps these.
    unreceipted: BTreeMap<u32, Vec<u8>>,
    connected: bool,
    connections: u32,
    help: Vec<HelpComing>,
    receipts: u64,
}

struct Shared {
    state: Mutex<BoardState>,
    changed: Notify,
}

enum Command {
    Publish(u32),
    ResendAll,
    Raw(String, Vec<u8>),
    Subscribe(String),
}

/// A board that publishes encoded [`UplinkFrame`]s at QoS 1 with its own credentials, keeps
/// every frame until a durable receipt covers it, and after every reconnect (and when
/// receipts stall) sends again, in order, each frame not yet covered — as the firmware does.
pub struct SimBoard {
    device: DeviceId,
    boot_id: u32,
    next_seq: u32,
    window: usize,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl SimBoard {
    /// Starts a board that connects (and keeps reconnecting) to `broker`.
    pub fn start(broker: SocketAddr, device: &str, secret: &str, boot_id: u32) -> Self {
        let device_id =
            DeviceId::new(device).unwrap_or_else(|_| panic!("bad device id {device:?}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(BoardState::default()),
            changed: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_board(
            broker,
            device_id.clone(),
            secret.to_owned(),
            boot_id,
            shared.clone(),
            rx,
        ));
        Self {
            device: device_id,
            boot_id,
            next_seq: 1,
            window: 4_096,
            shared,
            commands: tx,
            task,
        }
    }

    /// Most frames kept unreceipted before [`Self::send`] waits (the board's spool size).
    pub fn set_window(&mut self, frames: usize) {
        self.window = frames.max(1);
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// Sends a frame with the next seq; waits while the board's spool is full.
    pub async fn send(&mut self, body: UplinkBody) -> Result<u32, BoardError> {
        loop {
            let notified = self.shared.changed.notified();
            if self.lock().unreceipted.len() < self.window {
                break;
            }
            if tokio::time::timeout(Duration::from_secs(30), notified)
                .await
                .is_err()
            {
                return Err(self.timeout("room in the board's spool", 30));
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let frame = UplinkFrame {
            device_id: self.device.clone(),
            boot_id: self.boot_id,
            seq,
            uptime_ms: u64::from(seq) * 1_000,
            wall_ms: None,
            body,
        };
        let mut buf = [0u8; vigil_protocol::limits::MAX_FRAME_BYTES];
        let n = frame.encode(&mut buf).map_err(BoardError::Encode)?;
        self.lock().unreceipted.insert(seq, buf[..n].to_vec());
        self.commands
            .send(Command::Publish(seq))
            .map_err(|_| BoardError::Stopped(self.device.to_string()))?;
        Ok(seq)
    }

    /// Publishes arbitrary bytes on any topic (for refusal tests).
    pub fn publish_raw(&self, topic: &str, payload: Vec<u8>) -> Result<(), BoardError> {
        self.commands
            .send(Command::Raw(topic.to_owned(), payload))
            .map_err(|_| BoardError::Stopped(self.device.to_string()))
    }

    /// Subscribes to any filter (for refusal tests).
    pub fn subscribe_raw(&self, filter: &str) -> Result<(), BoardError> {
        self.commands
            .send(Command::Subscribe(filter.to_owned()))
            .map_err(|_| BoardError::Stopped(self.device.to_string()))
    }

    /// Frames still waiting for a durable receipt.
    pub fn unreceipted(&self) -> usize {
        self.lock().unreceipted.len()
    }

    /// Whether frame `seq` is still waiting for a receipt.
    pub fn is_unreceipted(&self, seq: u32) -> bool {
        self.lock().unreceipted.contains_key(&seq)
    }

    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// Times the board has been accepted by the broker.
    pub fn connections(&self) -> u32 {
        self.lock().connections
    }

    /// "Help is coming" downlinks received.
    pub fn help_coming(&self) -> Vec<HelpComing> {
        self.lock().help.clone()
    }

    /// Waits until the broker accepted the board.
    pub async fn wait_connected(&self, secs: u64) -> Result<(), BoardError> {
        self.wait_until(secs, "connection", |s| s.connected).await
    }

    /// Waits until the board is connected and has been accepted `n` times in all.
    pub async fn wait_connections(&self, n: u32, secs: u64) -> Result<(), BoardError> {
        self.wait_until(secs, "a new connection", |s| {
            s.connected && s.connections >= n
        })
        .await
    }

    /// Waits until every frame sent is covered by a receipt, sending the uncovered ones
    /// again whenever receipts stall for a second.
    pub async fn wait_receipted(&self, secs: u64) -> Result<(), BoardError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.shared.changed.notified();
            if self.lock().unreceipted.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.timeout("durable receipts for every frame", secs));
            }
            if tokio::time::timeout(Duration::from_secs(1), notified)
                .await
                .is_err()
            {
                let _ = self.commands.send(Command::ResendAll);
            }
        }
    }

    /// Waits until `pred` holds for the board's state.
    async fn wait_until(
        &self,
        secs: u64,
        what: &'static str,
        pred: impl Fn(&BoardState) -> bool,
    ) -> Result<(), BoardError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.shared.changed.notified();
            if pred(&self.lock()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.timeout(what, secs));
            }
        }
    }

    /// Waits for a "help is coming" downlink.
    pub async fn wait_help_coming(&self, secs: u64) -> Result<HelpComing, BoardError> {
        self.wait_until(secs, "a help-is-coming downlink", |s| !s.help.is_empty())
            .await?;
        self.lock()
            .help
            .first()
            .copied()
            .ok_or_else(|| BoardError::Stopped(self.device.to_string()))
    }

    fn timeout(&self, what: &'static str, secs: u64) -> BoardError {
        BoardError::Timeout {
            device: self.device.to_string(),
            what,
            secs,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A routine meter reading.
pub fn meter_reading(total_ml: u64) -> UplinkBody {
    UplinkBody::Meter(MeterReading {
        total_ml,
        flow_ml_per_min: 0,
        battery_mv: 3_000,
        tamper: false,
        leak: false,
        slot_s: 60,
        slots_ml: heapless::Vec::new(),
    })
}

async fn run_board(
    broker: SocketAddr,
    device: DeviceId,
    secret: String,
    boot_id: u32,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let up = Topic::DeviceUp(device.clone())
        .to_topic_string()
        .to_string();
    let down = Topic::DeviceDown(device.clone())
        .to_topic_string()
        .to_string();
    let state_topic = Topic::DeviceState(device.clone())
        .to_topic_string()
        .to_string();
    let mut will = [0u8; 128];
    let will_len = DeviceState {
        device_id: device.clone(),
        online: false,
        boot_id,
    }
    .encode(&mut will)
    .unwrap_or(0);
    let lock = || {
        shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    loop {
        let mut opts = MqttOptions::new(device.as_str(), broker.ip().to_string(), broker.port());
        opts.set_credentials(device.as_str(), secret.clone());
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_clean_session(true);
        opts.set_last_will(LastWill::new(
            state_topic.clone(),
            will[..will_len].to_vec(),
            QoS::AtLeastOnce,
            false,
        ));
        let (client, mut eventloop) = AsyncClient::new(opts, 16_384);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(3);
        eventloop.set_network_options(net);
        let mut connected = false;
        let resend = |client: &AsyncClient| {
            let frames: Vec<Vec<u8>> = lock().unreceipted.values().cloned().collect();
            for f in frames {
                let _ = client.try_publish(up.clone(), QoS::AtLeastOnce, false, f);
            }
        };
        loop {
            tokio::select! {
                ev = eventloop.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(down.clone(), QoS::AtLeastOnce);
                        resend(&client);
                        connected = true;
                        {
                            let mut s = lock();
                            s.connected = true;
                            s.connections += 1;
                        }
                        shared.changed.notify_waiters();
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(frame) = DownlinkFrame::decode(&p.payload) {
                            let mut s = lock();
                            match frame.body {
                                DownlinkBody::Receipt(r) => {
                                    s.unreceipted.retain(|seq, _| !r.covers(boot_id, *seq));
                                    s.receipts += 1;
                                }
                                DownlinkBody::HelpComing(h) => s.help.push(h),
                                DownlinkBody::Config(_) => {}
                            }
                            drop(s);
                            shared.changed.notify_waiters();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
                cmd = commands.recv(), if connected => match cmd {
                    Some(Command::Publish(seq)) => {
                        let frame = lock().unreceipted.get(&seq).cloned();
                        if let Some(f) = frame {
                            let _ = client.try_publish(up.clone(), QoS::AtLeastOnce, false, f);
                        }
                    }
                    Some(Command::ResendAll) => resend(&client),
                    Some(Command::Raw(topic, payload)) => {
                        let _ = client.try_publish(topic, QoS::AtLeastOnce, false, payload);
                    }
                    Some(Command::Subscribe(filter)) => {
                        let _ = client.try_subscribe(filter, QoS::AtLeastOnce);
                    }
                    None => return,
                },
            }
        }
        lock().connected = false;
        shared.changed.notify_waiters();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
