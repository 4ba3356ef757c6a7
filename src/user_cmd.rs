//! `vigil user …`: manage login users in the registry database.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use vigil_server::auth::{create_user, NewUser, PasswordHashing, Role, SiteScope};
use vigil_server::registry::{PostgresRegistry, RegistryStore, SqliteRegistry};

#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Args)]
struct Database {
    /// PostgreSQL URL of the server's database.
    #[arg(long, env = "VIGIL_DATABASE_URL", conflicts_with = "sqlite")]
    database_url: Option<String>,
    /// SQLite file of the server's database.
    #[arg(long)]
    sqlite: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from VIGIL_USER_PASSWORD or, if unset, from the
    /// first line of standard input; there is no default.
    Add {
        username: String,
        /// operator, manager, supervisor or admin.
        #[arg(long)]
        role: String,
        /// Comma-separated site ids the user may see.
        #[arg(long, value_delimiter = ',', conflicts_with = "all_sites")]
        sites: Vec<String>,
        /// The user sees every site (not for managers).
        #[arg(long)]
        all_sites: bool,
        #[command(flatten)]
        db: Database,
    },
    /// List users with their roles and sites.
    List {
        #[command(flatten)]
        db: Database,
    },
}

async fn open(db: &Database) -> anyhow::Result<Arc<dyn RegistryStore>> {
    Ok(match (&db.database_url, &db.sqlite) {
        (Some(url), _) => Arc::new(PostgresRegistry::connect(url, None).await?),
        (None, Some(path)) => Arc::new(SqliteRegistry::open(path)?),
        (None, None) => bail!("name the database: --database-url URL or --sqlite FILE"),
    })
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("VIGIL_USER_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs `vigil user …` and reports errors on stderr.
pub fn main(args: UserArgs) -> std::process::ExitCode {
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil user: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: UserArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match args.command {
            UserCommand::Add {
                username,
                role,
                sites,
                all_sites,
                db,
            } => {
                let role = Role::parse(&role).with_context(|| {
                    format!(
                        "unknown role {role:?}: expected operator, manager, supervisor or admin"
                    )
                })?;
                let scope = if all_sites || role == Role::Admin {
                    SiteScope::All
                } else {
                    SiteScope::Sites(sites)
                };
                let store = open(&db).await?;
                let password = read_password()?;
                let user = NewUser {
                    username,
                    password,
                    role,
                    scope,
                };
                let created = create_user(
                    store.as_ref(),
                    &PasswordHashing::production(),
                    user,
                    chrono::Utc::now(),
                )
                .await?;
                println!("created {} ({})", created.username, created.role);
            }
            UserCommand::List { db } => {
                let store = open(&db).await?;
                for u in store.list_users().await? {
                    let sites = match u.scope {
                        SiteScope::All => "all sites".to_owned(),
                        SiteScope::Sites(s) => s.join(","),
                    };
                    println!("{}\t{}\t{}", u.username, u.role, sites);
                }
            }
        }
        Ok(())
    })
}
