//! `vigil demo`: the whole system on this machine with a simulated district, with no
//! configuration and no external service.
//!
//! Starts the server (embedded broker on a free port, SQLite in a data directory, the HTTP API
//! on 127.0.0.1), creates the demo login and the scripted duty operator, registers the district
//! through the API, starts a gateway per site and the district's firmware-in-the-loop boards
//! (`vigil_sim::board`'s rack, as `vigil sim run` runs them) in this process, then plays
//! `vigil_sim::demo`'s script until Ctrl-C (or `--for`), printing a line per step: the script
//! changes what the boards' hardware senses, the firmware makes every frame.

mod api;
mod boards;
mod district;
mod operator;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hyper::Method;
use tokio::sync::oneshot;
use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::config::ServerConfig;
use vigil_server::http::server::REGISTRY_FILE;
use vigil_server::http::ApiConfig;
use vigil_server::registry::{RegistryStore, SqliteRegistry};
use vigil_server::run::{run_with, Attachments};
use vigil_sim::demo::{DemoScript, StepKind};
use vigil_sim::scenario::WallTime;

use self::api::{ApiCallError, ApiClient};
use self::boards::{BoardsStart, DistrictHardware};
use self::operator::DutyOperator;

/// The demo login's user name.
pub const DEMO_USER: &str = "demo";
/// The scripted duty operator, whose name the audit trail shows.
pub const OPERATOR_USER: &str = "duty-operator";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the data (SQLite, gateway spools) in this directory; default: a fresh temporary
    /// directory, deleted at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Port of the HTTP API on 127.0.0.1 (default: a free port, printed at start).
    #[arg(long, value_name = "PORT", conflicts_with = "api_listen")]
    port: Option<u16>,
    /// Address of the HTTP API (e.g. 0.0.0.0:8080 to show it to other machines).
    #[arg(long, value_name = "ADDR")]
    api_listen: Option<SocketAddr>,
    /// Port of the server's embedded MQTT broker (default: a free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    mqtt_port: u16,
    /// Play the script this many times faster (the escalation deadlines shrink with it).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    script_speed: f64,
    /// Stop by itself after this long (e.g. `90s`, `10m`); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    run_for: Option<Duration>,
}

