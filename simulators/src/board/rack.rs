//! The rack: many simulated boards in one thread, each connected over its own TCP socket to
//! a broker (the site's gateway, or the server's broker) through the firmware's own link
//! driver, [`vigil_firmware::link::service`].
//!
//! This is an I/O driver: it owns the sockets and reads the real clock, which it hands to the
//! boards (scenario time for their logic, link time for their MQTT clients).

// The rack is a driver: it reads the real clock and passes it on as `now`.
#![allow(clippy::disallowed_methods)]

use std::io::{ErrorKind as IoKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_firmware::link::service;
use vigil_firmware::mqtt::{MqttCounters, MqttEvent};
use vigil_protocol::{DeviceId, SiteId};

use super::{BoardCounters, BoardInput, SimBoard};
use crate::clock::RunClock;

/// How long the rack sleeps between passes: the boards' input latency.
const PASS: Duration = Duration::from_millis(5);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// What the run's driver asks of the rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RackCommand {
    /// The board loses power (dead battery, broken) / is powered again (a new boot).
    PowerOff(DeviceId),
    PowerOn(DeviceId),
    /// No board of the site can reach its broker (the site's gateway is down) / they can.
    CutSite(SiteId),
    RestoreSite(SiteId),
    /// Only this board's link is cut / restored.
    CutBoard(DeviceId),
    RestoreBoard(DeviceId),
    /// The board's hardware senses this from now on (a press, a fall, smoke, …).
    Sense(DeviceId, BoardInput),
}

/// One board's state as the rack last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardStatus {
    pub device: DeviceId,
    pub powered: bool,
    pub connected: bool,
    pub counters: BoardCounters,
    pub mqtt: MqttCounters,
    /// Frames in the board's RAM spool (not yet covered by a durable receipt).
    pub spooled: usize,
}

/// Where the rack is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RackStatus {
    /// Scenario time the boards have reached, ms.
    pub scenario_ms: u64,
    pub boards: Vec<BoardStatus>,
    /// Boards that failed to boot, with why (they stay off), and inputs a board's hardware
    /// could not sense.
    pub faults: Vec<String>,
}

/// A board and the broker it connects to.
pub struct RackSlot {
    pub board: SimBoard,
    pub broker: SocketAddr,
}

struct Slot {
    board: SimBoard,
    broker: SocketAddr,
    stream: Option<Tcp>,
    cut: bool,
    site_cut: bool,
}

/// A running rack.
pub struct RackHandle {
    commands: Sender<RackCommand>,
    stop: Sender<()>,
    status: Arc<Mutex<RackStatus>>,
    thread: Option<JoinHandle<RackStatus>>,
}

impl RackHandle {
    pub fn send(&self, command: RackCommand) {
        // Fails only when the rack has stopped, when nothing is left to command.
        let _ = self.commands.send(command);
    }

