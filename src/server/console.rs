//! The parts of the appliance a console command (`user`, `domain`,
//! `inbox`) opens over an existing data dir, whether or not the server
//! runs (SQLite's WAL and busy timeout let both write).

use std::path::Path;

use anyhow::bail;

use super::{Core, Holder, Remotes, hasher, inboxes, mailbox_sync, open_core, orchestrator};
use crate::auth::Accounts;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domains::service::Orchestrator;
use crate::inboxes::service::Inboxes;
use crate::jobs::Waker;
use crate::store::Store;

fn require_data(data_dir: &Path) -> anyhow::Result<()> {
    if !Store::path_in(data_dir).exists() {
        bail!(
            "no InboxGrove data in {}; run `inboxgrove init` first or pass --data-dir",
            data_dir.display()
        );
    }
    Ok(())
}

/// The store and user accounts of an existing data dir.
pub fn open_accounts(settings: &Settings, clock: SharedClock) -> anyhow::Result<(Store, Accounts)> {
    require_data(&settings.data_dir)?;
    let store = Store::open(&settings.data_dir)?;
    let mailboxes = mailbox_sync(settings, &store, Holder::Console)?;
    Ok((
        store.clone(),
        Accounts::new(store, clock, hasher(), mailboxes, settings.data_dir.clone()),
    ))
}

/// The orchestrator over an existing data dir, for CLI commands.
pub async fn open_domains(
    settings: &Settings,
    clock: SharedClock,
) -> anyhow::Result<(Core, Orchestrator)> {
    require_data(&settings.data_dir)?;
    let core = open_core(settings, clock.clone(), Holder::Console).await?;
    let domains = orchestrator(
        &core,
        clock,
        Remotes::real(settings).dns,
        Waker::detached(),
        settings,
    );
    Ok((core, domains))
}

/// The inbox service over an existing data dir, for CLI commands.
pub async fn open_inboxes(
    settings: &Settings,
    clock: SharedClock,
) -> anyhow::Result<(Core, Inboxes)> {
    require_data(&settings.data_dir)?;
    let core = open_core(settings, clock.clone(), Holder::Console).await?;
    let inboxes = inboxes(&core, clock);
    Ok((core, inboxes))
}
