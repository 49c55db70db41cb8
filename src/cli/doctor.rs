//! `inboxgrove doctor [--json]`: every diagnostic check, as a table or as
//! JSON `{ "checks": [{name, status, detail, fix}], "ok": bool }`; exits
//! non-zero when a check fails, so scripts and install.sh can stop on it.

use anyhow::bail;
use clap::Args;

use crate::clock::SharedClock;
use crate::config::{ServeArgs, Settings};
use crate::doctor::{self, Report, Status, Target};
use crate::server;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DoctorCli {
    /// The server's settings (data dir, mail root, TLS certificate,
    /// kumo_http_url …) and where the checks look.
    #[command(flatten)]
    pub settings: ServeArgs,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &DoctorCli, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let target = Target::new(&settings);
    // Opening the store of a data dir that is not there would create one.
    let report = if Store::path_in(&settings.data_dir).exists() {
        let (_core, domains) = server::open_domains(&settings, clock.clone()).await?;
        doctor::diagnose(&target, &clock, &domains).await
    } else {
        let missing = format!(
            "no database in {}; run `inboxgrove init`",
            settings.data_dir.display()
        );
        doctor::run(&target, &clock, Err(missing)).await
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}

fn table(report: &Report) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            c.status.as_str(),
            c.name,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<4}  {:<width$}  fix: {fix}\n", "", ""));
        }
    }
    out
}