    pub fn status(&self) -> RackStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the rack (sockets close; brokers see the boards' wills) and returns the final
    /// status.
    pub fn stop(mut self) -> RackStatus {
        let _ = self.stop.send(());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RackHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Starts the boards: all boot at scenario time 0 and live through the part of the run
/// before the clock's offset at once (what they make then is not sent); from then on they
/// follow `clock` from `started`, up to `duration`.
pub fn spawn_rack(
    slots: Vec<RackSlot>,
    clock: RunClock,
    started: Instant,
    duration: Duration,
) -> std::io::Result<RackHandle> {
    let (commands, rx) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel();
    let status = Arc::new(Mutex::new(RackStatus::default()));
    let shared = Arc::clone(&status);
    let thread = std::thread::Builder::new()
        .name("vigil-sim-rack".into())
        .spawn(move || run(slots, clock, started, duration, rx, stop_rx, shared))?;
    Ok(RackHandle {
        commands,
        stop,
        status,
        thread: Some(thread),
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn run(
    slots: Vec<RackSlot>,
    clock: RunClock,
    started: Instant,
    duration: Duration,
    commands: Receiver<RackCommand>,
    stop: Receiver<()>,
    status: Arc<Mutex<RackStatus>>,
) -> RackStatus {
    let link_start = Instant::now();
    let link_now = || ms(link_start.elapsed());
    let end = ms(duration);
    let offset = ms(clock.time_offset).min(end);
    let mut faults = Vec::new();
    let mut slots: Vec<Slot> = slots
        .into_iter()
        .map(|s| Slot {
            board: s.board,
            broker: s.broker,
            stream: None,
            cut: false,
            site_cut: false,
        })
        .collect();
    for s in &mut slots {
        if let Err(e) = s.board.power_on(0, link_now()) {
            faults.push(format!("{}: {e}", s.board.id()));
        }
        // The history before the offset: lived, not sent.
        if let Err(e) = s.board.advance(offset, link_now(), false) {
            faults.push(format!("{}: {e}", s.board.id()));
        }
    }
    loop {
        match stop.try_recv() {
            Ok(()) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        let t = ms(clock.scenario_time(started.elapsed())).clamp(offset, end);
        while let Ok(c) = commands.try_recv() {
            apply(&mut slots, c, t, link_now(), &mut faults);
        }
        for s in &mut slots {
            pass(s, t, link_now(), &mut faults);
        }
        if let Ok(mut st) = status.lock() {
            *st = snapshot(&mut slots, t, &faults);
        }
        std::thread::sleep(PASS);
    }
    let t = ms(clock.scenario_time(started.elapsed())).clamp(offset, end);
    snapshot(&mut slots, t, &faults)
}

fn snapshot(slots: &mut [Slot], t: u64, faults: &[String]) -> RackStatus {
    RackStatus {
        scenario_ms: t,
        boards: slots
            .iter_mut()
            .map(|s| {
                let powered = s.board.is_powered();
                let counters = s.board.counters();
                let (connected, mqtt, spooled) = match s.board.client_mut() {
                    Some(c) => (c.is_up(), c.counters(), c.spool().len()),
                    None => (false, MqttCounters::default(), 0),
                };
                BoardStatus {
                    device: s.board.id().clone(),
                    powered,
                    connected,
                    counters,
                    mqtt,
                    spooled,
                }
            })
            .collect(),
        faults: faults.to_vec(),
    }
}

fn apply(
    slots: &mut [Slot],
    command: RackCommand,
    t: u64,
    link_now: u64,
    faults: &mut Vec<String>,
) {
    for s in slots.iter_mut() {
        let mine = match &command {
            RackCommand::PowerOff(d)
            | RackCommand::PowerOn(d)
            | RackCommand::CutBoard(d)
            | RackCommand::RestoreBoard(d)
            | RackCommand::Sense(d, _) => s.board.id() == d,
            RackCommand::CutSite(site) | RackCommand::RestoreSite(site) => s.board.site() == site,
        };
        if !mine {
            continue;
        }
        match &command {
            RackCommand::PowerOff(_) => {
                s.board.power_off();
                s.stream = None;
            }
            RackCommand::PowerOn(_) => {
                if let Err(e) = s.board.power_on(t, link_now) {
                    faults.push(format!("{}: {e}", s.board.id()));
                }
            }
            RackCommand::CutSite(_) => {
                s.site_cut = true;
                s.stream = None;
            }
            RackCommand::RestoreSite(_) => s.site_cut = false,
            RackCommand::CutBoard(_) => {
                s.cut = true;
                s.stream = None;
            }
            RackCommand::RestoreBoard(_) => s.cut = false,
            RackCommand::Sense(_, input) => {
                if let Err(e) = s.board.sense(input.clone(), t) {
                    faults.push(e.to_string());
                }
            }
        }
    }
}

/// One pass over a board: its logic up to `t`, then its link.
fn pass(s: &mut Slot, t: u64, link_now: u64, faults: &mut Vec<String>) {
    if let Err(e) = s.board.advance(t, link_now, true) {
        faults.push(format!("{}: {e}", s.board.id()));
        s.board.power_off();
        s.stream = None;
        return;
    }
    if !s.board.is_powered() {
        return;
    }
    if (s.cut || s.site_cut) && s.stream.is_some() {
        // The link died under the board: it finds out through its own timeouts.
        s.stream = None;
    }
    if let Some(client) = s.board.client_mut() {
        client.handle_timeout(link_now);
    }
    for event in s.board.drain_events() {
        match event {
            MqttEvent::OpenTransport => {
                let opened = if s.cut || s.site_cut {
                    None
                } else {
                    TcpStream::connect_timeout(&s.broker, CONNECT_TIMEOUT)
                        .ok()
                        .filter(|stream| stream.set_nodelay(true).is_ok())
                };
                let Some(client) = s.board.client_mut() else {
                    return;
                };
                match opened {
                    Some(stream) => {
                        s.stream = Some(Tcp(stream));
                        client.handle_transport_open(link_now);
                    }
                    None => client.handle_transport_closed(link_now),
                }
            }
            MqttEvent::CloseTransport => s.stream = None,
            MqttEvent::Connected | MqttEvent::Disconnected | MqttEvent::Downlink(_) => {}
        }
    }
    let (Some(stream), Some(client)) = (s.stream.as_mut(), s.board.client_mut()) else {
        return;
    };
    if service(client, stream, link_now).is_err() {
        s.stream = None;
    }
    // Downlinks read in this pass reach the board's logic now.
    for event in s.board.drain_events() {
        if event == MqttEvent::CloseTransport {
            s.stream = None;
        }
    }
}

/// A socket's I/O error as `embedded-io` sees it.
#[derive(Debug)]
pub struct IoError(std::io::Error);

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for IoError {}
impl embedded_io::Error for IoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// A `TcpStream` as the `embedded-io` byte stream the firmware's link driver takes:
/// blocking writes (small packets on a LAN), and `read_ready` peeks without blocking.
pub struct Tcp(TcpStream);

impl embedded_io::ErrorType for Tcp {
    type Error = IoError;
}
impl embedded_io::Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.0.read(buf).map_err(IoError)
    }
}
impl embedded_io::Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.0.write(buf).map_err(IoError)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().map_err(IoError)
    }
}
impl embedded_io::ReadReady for Tcp {
    fn read_ready(&mut self) -> Result<bool, IoError> {
        self.0.set_nonblocking(true).map_err(IoError)?;
        let mut b = [0u8; 1];
        let r = self.0.peek(&mut b);
        self.0.set_nonblocking(false).map_err(IoError)?;
        match r {
            // Data, or 0 = closed, which the following `read` reports.
            Ok(_) => Ok(true),
            Err(e) if e.kind() == IoKind::WouldBlock => Ok(false),
            Err(e) => Err(IoError(e)),
        }
    }
}
