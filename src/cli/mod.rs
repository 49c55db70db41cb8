//! The command line: `serve`, `init`, `user …`, `dovecot-config`,
//! `doctor`, `version`. Commands call the same functions as the API; only printing
//! lives here.

mod doctor;
mod domains;
pub mod dovecot;
mod exports;
mod inboxes;
mod kumo;
mod rotate;
mod users;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::auth::initial_password;
use crate::auth::users::Bootstrap;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{BootstrapArgs, FileConfig, Global, LogFormat, ServeArgs, Settings};
use crate::server::{self, Application};
use crate::store::SCHEMA_VERSION;
use users::UserCli;

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
    User(UserCli),
    /// Manage sending domains and their DNS records
    Domain(domains::DomainCli),
    /// Manage mailboxes
    Inbox(inboxes::InboxCli),
    /// Write a domain's mailbox credentials as a CSV for a sending tool
    Export(exports::ExportCli),
    /// Print the Dovecot configuration (IMAP for the mailboxes) for this
    /// server, ready for /etc/dovecot/dovecot.conf
    DovecotConfig(Box<dovecot::DovecotConfigCli>),
    /// Print the settings file of the KumoMTA policy (inboxgrove.json) for
    /// this server, from the same settings it runs on
    KumoConfig(Box<kumo::KumoConfigCli>),
    /// Check that this host is ready to send: ports, certificates, KumoMTA,
    /// Dovecot, DNS, clock and disk; exits 1 if a check fails
    Doctor(Box<doctor::DoctorCli>),
    /// Give the control clients (KumoMTA, Dovecot, the console) new
    /// credentials; the old ones stay valid for a grace period
    RotateControlSecret(rotate::RotateArgs),
    /// Dovecot's checkpassword helper: run by Dovecot for each IMAP login
    #[command(hide = true)]
    Checkpassword(dovecot::CheckpasswordArgs),
    /// Print the version and database schema version
    Version,
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
            Command::Domain(d) => ServeArgs {
                domains: d.settings.clone(),
                control_listen: d.console.control_listen,
                ..Default::default()
            },
            Command::User(u) => ServeArgs {
                control_listen: u.console.control_listen,
                ..Default::default()
            },
            Command::Inbox(i) => i.settings.clone(),
            Command::DovecotConfig(d) => d.settings.clone(),
            Command::KumoConfig(k) => k.settings.clone(),
            Command::Doctor(d) => d.settings.clone(),
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
        Command::User(u) => users::run(u.command, settings, clock).await,
        Command::Domain(d) => domains::run(d.command, settings, clock).await,
        Command::Inbox(i) => inboxes::run(i.command, settings, clock).await,
        Command::Export(e) => exports::run(e, settings, clock).await,
        Command::DovecotConfig(d) => dovecot::config(&d.dovecot, &settings),
        Command::KumoConfig(k) => kumo::config(&k.kumo, &settings),
        Command::Doctor(d) => doctor::run(&d, settings, clock).await,
        Command::RotateControlSecret(r) => rotate::run(&r, &settings, clock),
        Command::Checkpassword(args) => {
            // main runs it before any set-up; reaching here is harmless.
            match dovecot::checkpassword(&args) {
                0 => Ok(()),
                code => Err(anyhow::anyhow!("checkpassword exited {code}")),
            }
        }
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
    // Handlers are installed before anyone can learn the ports, so a stop
    // sent right after start is a graceful one, not the default kill.
    let shutdown = shutdown_signal()?;
    let app = Application::build(&settings, clock).await?;
    let public = app.public_addr();
    print_bootstrap(
        &app.bootstrap,
        &format!("http://{public}/"),
        &settings.data_dir,
    )?;
    // Tests and scripts read these two lines to find the bound ports.
    println!("public listener on http://{public}");
    println!("control listener on http://{}", app.control_addr());
    tracing::info!(%public, control = %app.control_addr(), "serving");
    app.run(shutdown).await
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutting down");
    })
}

async fn init(settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let core = server::open_core(&settings, clock, server::Holder::Console).await?;
    let dir = settings.data_dir.display();
    if core.key_created {
        println!(
            "created master key {dir}/master.key; back it up: every sealed secret depends on it"
        );
    }
    print_bootstrap(
        &core.bootstrap,
        &format!("http://{}/", settings.listen),
        &settings.data_dir,
    )?;
    println!("data dir {dir} is ready (schema {SCHEMA_VERSION})");
    Ok(())
}

/// Shows the first admin. A generated password is printed only to a
/// terminal; under a service manager (no terminal: systemd's journal) it
/// goes to a file only the service user can read, and the output says
/// where ([`initial_password`]).
fn print_bootstrap(bootstrap: &Bootstrap, url: &str, data_dir: &Path) -> anyhow::Result<()> {
    match bootstrap {
        Bootstrap::NotNeeded => {}
        Bootstrap::Configured(email) => println!("created admin {email}"),
        Bootstrap::Generated(email, password) if std::io::stdout().is_terminal() => {
            println!("created the first admin; this password is shown only once:");
            println!("  login url: {url}");
            println!("  email:     {email}");
            println!("  password:  {}", password.expose_secret());
        }
        Bootstrap::Generated(email, password) => {
            let path =
                initial_password::write(data_dir, email.as_str(), password).with_context(|| {
                    format!(
                        "cannot write the first admin's password into {}",
                        data_dir.display()
                    )
                })?;
            println!(
                "created the first admin; its password is in {} (readable by this user only; removed when the password is first changed):",
                path.display()
            );
            println!("  login url: {url}");
            println!("  email:     {email}");
        }
    }
    Ok(())
}
