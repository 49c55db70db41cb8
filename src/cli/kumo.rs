//! `inboxgrove kumo-config`: prints (or writes) the `inboxgrove.json` the
//! KumoMTA policy reads, from this server's settings.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::{ServeArgs, Settings};
use crate::kumo::policy_config::{self, PolicyFiles};

#[derive(Debug, Args)]
pub struct KumoConfigCli {
    /// The server's settings (control listener, mail root, certificate,
    /// kumo_http_url …).
    #[command(flatten)]
    pub settings: ServeArgs,
    #[command(flatten)]
    pub kumo: KumoArgs,
}

/// Where the installer puts KumoMTA's copy of its credential.
pub const INSTALLED_SECRET: &str = "/opt/kumomta/etc/policy/inboxgrove/inboxgrove.secret";

/// Where KumoMTA runs; the defaults are its package's paths.
#[derive(Debug, Clone, Args)]
pub struct KumoArgs {
    /// A copy of <data-dir>/kumo.secret (KumoMTA's control credential)
    /// that kumod can read
    #[arg(long, default_value = INSTALLED_SECRET)]
    pub secret_file: PathBuf,
    #[arg(long, default_value = "0.0.0.0:25")]
    pub inbound_listen: SocketAddr,
    #[arg(long, default_value = "0.0.0.0:587")]
    pub submission_listen: SocketAddr,
    #[arg(long, default_value = "/var/spool/kumomta")]
    pub spool_dir: PathBuf,
    #[arg(long, default_value = "/var/log/kumomta")]
    pub log_dir: PathBuf,
    #[arg(
        long,
        default_value = "/opt/kumomta/etc/policy/inboxgrove/shaping.toml"
    )]
    pub shaping_file: PathBuf,
    /// Write the file here (mode 0640) instead of printing it
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn config(args: &KumoArgs, settings: &Settings) -> anyhow::Result<()> {
    let files = PolicyFiles {
        secret_file: args.secret_file.clone(),
        inbound_listen: args.inbound_listen,
        submission_listen: args.submission_listen,
        spool_dir: args.spool_dir.clone(),
        log_dir: args.log_dir.clone(),
        shaping_file: args.shaping_file.clone(),
    };
    let rendered = policy_config::render(settings, &files)?;
    let text = format!("{}\n", serde_json::to_string_pretty(&rendered)?);
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o640)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