pub fn run(args: DemoArgs) -> ExitCode {
    init_tracing();
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.script_speed.is_finite() && (0.1..=100.0).contains(&args.script_speed),
        "--script-speed must be between 0.1 and 100, found {}",
        args.script_speed
    );
    let listen = match (args.api_listen, args.port) {
        (Some(addr), _) => addr,
        (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    if listen.port() != 0 {
        // Say plainly which port is taken and how to choose another, before anything starts.
        if let Err(e) = std::net::TcpListener::bind(listen) {
            anyhow::bail!(
                "cannot use {listen} for the API ({e}); choose another port with --port N \
                 (--port 0 picks a free one)"
            );
        }
    }
    let (data_dir, _temporary) = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("vigil-demo-")
                .tempdir()
                .context("cannot create a temporary data directory")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(play(args, listen, data_dir))
}

async fn play(args: DemoArgs, listen: SocketAddr, data_dir: PathBuf) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let district = vigil_sim::demo::district()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let start = WallTime {
        unix_s: now.as_secs() as i64,
        utc_offset_min: 8 * 60,
    };
    let mut script = DemoScript::new(district.clone(), start)?;

    let demo_password = random_password();
    let operator_password = random_password();
    create_users(&data_dir, &demo_password, &operator_password).await?;

    let mut config = ServerConfig::default();
    config.broker.embedded.port = args.mqtt_port;
    config.broker.embedded.bind = "127.0.0.1".into();
    config.database.data_dir = data_dir.clone();
    config.ingest.max_batch_delay_ms = 20;
    config.api = Some(ApiConfig {
        listen,
        // Plain HTTP on this machine: a `Secure` cookie would not come back over http://.
        secure_cookie: false,
        ..ApiConfig::default()
    });
    config.validate()?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run_with(
        config,
        Attachments {
            ready: Some(ready_tx),
            ..Default::default()
        },
        async {
            let _ = server_stopped.await;
        },
    ));
    let ready = match ready_rx.await {
        Ok(r) => r,
        Err(_) => {
            // The server stopped before it was ready: its error says why.
            return match server.await {
                Ok(Err(e)) => Err(anyhow::anyhow!("server: {e}")),
                Ok(Ok(())) => Err(anyhow::anyhow!("the server stopped at start")),
                Err(e) => Err(anyhow::anyhow!("server task: {e}")),
            };
        }
    };
    let api_addr = ready.api.context("the server serves no API")?;

    let admin = ApiClient::login(api_addr, DEMO_USER, &demo_password).await?;
    let (policy_applies, policy_note) =
        register_district(&admin, &district, args.script_speed).await?;
    script.narrate_escalation(policy_applies);
    // Script time 0, on which the boards run too.
    let script_started = std::time::Instant::now();
    let boards_start = BoardsStart {
        at: script_started,
        speed: args.script_speed,
        wall: start,
        last_boot_id: now.as_secs() as u32,
    };
    let mut hardware =
        DistrictHardware::start(&district, &data_dir, &ready.broker_url, &boards_start).await?;
    let operator = DutyOperator::login(api_addr, OPERATOR_USER, &operator_password).await?;
    let paths = served_paths(&admin).await;

    print_banner(&Banner {
        api: api_addr,
        demo_password: &demo_password,
        broker_url: &ready.broker_url,
        hardware: &hardware,
        district: &district,
        data_dir: &data_dir,
        kept: args.data_dir.is_some(),
        policy_note: &policy_note,
        speed: args.script_speed,
        ready_in: started.elapsed(),
        // The engine brings the lifecycle endpoints; without it no alert is raised.
        alerts_served: paths.iter().any(|p| p == "/api/v1/alerts/{id}/acknowledge"),
        events_served: paths.iter().any(|p| p == "/api/v1/events"),
    });

    let deadline = args.run_for.map(|d| tokio::time::Instant::now() + d);
    let until_stop = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until_stop);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let clock_start = tokio::time::Instant::from_std(script_started);
    let script_now =
        || Duration::from_secs_f64(clock_start.elapsed().as_secs_f64() * args.script_speed);
    let mut operator_tasks = tokio::task::JoinSet::new();
    loop {
        while let Some(step) = script.poll_step(script_now()) {
            match step.kind {
                StepKind::Board(command) => hardware.send(command),
                StepKind::Operator(op) => {
                    let operator = operator.clone();
                    operator_tasks.spawn(async move { operator.act(op).await });
                }
                StepKind::Say(text) => say(&text),
            }
        }
        while let Some(done) = operator_tasks.try_join_next() {
            match done {
                Ok(Ok(Some(outcome))) => say(&format!("  ({outcome})")),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => say(&format!("  (duty operator: {e})")),
                Err(e) => say(&format!("  (duty operator stopped: {e})")),
            }
        }
        let wake = clock_start
            + Duration::from_secs_f64(script.next_deadline().as_secs_f64() / args.script_speed);
        for device in hardware.new_help_coming() {
            say(&format!(
                "  ({device} received \"help is coming\": its LED lights up)"
            ));
        }
        for fault in hardware.new_faults() {
            say(&format!("  (board fault: {fault})"));
        }
        // Downlinks arrive between steps: look at least every second.
        let wake = wake.min(tokio::time::Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = &mut ctrl_c => break,
            () = &mut until_stop => break,
        }
    }

    println!("vigil demo: stopping: boards, gateways, then the server");
    operator_tasks.shutdown().await;
    hardware.stop().await;
    let _ = stop_server.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(anyhow::anyhow!("server: {e}")),
        Err(e) => return Err(anyhow::anyhow!("server task: {e}")),
    }
    println!("vigil demo: stopped");
    Ok(())
}

