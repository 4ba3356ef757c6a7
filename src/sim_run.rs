//! `vigil sim run FILE`: plays a scenario against the real system and checks what it did.
//!
//! 1. The system: a server in-process (or `--server URL` with a login), and for every site a
//!    gateway in-process whose uplink can be cut.
//! 2. The scenario's sites, residents, devices and gateways are registered through the
//!    server's registry API.
//! 3. Firmware-in-the-loop boards (`vigil_sim::board`) connect to their site's gateway and
//!    live the scenario on its clock (offset and acceleration); the driver carries out the
//!    timeline's other actions (power, gateway outages, uplink cuts, "away").
//! 4. The server's alert API is polled; every expectation is judged by its deadline; the
//!    pass/fail table is printed and the exit status says whether all passed.

// A driver: it reads the real clock and hands scenario time to the cores.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::json;
use vigil_protocol::{DeviceId, SiteId};
use vigil_server::alerts::lifecycle::Alert;
use vigil_server::alerts::Subject;
use vigil_sim::board::boards_for;
use vigil_sim::board::rack::{spawn_rack, RackCommand, RackSlot, RackStatus};
use vigil_sim::clock::RunClock;
use vigil_sim::expect::{ExpectationChecker, ObservedAlert, Report, Verdict};
use vigil_sim::scenario::{DeviceKind, Scenario, SiteKind, WallTime};
use vigil_sim::timeline::{Action, Cadence, Timeline};

use crate::sim_api::ServerApi;
use crate::sim_system::{LocalServer, SiteGateway};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Start the run this far into the scenario (overrides the file's `time_offset`); the
    /// boards live through the part before it at once, without sending it.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub offset: Option<Duration>,
    /// Stop the run at this scenario time instead of the scenario's end: alerts that must
    /// not appear are checked up to it, expectations due later fail.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub until: Option<Duration>,
    /// Scenario seconds per real second (overrides the file's `acceleration`). The server's
    /// rules run on the real clock: see docs/simulators.md before accelerating.
    #[arg(long)]
    pub acceleration: Option<f64>,
    /// A running server's base URL (http://host:port); without it a server is started
    /// in-process (embedded broker, SQLite in a temporary folder, API on a free port).
    #[arg(long, requires_all = ["user", "password"])]
    pub server: Option<String>,
    #[arg(long, env = "VIGIL_SIM_USER")]
    pub user: Option<String>,
    #[arg(long, env = "VIGIL_SIM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The district broker the sites' gateways publish to (mqtt://host:port); required with
    /// --server; without --server, the in-process server uses it instead of its own.
    #[arg(long)]
    pub broker: Option<String>,
    /// How often the alert API is read.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_scenario(args))
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// An IANA zone for a fixed UTC offset (`Etc/GMT-1` is UTC+1: the sign is inverted).
fn timezone_of(offset_min: i32) -> String {
    match (offset_min / 60, offset_min % 60) {
        (0, 0) => "UTC".into(),
        (h, 0) if (-12..=14).contains(&h) => {
            format!("Etc/GMT{}{}", if h > 0 { '-' } else { '+' }, h.abs())
        }
        // Half-hour offsets have no fixed-offset IANA zone; the site's rules run in UTC.
        _ => "UTC".into(),
    }
}

/// `resident:ID`, `device:ID`, `zone:SITE/ZONE`, `gateway:ID`, `site:ID`, as scenario
/// files write subjects.
fn subject_name(s: &Subject) -> String {
    match s {
        Subject::Resident(r) => format!("resident:{r}"),
        Subject::Device(d) => format!("device:{d}"),
        Subject::Zone { site, zone } => format!("zone:{site}/{zone}"),
        Subject::Gateway(g) => format!("gateway:{g}"),
        Subject::Site(s) => format!("site:{s}"),
    }
}

/// Real wall time ↔ scenario time for this run.
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    clock: RunClock,
    /// Unix ms at which the run (scenario time = offset) began.
    began_unix_ms: i64,
}

impl RunTimes {
    fn wall_of(&self, t: Duration) -> i64 {
        self.began_unix_ms + ms(self.clock.real_elapsed(t))
    }

    fn scenario_of(&self, unix_ms: i64) -> Duration {
        let real = Duration::from_millis(unix_ms.saturating_sub(self.began_unix_ms).max(0) as u64);
        self.clock.scenario_time(real)
    }
}

