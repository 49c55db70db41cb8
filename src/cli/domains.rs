//! `inboxgrove domain …`: the domain orchestrator from the console. The
//! running server's workers publish and verify in the background; `verify`
//! checks DNS right here.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::config::{ConsoleArgs, DomainArgs, Settings};
use crate::domains::name::DomainName;
use crate::domains::plan::DmarcPolicy;
use crate::domains::service::{AddDomain, DomainView};
use crate::server;
use crate::store::{self, domains as repo};
use crate::types::{EmailAddress, Role};

#[derive(Debug, Args)]
pub struct DomainCli {
    #[command(flatten)]
    pub settings: DomainArgs,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(subcommand)]
    pub command: DomainCommand,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a sending domain; with a Cloudflare token (stdin or
    /// INBOXGROVE_CLOUDFLARE_API_TOKEN) its records are published for you,
    /// otherwise the records to create by hand are printed
    Add {
        domain: String,
        /// Owner's email [default: the first admin]
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        cloudflare_zone_id: Option<String>,
        #[arg(long)]
        tracking_domain: Option<String>,
        /// none, quarantine or reject [default: none]
        #[arg(long)]
        dmarc_policy: Option<String>,
        /// Read a Cloudflare API token for this domain from stdin
        #[arg(long)]
        cloudflare_token_stdin: bool,
    },
    /// List domains
    List,
    /// Show a domain and each record's state
    Show { domain: String },
    /// Check the domain's records in DNS now
    Verify { domain: String },
    /// Remove a domain
    Remove {
        domain: String,
        /// Remove it even if it still has mailboxes
        #[arg(long)]
        force: bool,
        /// Also delete the records InboxGrove created at Cloudflare
        #[arg(long)]
        remove_records: bool,
    },
}

pub async fn run(cmd: DomainCommand, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let (core, domains) = server::open_domains(&settings, clock).await?;
    let find = |raw: String| {
        let store = core.store.clone();
        async move {
            let name = DomainName::parse(&raw).map_err(|e| anyhow!("{raw}: {e}"))?;
            store
                .read(move |c| repo::by_name(c, name.as_str(), None))
                .await?
                .ok_or_else(|| anyhow!("{raw} is not added; see `inboxgrove domain list`"))
        }
    };
    match cmd {
        DomainCommand::Add {
            domain,
            owner,
            cloudflare_zone_id,
            tracking_domain,
            dmarc_policy,
            cloudflare_token_stdin,
        } => {
            let owner = owner_id(&core.store, owner.as_deref()).await?;
            let req = AddDomain {
                domain_name: DomainName::parse(&domain).map_err(|e| anyhow!("{domain}: {e}"))?,
                cloudflare_api_token: cloudflare_token_stdin.then(read_token).transpose()?,
                cloudflare_zone_id,
                cloudflare_account_id: None,
                tracking_domain,
                dmarc_policy: dmarc_policy
                    .map(|p| DmarcPolicy::parse(&p).map_err(|e| anyhow!("--dmarc-policy: {e}")))
                    .transpose()?,
            };
            print_view(&domains.add(owner, req).await?);
        }
        DomainCommand::List => {
            for v in domains.list(None).await? {
                println!(
                    "{:<36}  {:<12}  {:<10}  {}",
                    v.domain_id, v.domain.status, v.domain.dns_mode, v.domain.domain_name
                );
            }
        }
        DomainCommand::Show { domain } => {
            let d = find(domain).await?;
            print_view(&domains.view(d.id, None).await?);
        }
        DomainCommand::Verify { domain } => {
            let d = find(domain).await?;
            domains.verify_now(d.id, None).await?;
            print_view(&domains.view(d.id, None).await?);
        }
        DomainCommand::Remove {
            domain,
            force,
            remove_records,
        } => {
            let d = find(domain).await?;
            domains.remove(d.id, None, force, remove_records).await?;
            println!("removed {}", d.domain_name);
        }
    }
    Ok(())
}

async fn owner_id(store: &store::Store, email: Option<&str>) -> anyhow::Result<Uuid> {
    let users = store.read(store::users::list).await?;
    let owner = match email {
        Some(raw) => {
            let email = EmailAddress::parse(raw).map_err(|e| anyhow!("--owner: {e}"))?;
            users.into_iter().find(|u| u.email == email.as_str())
        }
        None => users.into_iter().find(|u| u.role == Role::Admin),
    };
    owner
        .map(|u| u.id)
        .ok_or_else(|| anyhow!("no such user; see `inboxgrove user list`"))
}

fn read_token() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Cloudflare API token (one line):");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the token from stdin")?;
    Ok(SecretString::from(line.trim().to_owned()))
}

fn print_view(v: &DomainView) {
    let d = &v.domain;
    println!("{} ({})", d.domain_name, v.domain_id);
    println!(
        "  status: {}  dns: {}  dmarc: p={}",
        d.status, d.dns_mode, d.dmarc_policy
    );
    println!("  {}", v.dns_note);
    if let Some(e) = &d.last_error {
        println!("  last error: {e}");
    }
    println!("  records:");
    for r in &v.records {
        let priority = r
            .record
            .priority
            .map(|p| format!("{p} "))
            .unwrap_or_default();
        println!(
            "    {:<9} {:<5} {}  {}{}",
            r.status, r.record.record_type, r.record.name, priority, r.record.content
        );
    }
}