/// Creates the demo login (an admin) and the scripted duty operator, replacing users of those
/// names left in a kept data directory (their passwords are new every run).
async fn create_users(
    data_dir: &std::path::Path,
    demo_password: &str,
    operator_password: &str,
) -> anyhow::Result<()> {
    let registry = SqliteRegistry::open(&data_dir.join(REGISTRY_FILE))
        .context("cannot open the demo's registry")?;
    let hashing = PasswordHashing::production();
    let now = chrono::Utc::now();
    for (username, password, role) in [
        (DEMO_USER, demo_password, Role::Admin),
        (OPERATOR_USER, operator_password, Role::Operator),
    ] {
        registry.delete_user(username).await?;
        let user = NewUser {
            username: username.into(),
            password: password.into(),
            role,
            scope: SiteScope::All,
        };
        create_user(&registry, &hashing, user, now)
            .await
            .with_context(|| format!("cannot create the user {username}"))?;
    }
    Ok(())
}

/// Registers the escalation policy and the district; returns whether the server applies the
/// demo's policy, and a note on it for the banner.
async fn register_district(
    admin: &ApiClient,
    district: &vigil_sim::scenario::Scenario,
    speed: f64,
) -> anyhow::Result<(bool, String)> {
    let note = register_policy(admin, speed).await?;
    let policy = note.0.then_some(district::POLICY_ID);
    // A kept data directory already holds the district (the registry is its own file there).
    let first_site = district
        .sites
        .first()
        .map(|s| s.id.as_str())
        .unwrap_or("home-01");
    let (status, _) = admin
        .request(Method::GET, &format!("/api/v1/sites/{first_site}"), None)
        .await?;
    if status.is_success() {
        return Ok((
            note.0,
            format!("{} (district registered by an earlier run)", note.1),
        ));
    }
    let doc = district::import_document(district, true, policy);
    let (status, report) = admin
        .request(Method::POST, "/api/v1/import", Some(&doc))
        .await?;
    if status == hyper::StatusCode::UNPROCESSABLE_ENTITY && report.to_string().contains("role") {
        // A registry whose shifts hold no roster role yet: each shift holds its responder's.
        let doc = district::import_document(district, false, policy);
        admin
            .expect_ok(Method::POST, "/api/v1/import", Some(&doc))
            .await
            .context("registering the demo district")?;
    } else if !status.is_success() {
        anyhow::bail!("registering the demo district: {status}: {report}");
    }
    Ok(note)
}

/// Registers the demo's escalation policy (replacing one of an earlier run). Never fatal: a
/// server without policies, or refusing this one, applies its telecare default.
async fn register_policy(admin: &ApiClient, speed: f64) -> Result<(bool, String), ApiCallError> {
    let policy = district::escalation_policy(speed);
    let tiers: Vec<String> = policy["tiers"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| format!("{} s", t["ack_deadline_s"]))
                .collect()
        })
        .unwrap_or_default();
    let applies = format!(
        "escalation policy {}: tiers acknowledge within {}",
        district::POLICY_ID,
        tiers.join(" / ")
    );
    let path = format!("/api/v1/escalation_policies/{}", district::POLICY_ID);
    if admin
        .request(Method::PUT, &path, Some(&policy))
        .await?
        .0
        .is_success()
    {
        return Ok((true, applies));
    }
    let (status, body) = admin
        .request(Method::POST, "/api/v1/escalation_policies", Some(&policy))
        .await?;
    let fallback = "the telecare default (60 s / 120 s / 300 s) applies, so the operator answers \
                    before tier 1 is told";
    Ok(if status.is_success() {
        (true, applies)
    } else if status == hyper::StatusCode::NOT_FOUND {
        (
            false,
            format!("this build has no escalation policies in the registry: {fallback}"),
        )
    } else {
        (
            false,
            format!("the demo's escalation policy was refused ({status}: {body}): {fallback}"),
        )
    })
}