async fn register(api: &ServerApi, scenario: &Scenario) -> anyhow::Result<()> {
    for site in &scenario.sites {
        let kind = match site.kind {
            SiteKind::Household => "household",
            SiteKind::Facility => "facility",
        };
        api.upsert(
            "sites",
            site.id.as_str(),
            &json!({
                "id": site.id.as_str(),
                "kind": kind,
                "name": format!("{} (simulated)", site.id),
                "address": format!("scenario {}", scenario.name),
                "timezone": timezone_of(site.utc_offset_min),
            }),
        )
        .await?;
        api.upsert(
            "gateways",
            site.gateway.as_str(),
            &json!({
                "id": site.gateway.as_str(),
                "site_id": site.id.as_str(),
                "name": format!("gateway of {}", site.id),
            }),
        )
        .await?;
        // People on duty around the clock, so that the site's escalation chain (the telecare
        // default: on-duty caregiver, then nurse lead) has somebody to tell and to escalate to.
        for (n, role, responder_role) in [
            (0, "on_duty_caregiver", "caregiver"),
            (1, "nurse_lead", "nurse"),
        ] {
            // Ids stay within the registry's 32 characters for site ids of up to 27.
            let responder = format!("sim{n}-{}", site.id);
            api.upsert(
                "responders",
                &responder,
                &json!({
                    "id": responder,
                    "name": format!("simulated {responder_role} of {}", site.id),
                    "role": responder_role,
                    "channels": [],
                    "site_ids": [site.id.as_str()],
                }),
            )
            .await?;
            let shift = responder.clone();
            api.upsert(
                "shifts",
                &shift,
                &json!({
                    "id": shift,
                    "site_id": site.id.as_str(),
                    "responder_id": responder,
                    "role": role,
                    "schedule": {"type": "weekly",
                                 "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                                 "start": "00:00", "end": "23:59:59"},
                }),
            )
            .await?;
        }
    }
    for r in &scenario.residents {
        api.upsert(
            "residents",
            &r.id,
            &json!({"id": r.id, "site_id": r.site.as_str(), "name": r.id}),
        )
        .await?;
    }
    for d in &scenario.devices {
        let first_resident = || {
            scenario
                .residents
                .iter()
                .find(|r| r.site == d.site)
                .map(|r| r.id.clone())
        };
        let (kind, resident, zone) = match &d.kind {
            DeviceKind::Meter { resident } => {
                ("meter", resident.clone().or_else(first_resident), None)
            }
            DeviceKind::Pendant { resident } => ("pendant", Some(resident.clone()), None),
            DeviceKind::Fire { zone, .. } => ("fire_node", None, Some(zone.to_string())),
        };
        // A meter with nobody living there belongs to the whole home.
        let zone = zone.or_else(|| resident.is_none().then(|| "home".to_owned()));
        let mut body = json!({"id": d.id.as_str(), "kind": kind, "site_id": d.site.as_str()});
        if let Some(r) = resident {
            body["resident_id"] = json!(r);
        }
        if let Some(z) = zone {
            body["zone"] = json!(z);
        }
        api.upsert("devices", d.id.as_str(), &body).await?;
    }
    Ok(())
}

fn random_secret() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness for board secrets: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

async fn run_scenario(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut scenario = Scenario::from_file(&args.file)?;
    if let Some(o) = args.offset {
        scenario.time_offset = o;
    }
    if let Some(a) = args.acceleration {
        if !(a.is_finite() && (0.001..=100_000.0).contains(&a)) {
            bail!("--acceleration: expected 0.001 to 100000, found {a}");
        }
        scenario.acceleration = a;
    }
    let stop_early = args.until.filter(|u| *u < scenario.duration);
    if let Some(u) = stop_early {
        scenario.duration = u;
    }
    if scenario.time_offset >= scenario.duration {
        bail!(
            "the offset {} is not inside the scenario's {}",
            humantime::format_duration(scenario.time_offset),
            humantime::format_duration(scenario.duration)
        );
    }
    let scenario = Arc::new(scenario);
    let dir = tempfile::tempdir().context("creating the run's temporary folder")?;

    // The system under test.
    let (local, api_url, api, district_broker) = match &args.server {
        Some(url) => {
            let broker = args.broker.clone().ok_or_else(|| {
                anyhow!("--server needs --broker: the MQTT URL its gateways publish to")
            })?;
            let (user, password) = (
                args.user.clone().unwrap_or_default(),
                args.password.clone().unwrap_or_default(),
            );
            let api = ServerApi::login(url, &user, &password).await?;
            (None, url.clone(), api, broker)
        }
        None => {
            let local = LocalServer::start(dir.path(), args.broker.as_deref()).await?;
            let api = ServerApi::login(&local.api_url, &local.user, &local.password).await?;
            let (url, broker) = (local.api_url.clone(), local.broker_url.clone());
            (Some(local), url, api, broker)
        }
    };
    println!(
        "vigil sim run: {} — server {api_url}{}, district broker {district_broker}",
        scenario.name,
        if local.is_some() {
            " (in-process, SQLite)"
        } else {
            ""
        },
    );
    let result = play(&args, &scenario, &api, &district_broker, dir.path()).await;
    if let Some(l) = local {
        l.stop().await;
    }
    result
}

async fn play(
    args: &RunArgs,
    scenario: &Arc<Scenario>,
    api: &ServerApi,
    district_broker: &str,
    dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    register(api, scenario)
        .await
        .context("registering the scenario")?;

    let mut secrets: BTreeMap<DeviceId, String> = BTreeMap::new();
    for d in &scenario.devices {
        secrets.insert(d.id.clone(), random_secret()?);
    }
    let mut gateways: BTreeMap<SiteId, SiteGateway> = BTreeMap::new();
    for site in &scenario.sites {
        let boards: Vec<(DeviceId, String)> = scenario
            .devices
            .iter()
            .filter(|d| d.site == site.id)
            .filter_map(|d| secrets.get(&d.id).map(|s| (d.id.clone(), s.clone())))
            .collect();
        let gw = SiteGateway::start(dir, &site.id, &site.gateway, &boards, district_broker).await?;
        gateways.insert(site.id.clone(), gw);
    }

    let clock = RunClock::of(scenario);
    let began_unix_ms = now_unix_ms();
    let started = Instant::now();
    let times = RunTimes {
        clock,
        began_unix_ms,
    };
    // Against a live system the run happens now: scenario t = 0 is the offset before now.
    let start_wall = WallTime {
        unix_s: (began_unix_ms - ms(scenario.time_offset)).div_euclid(1000),
        utc_offset_min: scenario.sites.first().map_or(0, |s| s.utc_offset_min),
    };
    let mut timeline = Timeline::build(scenario, start_wall, Cadence::default());
    let boards = boards_for(scenario, &timeline, |d| secrets.get(d).cloned());
    let slots = boards
        .into_iter()
        .filter_map(|b| {
            let broker = gateways.get(b.site())?.boards;
            Some(RackSlot { board: b, broker })
        })
        .collect();
    let rack =
        spawn_rack(slots, clock, started, scenario.duration).context("starting the boards")?;
    println!(
        "played from {} to {} at {}x: {} site(s), {} board(s) running vigil-firmware",
        humantime::format_duration(scenario.time_offset),
        humantime::format_duration(scenario.duration),
        scenario.acceleration,
        scenario.sites.len(),
        scenario.devices.len()
    );

    let mut checker = ExpectationChecker::new(scenario);
    // With --until, the scenario's duration was cut to it.
    checker.end_at(scenario.duration);
    let wants_escalation: Vec<(String, String)> = scenario
        .expectations
        .iter()
        .filter(|e| e.escalated)
        .map(|e| (e.alert.clone(), e.subject.clone()))
        .collect();
    let mut next_poll = Instant::now();
    let mut poll_failures = 0u32;
    let tick = Duration::from_millis(100);
    let end = loop {
        let t = clock
            .scenario_time(started.elapsed())
            .min(scenario.duration);
        while let Some(s) = timeline.poll_action(t) {
            carry_out(&s.action, &rack, &gateways, api, &times).await;
        }
        if Instant::now() >= next_poll || t >= scenario.duration {
            next_poll = Instant::now() + args.poll;
            match observe(api, &times, &wants_escalation).await {
                Ok(seen) => {
                    poll_failures = 0;
                    for a in seen {
                        checker.handle_alert(a);
                    }
                }
                Err(e) if e.to_string().contains("no alert list") => {
                    rack.stop();
                    stop_gateways(gateways).await;
                    return Err(e);
                }
                Err(e) => {
                    poll_failures += 1;
                    if poll_failures >= 30 {
                        return Err(e.context("the alert API failed 30 times in a row"));
                    }
                }
            }
            let undecided = checker
                .verdicts(t)
                .iter()
                .any(|r| r.verdict == Verdict::Open);
            if t >= scenario.duration || !undecided {
                break t;
            }
        }
        tokio::time::sleep(tick).await;
    };
    let status = rack.stop();
    stop_gateways(gateways).await;
    let report = checker.finish(end);
    print_report(&report, &status, end);
    Ok(ExitCode::from(report.exit_code()))
}

async fn stop_gateways(gateways: BTreeMap<SiteId, SiteGateway>) {
    for (_, g) in gateways {
        g.stop().await;
    }
}

fn print_report(report: &Report, status: &RackStatus, end: Duration) {
    println!("boards at {}:", humantime::format_duration(end));
    for b in &status.boards {
        println!(
            "  {:<24} boots {}, frames made {}, sent to the uplink {}, history not sent {}, \
             still spooled {}, downlinks {} (help coming {}), connects {}",
            b.device.as_str(),
            b.counters.boots,
            b.counters.frames_made,
            b.counters.frames_submitted,
            b.counters.history_frames_skipped,
            b.spooled,
            b.counters.downlinks,
            b.counters.help_coming,
            b.mqtt.connects
        );
    }
    for f in &status.faults {
        println!("  fault: {f}");
    }
    println!("{report}");
}

/// Reads the alerts raised since the run began, timed on the scenario's clock.
async fn observe(
    api: &ServerApi,
    times: &RunTimes,
    wants_escalation: &[(String, String)],
) -> anyhow::Result<Vec<ObservedAlert>> {
    let alerts: Vec<Alert> = api.alerts_since(times.began_unix_ms).await?;
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let kind = a.key.kind.as_str().to_owned();
        let subject = subject_name(&a.key.subject);
        let escalations = if wants_escalation
            .iter()
            .any(|(k, s)| *k == kind && *s == subject)
        {
            api.escalations(&a)
                .await?
                .into_iter()
                .map(|at| times.scenario_of(at as i64))
                .collect()
        } else {
            Vec::new()
        };
        out.push(ObservedAlert {
            kind,
            subject,
            severity: a.severity.as_str().to_owned(),
            raised_at: times.scenario_of(a.opened_at.unix_ms() as i64),
            escalations,
        });
    }
    Ok(out)
}

