//! The command line: `serve`, `init`, `user …`, `version`. Commands call the
//! same functions as the API; only printing lives here.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::audit;
use crate::auth::Accounts;
use crate::auth::users::{Bootstrap, UserPatch};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{BootstrapArgs, FileConfig, Global, LogFormat, ServeArgs, Settings};
use crate::server::{self, Application};
use crate::store::SCHEMA_VERSION;
use crate::types::{EmailAddress, Password, Role, SubscriptionTier};

#[derive(Debug, Parser)]
#[command(
    name = "inboxgrove",
    version,
    about = "Self-hosted cold-email infrastructure in one binary"
)]
pub struct Cli {
    /// Where the database, master key and state live
    #[arg(long, global = true, env = "INBOXGROVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML file with settings (flags and environment win over it)
    #[arg(long, global = true, env = "INBOXGROVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log filter, RUST_LOG syntax [default: info]
    #[arg(long, global = true, env = "INBOXGROVE_LOG")]
    pub log: Option<String>,
    /// Log output format [default: text]
    #[arg(long, global = true, env = "INBOXGROVE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and the KumoMTA control endpoint
    Serve(ServeArgs),
    /// Create the data dir, master key, database and first admin, then exit
    Init(BootstrapArgs),
    /// Manage users (works whether or not the server is running)
    #[command(subcommand)]
    User(UserCommand),
    /// Print the version and database schema version
    Version,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin, or generated and
    /// printed once
    Create {
        #[arg(long)]
        email: String,
        /// Make the user an admin (default: member)
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List,
    /// Set a user's password (ends their sessions)
    SetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (ends their sessions; API tokens stop working)
    Disable {
        #[arg(long)]
        email: String,
    },
}

impl Cli {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let serve = match &self.command {
            Command::Serve(args) => args.clone(),
            Command::Init(bootstrap) => ServeArgs {
                bootstrap: bootstrap.clone(),
                ..Default::default()
            },
            _ => ServeArgs::default(),
        };
        let global = Global {
            data_dir: self.data_dir.as_deref(),
            log: self.log.as_deref(),
            log_format: self.log_format,
        };
        Ok(Settings::resolve(global, &serve, file, &|k| {
            std::env::var(k).ok()
        })?)
    }
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve(_) => serve(settings, clock).await,
        Command::Init(_) => init(settings, clock).await,
        Command::User(cmd) => user(cmd, settings, clock).await,
        Command::Version => {
            println!(
                "inboxgrove {} (schema {SCHEMA_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
    }
}

async fn serve(settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let app = Application::build(&settings, clock).await?;
    let public = app.public_addr();
    print_bootstrap(&app.bootstrap, &format!("http://{public}/"));
    // Tests and scripts read these two lines to find the bound ports.
    println!("public listener on http://{public}");
    println!("control listener on http://{}", app.control_addr());
    tracing::info!(%public, control = %app.control_addr(), "serving");
    app.run(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutting down");
}

async fn init(settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let core = server::open_core(&settings, clock).await?;
    let dir = settings.data_dir.display();
    if core.key_created {
        println!(
            "created master key {dir}/master.key; back it up: every sealed secret depends on it"
        );
    }
    print_bootstrap(&core.bootstrap, &format!("http://{}/", settings.listen));
    println!("data dir {dir} is ready (schema {SCHEMA_VERSION})");
    Ok(())
}

fn print_bootstrap(bootstrap: &Bootstrap, url: &str) {
    match bootstrap {
        Bootstrap::NotNeeded => {}
        Bootstrap::Configured(email) => println!("created admin {email}"),
        Bootstrap::Generated(email, password) => {
            println!("created the first admin; this password is shown only once:");
            println!("  login url: {url}");
            println!("  email:     {email}");
            println!("  password:  {}", password.expose_secret());
        }
    }
}

async fn user(cmd: UserCommand, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let (store, accounts) = server::open_accounts(&settings.data_dir, clock.clone())?;
    let (action, raw_email) = match &cmd {
        UserCommand::List => return list_users(&accounts).await,
        UserCommand::Create { email, .. } => ("cli user create", email.clone()),
        UserCommand::SetPassword { email, .. } => ("cli user set-password", email.clone()),
        UserCommand::Disable { email } => ("cli user disable", email.clone()),
    };
    let outcome = change_user(cmd, &accounts).await;
    // Changes made at the console are audited like those made through the
    // API; there is no API user behind them, so the row names the target.
    let mut metadata = serde_json::Map::new();
    metadata.insert("email".into(), raw_email.into());
    metadata.insert("via".into(), "cli".into());
    let entry = audit::Entry {
        action: action.to_owned(),
        resource_type: Some("user".to_owned()),
        resource_id: outcome.as_ref().ok().map(|id| id.to_string()),
        success: outcome.is_ok(),
        metadata,
        ..Default::default()
    };
    if let Err(e) = audit::record(&store, &clock, entry).await {
        eprintln!("warning: could not write the audit row: {e}");
    }
    outcome.map(|_| ())
}

async fn list_users(accounts: &Accounts) -> anyhow::Result<()> {
    println!(
        "{:<36}  {:<6}  {:<10}  {:<8}  email",
        "id", "role", "tier", "state"
    );
    for u in accounts.list().await? {
        let state = if u.disabled { "disabled" } else { "active" };
        println!(
            "{:<36}  {:<6}  {:<10}  {:<8}  {}",
            u.id, u.role, u.subscription_tier, state, u.email
        );
    }
    Ok(())
}

/// Runs a changing user command; returns the id of the user changed.
async fn change_user(cmd: UserCommand, accounts: &Accounts) -> anyhow::Result<Uuid> {
    let email = |raw: &str| EmailAddress::parse(raw).map_err(|e| anyhow::anyhow!("--email: {e}"));
    let show_once = |password: &Password| {
        println!(
            "password (shown once): {}",
            password.secret().expose_secret()
        );
    };
    match cmd {
        UserCommand::List => Err(anyhow::anyhow!("`user list` changes nothing")),
        UserCommand::Create {
            email: raw,
            admin,
            password_stdin,
        } => {
            let (password, generated) = password_input(password_stdin)?;
            let role = if admin { Role::Admin } else { Role::Member };
            let user = accounts
                .create(email(&raw)?, password.clone(), role, SubscriptionTier::Free)
                .await?;
            println!("created {} {} ({})", user.role, user.email, user.id);
            if generated {
                show_once(&password);
            }
            Ok(user.id)
        }
        UserCommand::SetPassword {
            email: raw,
            password_stdin,
        } => {
            let user = accounts.find(&email(&raw)?).await?;
            let (password, generated) = password_input(password_stdin)?;
            let patch = UserPatch {
                password: Some(password.clone()),
                ..Default::default()
            };
            accounts.update(user.id, patch).await?;
            println!(
                "password of {} changed; their sessions were ended",
                user.email
            );
            if generated {
                show_once(&password);
            }
            Ok(user.id)
        }
        UserCommand::Disable { email: raw } => {
            let user = accounts.find(&email(&raw)?).await?;
            let patch = UserPatch {
                disabled: Some(true),
                ..Default::default()
            };
            accounts.update(user.id, patch).await?;
            println!("disabled {}; their sessions were ended", user.email);
            Ok(user.id)
        }
    }
}

/// The password from stdin's first line, or a generated one (then `true`).
fn password_input(from_stdin: bool) -> anyhow::Result<(Password, bool)> {
    if !from_stdin {
        let generated = SecretString::from(Alphanumeric.sample_string(&mut OsRng, 24));
        return Ok((Password::parse(generated)?, true));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("password (one line):");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    let password =
        Password::parse(SecretString::from(line)).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    Ok((password, false))
}
