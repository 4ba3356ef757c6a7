//! `vigil server`: builds the configuration (file, then `VIGIL_…` environment, then these
//! flags) and runs the server until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use vigil_server::config::ServerConfig;
use vigil_server::run::{run_with, Attachments};

#[derive(Args, Debug)]
#[command(
    after_help = "Every setting, its environment variable and its default: \
docs/configuration.md. Precedence: flags > VIGIL_* environment > file > defaults."
)]
pub struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// MQTT broker to ingest from, e.g. mqtt://127.0.0.1:1883. Without it, an embedded
    /// broker is started.
    #[arg(long, value_name = "URL")]
    broker_url: Option<String>,
    /// Port of the embedded broker's MQTT listener (0: any free port, printed at start).
    #[arg(long, value_name = "PORT")]
    mqtt_port: Option<u16>,
    /// Address the embedded broker listens on.
    #[arg(long, value_name = "ADDR")]
    mqtt_bind: Option<String>,
    /// This instance's MQTT client id (stable across restarts, unique per instance).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// PostgreSQL URL, e.g. postgres://vigil@db/vigil. Without it, SQLite under --data-dir.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of the SQLite database.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Days raw readings are kept (0: forever).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Address the HTTP API listens on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", env = "VIGIL_API_LISTEN")]
    api_listen: Option<std::net::SocketAddr>,
}

impl ServerArgs {
    fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut c = ServerConfig::load(self.config.as_deref(), |k| std::env::var(k).ok())?;
        if let Some(v) = &self.broker_url {
            c.broker.url = Some(v.clone());
        }
        if let Some(v) = self.mqtt_port {
            c.broker.embedded.port = v;
        }
        if let Some(v) = &self.mqtt_bind {
            c.broker.embedded.bind = v.clone();
        }
        if let Some(v) = &self.client_id {
            c.broker.client_id = v.clone();
        }
        if let Some(v) = &self.database_url {
            c.database.url = Some(v.clone());
        }
        if let Some(v) = &self.data_dir {
            c.database.data_dir = v.clone();
        }
        if let Some(v) = self.retention_days {
            c.retention.raw_readings_days = v;
        }
        // The command always serves the API; the file's [api] table, if any, tunes it.
        let api = c.api.get_or_insert_with(Default::default);
        if let Some(v) = self.api_listen {
            api.listen = v;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run(args: ServerArgs) -> ExitCode {
    init_tracing();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The server's errors already name their cause; `{e:#}` would print it twice.
            eprintln!("vigil server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let attachments = Attachments {
            ready: Some(ready_tx),
            ..Default::default()
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let server = tokio::spawn(run_with(config, attachments, shutdown));
        if let Ok(ready) = ready_rx.await {
            println!(
                "vigil server: store {}, gateways publish to {}",
                ready.store.backend().name(),
                ready.broker_url
            );
            if let Some(api) = ready.api {
                println!(
                    "vigil server: API at http://{api}/api/v1 (OpenAPI: http://{api}/api/v1/openapi.json)"
                );
            }
        }
        server
            .await
            .map_err(|e| anyhow::anyhow!("server task: {e}"))??;
        Ok(())
    })
}

/// `RUST_LOG` overrides. rumqttd is silent by default: it logs every probe connection and
/// every client disconnect as an error; `RUST_LOG=info,rumqttd=warn` shows it.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
