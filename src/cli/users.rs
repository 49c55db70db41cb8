//! `inboxgrove user …`: user accounts from the console.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Args, Subcommand};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::audit;
use crate::auth::Accounts;
use crate::auth::users::UserPatch;
use crate::clock::SharedClock;
use crate::config::{ConsoleArgs, Settings};
use crate::server;
use crate::types::{EmailAddress, Password, Role, SubscriptionTier};

#[derive(Debug, Args)]
pub struct UserCli {
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(subcommand)]
    pub command: UserCommand,
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

pub async fn run(cmd: UserCommand, settings: Settings, clock: SharedClock) -> anyhow::Result<()> {
    let (store, accounts) = server::open_accounts(&settings, clock.clone())?;
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
