//! `inboxgrove rotate-control-secret`: gives control clients new
//! credentials ([`credentials::rotate`]), updates the copies KumoMTA and
//! Dovecot read, and reloads them when asked. The running server needs no
//! signal: it reads the credential files again when they change. No secret
//! is printed; they go only into files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::kumo::credentials::{self, Client};

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Whose credential to replace
    #[arg(long, value_enum, default_value = "all")]
    pub client: Which,
    /// How long the replaced secret is still accepted (e.g. 10m, 1h; 0s
    /// refuses it at once), time for the services to pick up the new one
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    /// KumoMTA's installed copy, kept with its owner, group and mode
    #[arg(long, default_value = super::kumo::INSTALLED_SECRET)]
    pub kumo_secret_file: PathBuf,
    /// Dovecot's installed copy, kept with its owner, group and mode
    #[arg(long, default_value = super::dovecot::INSTALLED_SECRET)]
    pub dovecot_secret_file: PathBuf,
    /// Run `systemctl reload-or-restart kumomta` once KumoMTA's copy is
    /// updated (otherwise the command is printed)
    #[arg(long)]
    pub reload: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    Kumo,
    Dovecot,
    Console,
    All,
}

impl Which {
    fn clients(self) -> Vec<Client> {
        match self {
            Which::Kumo => vec![Client::Kumo],
            Which::Dovecot => vec![Client::Dovecot],
            Which::Console => vec![Client::Console],
            Which::All => Client::ALL.to_vec(),
        }
    }
}

pub fn run(args: &RotateArgs, settings: &Settings, clock: SharedClock) -> anyhow::Result<()> {
    let data_dir = &settings.data_dir;
    if !data_dir.join(Client::Kumo.file_name()).exists() {
        bail!(
            "no control credentials in {}; run `inboxgrove init` first or pass --data-dir",
            data_dir.display()
        );
    }
    let grace = chrono::Duration::from_std(args.grace).context("--grace is too long")?;
    let mut units = Vec::new();
    for client in args.client.clients() {
        let rotated = credentials::rotate(data_dir, client, grace, clock.now())?;
        match rotated.previous_until {
            Some(until) => println!(
                "rotated {}: wrote {}; the replaced secret is accepted until {}",
                client.name(),
                rotated.file.display(),
                until.to_rfc3339()
            ),
            None => println!(
                "rotated {}: wrote {}; the replaced secret is refused from now on",
                client.name(),
                rotated.file.display()
            ),
        }
        // Dovecot's checkpassword reads its file at each login, so only
        // KumoMTA needs a reload to take the new secret.
        let (copy, unit, group) = match client {
            Client::Kumo => (&args.kumo_secret_file, Some("kumomta"), "kumod"),
            Client::Dovecot => (&args.dovecot_secret_file, None, "dovecot"),
            // The console reads its credential from the data dir itself.
            Client::Console => continue,
        };
        if update_copy(data_dir, client, copy)? {
            println!("updated {}", copy.display());
            units.extend(unit);
        } else {
            eprintln!(
                "warning: {} does not exist, so {group} cannot have the new secret; install it with `install -m 0640 -o root -g {group} {} {}`",
                copy.display(),
                rotated.file.display(),
                copy.display()
            );
        }
    }
    reload(&units, args.reload)
}

/// Replaces an installed copy with the data dir's new secret, keeping the
/// copy's owner, group and mode. False if there is no copy there.
fn update_copy(data_dir: &Path, client: Client, copy: &Path) -> anyhow::Result<bool> {
    let meta = match std::fs::metadata(copy) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", copy.display())),
    };
    let secret = credentials::load(data_dir, client)?;
    credentials::replace_file(
        copy,
        &format!("{}\n", secret.expose_secret()),
        meta.mode() & 0o7777,
        (meta.uid(), meta.gid()),
    )?;
    Ok(true)
}

/// KumoMTA reads its credential in every new Lua context
/// (`kumo-policy/init.lua`, `load_settings`); contexts are recycled about
/// every 5 minutes, inside the default 10 minute grace, and a reload makes
/// every new one read it at once.
fn reload(units: &[&str], run: bool) -> anyhow::Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let shown = format!("systemctl reload-or-restart {}", units.join(" "));
    if !run {
        println!("not reloading (pass --reload to): would run `{shown}`");
        return Ok(());
    }
    let status = Command::new("systemctl")
        .arg("reload-or-restart")
        .args(units)
        .status()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if !status.success() {
        bail!(
            "`{shown}` failed ({status}); the replaced secrets stay accepted until the grace period ends"
        );
    }
    println!("ran `{shown}`");
    Ok(())
}
