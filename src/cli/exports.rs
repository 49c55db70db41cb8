//! `inboxgrove export`: a credential file from the console, written to a
//! file (mode 0600) or stdout, through the same code as the API's links.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;

use crate::audit;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domains::name::DomainName;
use crate::exports::formats::Format;
use crate::exports::service::{ExportRequest, Exports};
use crate::server;
use crate::store::{self, domains as domain_repo};
use crate::types::Role;

#[derive(Debug, Args)]
pub struct ExportCli {
    /// The domain whose mailboxes to export
    #[arg(long)]
    pub domain: String,
    /// instantly_csv, smartlead_csv, replyio_csv or generic_csv
    #[arg(long)]
    pub format: String,
    /// Leave the password cells empty
    #[arg(long)]
    pub no_passwords: bool,
    /// Write here (mode 0600) instead of stdout
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

pub async fn run(args: ExportCli, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let format = Format::parse(&args.format).map_err(|e| anyhow!("--format: {e}"))?;
    let name = DomainName::parse(&args.domain).map_err(|e| anyhow!("--domain: {e}"))?;
    let core = server::open_core(&settings, clock.clone(), server::Holder::Console).await?;
    let core_clock = clock.clone();
    let (domain, admin) = core
        .store
        .read(move |c| {
            let d = domain_repo::by_name(c, name.as_str(), None)?;
            let admin = store::users::list(c)?
                .into_iter()
                .find(|u| u.role == Role::Admin && !u.disabled);
            Ok((d, admin))
        })
        .await?;
    let domain = domain
        .ok_or_else(|| anyhow!("{} is not added; see `inboxgrove domain list`", args.domain))?;
    let admin = admin.ok_or_else(|| anyhow!("no active admin to record the export under"))?;
    let exports = Exports::new(
        core.store.clone(),
        core.vault.clone(),
        clock,
        String::new(),
        core.live.clone(),
        chrono::Duration::minutes(5),
    );
    let created = exports
        .create(
            admin.id,
            None,
            ExportRequest {
                mailbox_ids: None,
                domain_id: Some(domain.id),
                format,
                include_passwords: !args.no_passwords,
            },
        )
        .await?;
    let token = created
        .file_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let file = exports.download(&token).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("credential_export".into(), "cli".into());
    metadata.insert("format".into(), format.as_str().into());
    let entry = audit::Entry {
        action: "cli export".into(),
        resource_type: Some("export".into()),
        resource_id: Some(file.export_id.to_string()),
        success: true,
        metadata,
        ..Default::default()
    };
    audit::record(&core.store, &core_clock, entry).await?;
    match args.output {
        Some(path) => {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            out.write_all(&file.bytes)?;
            eprintln!("wrote {} mailboxes to {}", created.rows, path.display());
        }
        None => std::io::stdout().write_all(&file.bytes)?,
    }
    Ok(())
}