/// Carries out one timeline action. Board frames are not among them: the boards make their
/// own, from their firmware.
async fn carry_out(
    action: &Action,
    rack: &vigil_sim::board::rack::RackHandle,
    gateways: &BTreeMap<SiteId, SiteGateway>,
    api: &ServerApi,
    times: &RunTimes,
) {
    let gateway_of = |g: &vigil_protocol::GatewayId| gateways.values().find(|x| &x.gateway == g);
    match action {
        Action::Uplink { .. } => {}
        Action::BoardSilent { device } => rack.send(RackCommand::PowerOff(device.clone())),
        Action::BoardBack { device } => rack.send(RackCommand::PowerOn(device.clone())),
        Action::GatewayDown { gateway } => {
            if let Some(g) = gateway_of(gateway) {
                rack.send(RackCommand::CutSite(g.site.clone()));
                g.uplink.cut();
            }
        }
        Action::GatewayUp { gateway } => {
            if let Some(g) = gateway_of(gateway) {
                g.uplink.restore();
                rack.send(RackCommand::RestoreSite(g.site.clone()));
            }
        }
        Action::UplinkCut { gateway } => {
            if let Some(g) = gateway_of(gateway) {
                g.uplink.cut();
            }
        }
        Action::UplinkRestored { gateway } => {
            if let Some(g) = gateway_of(gateway) {
                g.uplink.restore();
            }
        }
        Action::SetAway { resident, until } => {
            if let Err(e) = api.set_away(resident, Some(times.wall_of(*until))).await {
                eprintln!("vigil sim run: {e:#}");
            }
        }
        Action::ClearAway { resident } => {
            if let Err(e) = api.set_away(resident, None).await {
                eprintln!("vigil sim run: {e:#}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offsets_map_to_etc_zones_with_the_inverted_sign() {
        assert_eq!(timezone_of(60), "Etc/GMT-1");
        assert_eq!(timezone_of(-300), "Etc/GMT+5");
        assert_eq!(timezone_of(0), "UTC");
        assert_eq!(timezone_of(330), "UTC");
        for z in [timezone_of(60), timezone_of(-300), timezone_of(840)] {
            assert!(z.parse::<chrono_tz::Tz>().is_ok(), "{z}");
        }
    }

    #[test]
    fn run_times_map_wall_and_scenario_time_both_ways() {
        let times = RunTimes {
            clock: RunClock {
                time_offset: Duration::from_secs(3_600),
                acceleration: 60.0,
            },
            began_unix_ms: 1_000_000,
        };
        assert_eq!(times.scenario_of(1_000_000), Duration::from_secs(3_600));
        assert_eq!(times.scenario_of(1_060_000), Duration::from_secs(7_200));
        assert_eq!(times.wall_of(Duration::from_secs(7_200)), 1_060_000);
        assert_eq!(
            times.scenario_of(0),
            Duration::from_secs(3_600),
            "before the run: its start"
        );
    }
}
