//! `inboxgrove inbox …`: mailboxes from the console. Changes go to SQLite
//! and, through the running server's control listener, to the datasource
//! KumoMTA reads, so they take effect at once.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::config::{ServeArgs, Settings};
use crate::domains::name::DomainName;
use crate::inboxes::naming::NamingScheme;
use crate::inboxes::service::{BulkRequest, InboxPatch, Inboxes};
use crate::server;
use crate::store::mailboxes::{Filter, Mailbox};
use crate::store::{self, domains as domain_repo};

#[derive(Debug, Args)]
pub struct InboxCli {
    /// The server's settings (control listener, mail host pattern …).
    #[command(flatten)]
    pub settings: ServeArgs,
    #[command(subcommand)]
    pub command: InboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Create mailboxes on a domain; prints each address and its password
    /// once
    Bulk {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        quantity: u32,
        /// random, first.last, flast [default: random]
        #[arg(long)]
        naming_scheme: Option<String>,
        #[arg(long)]
        daily_limit: Option<u32>,
        /// Create them active instead of warming up
        #[arg(long)]
        no_warmup: bool,
    },
    /// List mailboxes
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    Show {
        email: String,
    },
    /// Stop a mailbox from sending and receiving
    Pause {
        email: String,
    },
    Resume {
        email: String,
    },
    /// Give a mailbox a new password, printed once
    ResetPassword {
        email: String,
    },
}

pub async fn run(cmd: InboxCommand, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let (core, inboxes) = server::open_inboxes(&settings, clock).await?;
    let store = core.store.clone();
    let mailbox = |email: String| {
        let store = store.clone();
        async move {
            let lookup = email.clone();
            store
                .read(move |c| store::mailboxes::by_address(c, &lookup))
                .await?
                .ok_or_else(|| {
                    anyhow!("{email} is not a mailbox here; see `inboxgrove inbox list`")
                })
        }
    };
    let domain_id = |raw: String| {
        let store = store.clone();
        async move {
            let name = DomainName::parse(&raw).map_err(|e| anyhow!("--domain: {e}"))?;
            store
                .read(move |c| domain_repo::by_name(c, name.as_str(), None))
                .await?
                .map(|d| d.id)
                .ok_or_else(|| anyhow!("{raw} is not added; see `inboxgrove domain list`"))
        }
    };
    match cmd {
        InboxCommand::Bulk {
            domain,
            quantity,
            naming_scheme,
            daily_limit,
            no_warmup,
        } => {
            let naming_scheme = match naming_scheme {
                Some(s) => NamingScheme::parse(&s).map_err(|e| anyhow!("--naming-scheme: {e}"))?,
                None => NamingScheme::Random,
            };
            let req = BulkRequest {
                domain_id: domain_id(domain).await?,
                quantity,
                naming_scheme,
                daily_limit,
                enable_warmup: !no_warmup,
                names: Vec::new(),
            };
            let created = inboxes.bulk(None, req).await?;
            println!(
                "created {} mailboxes; passwords are shown only now:",
                created.created_count
            );
            for i in &created.inboxes {
                println!("{}\t{}", i.email, i.password);
            }
        }
        InboxCommand::List { domain, status } => {
            let domain_id = match domain {
                Some(d) => Some(domain_id(d).await?),
                None => None,
            };
            let (items, total) = inboxes
                .list(Filter {
                    scope: None,
                    domain_id,
                    status,
                    search: None,
                    limit: u32::MAX,
                    offset: 0,
                })
                .await?;
            for m in &items {
                println!(
                    "{:<8}  {:>3}/{:<3}  {}",
                    m.status, m.emails_sent_today, m.daily_limit, m.email
                );
            }
            println!("{total} mailboxes");
        }
        InboxCommand::Show { email } => print(&inboxes.get(mailbox(email).await?, None).await?),
        InboxCommand::Pause { email } => pause(&inboxes, mailbox(email).await?, true).await?,
        InboxCommand::Resume { email } => pause(&inboxes, mailbox(email).await?, false).await?,
        InboxCommand::ResetPassword { email } => {
            let (m, password) = inboxes.reset_password(mailbox(email).await?, None).await?;
            println!("{}\t{}", m.email, password.expose_secret());
        }
    }
    Ok(())
}

async fn pause(inboxes: &Inboxes, id: Uuid, paused: bool) -> anyhow::Result<()> {
    let patch = InboxPatch {
        paused: Some(paused),
        ..Default::default()
    };
    let m = inboxes.update(id, None, patch).await?;
    println!("{} is {}", m.email, m.status);
    Ok(())
}

fn print(m: &Mailbox) {
    println!("{} ({})", m.email, m.id);
    println!("  name: {} {}", m.first_name, m.last_name);
    println!(
        "  status: {}  sent today: {}/{}",
        m.status, m.emails_sent_today, m.daily_limit
    );
    println!(
        "  sent: {}  delivered: {}  bounced: {} hard, {} soft  complaints: {}",
        m.total_sent, m.delivered, m.bounced_hard, m.bounced_soft, m.complaints
    );
}