/// Warnings only, so the narrative stays readable (the gateways' local alarms, which the
/// narrative announces, are not repeated as warnings); `RUST_LOG` overrides.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,rumqttd=off,vigil_gateway=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// One line of narrative with the local wall time.
fn say(text: &str) {
    let t = chrono::Local::now().format("%H:%M:%S");
    println!("{t} {text}");
    let _ = std::io::stdout().flush();
}

fn random_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

struct Banner<'a> {
    api: SocketAddr,
    demo_password: &'a str,
    broker_url: &'a str,
    hardware: &'a DistrictHardware,
    district: &'a vigil_sim::scenario::Scenario,
    data_dir: &'a std::path::Path,
    kept: bool,
    policy_note: &'a str,
    speed: f64,
    ready_in: Duration,
    alerts_served: bool,
    events_served: bool,
}

/// The paths the API's OpenAPI document lists (empty when it cannot be read): which parts of
/// the system this build serves.
async fn served_paths(client: &ApiClient) -> Vec<String> {
    match client
        .request(Method::GET, "/api/v1/openapi.json", None)
        .await
    {
        Ok((status, doc)) if status.is_success() => doc["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
        Ok(_) | Err(_) => Vec::new(),
    }
}

fn print_banner(b: &Banner<'_>) {
    let api = b.api;
    let care_gateway = b
        .hardware
        .gateways
        .iter()
        .find(|g| g.site.as_str() == vigil_sim::demo::cast::CARE_HOME.site);
    println!("vigil demo: ready in {:.1} s", b.ready_in.as_secs_f64());
    println!();
    println!("  API        http://{api}/api/v1");
    println!("  OpenAPI    http://{api}/api/v1/openapi.json");
    println!(
        "  login      user {DEMO_USER}, password {}",
        b.demo_password
    );
    println!(
        "  district   {} sites, {} residents, {} boards running vigil-firmware; a gateway per \
         site in this process",
        b.district.sites.len(),
        b.district.residents.len(),
        b.hardware.board_count()
    );
    if let Some(g) = care_gateway {
        println!(
            "  care home  gateway's local alarm console http://{}/ (its boards' broker: mqtt://{})",
            g.console, g.boards_addr
        );
    }
    println!(
        "  broker     {} (the server's embedded MQTT broker)",
        b.broker_url
    );
    println!(
        "  data       {}{}",
        b.data_dir.display(),
        if b.kept {
            ""
        } else {
            " (temporary, deleted at exit)"
        }
    );
    println!("  policy     {}", b.policy_note);
    println!();
    println!("  Try:");
    println!(
        "    TOKEN=$(curl -s http://{api}/api/v1/login -H 'Content-Type: application/json' \\"
    );
    println!(
        "      -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"{}\"}}' | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')",
        b.demo_password
    );
    println!("    curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/api/v1/alerts");
    println!("    curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/api/v1/sites");
    if b.events_served {
        println!(
            "    curl -sN -H \"Authorization: Bearer $TOKEN\" http://{api}/api/v1/events   # live"
        );
    }
    if !b.alerts_served {
        println!();
        println!(
            "  Note: this build raises no alerts yet (no alert engine): the boards' readings \
             are stored and served, the operator finds nothing to act on."
        );
    }
    println!();
    let speed = if (b.speed - 1.0).abs() > f64::EPSILON {
        format!(" at {}x speed", b.speed)
    } else {
        String::new()
    };
    println!(
        "  The script{speed} repeats every {} s: a call, smoke in the care home, a fall, an \
         electrical hazard, a low battery. Ctrl-C stops everything.",
        (b.district.duration.as_secs_f64() / b.speed).round()
    );
    println!();
    let _ = std::io::stdout().flush();
}
