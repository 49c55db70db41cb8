//! Keeping the datasource KumoMTA reads in step with SQLite. Every change
//! that can give or take away a mailbox's right to log in (the mailbox
//! itself, its owner's account, its domain) is committed to SQLite first
//! and then calls [`MailboxSync::refresh`] with what it touched; the
//! affected entries are read back from SQLite and written or removed, and
//! KumoMTA is told to drop its caches. So a revocation holds from the next
//! request on, not from the next restart.
//!
//! Refreshes run one at a time and each reads SQLite after the change it
//! follows was committed, so the last one to run always leaves the newest
//! state, whatever order concurrent changes commit in.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::datasource::{self, Datasource, DatasourceError, Selection};
use crate::kumo::epoch::EpochBumper;
use crate::store::mailboxes::{self, Scope};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Datasource(#[from] DatasourceError),
    #[error(
        "the change is saved, but the server holding {data_dir} did not answer at {url} ({cause}), so KumoMTA and IMAP still see the old state; give that server's control address with --control-listen (or control_listen in the file --config names), or restart the server to apply it"
    )]
    NoServer {
        data_dir: PathBuf,
        url: String,
        cause: String,
    },
    #[error(
        "the change is saved, but the running server did not take it: {0}; restart the server to apply it"
    )]
    Server(String),
}

/// Where mailbox changes go after SQLite: the datasource itself, or, when
/// the running server holds it (sled allows one process), a request that
/// the server resync it.
pub enum Sink {
    Local(Datasource),
    Server {
        control_url: String,
        secret: SecretString,
        data_dir: PathBuf,
    },
}

/// What a change touched.
#[derive(Debug, Clone)]
pub enum Refresh {
    All,
    Mailboxes(Vec<Uuid>),
    /// One address (`domain`, `username`), e.g. of a deleted mailbox.
    Address(String, String),
    /// A domain name: its mailboxes, and any entry left under the name.
    Domain(String),
    /// A user's mailboxes (their account was disabled or enabled).
    User(Uuid),
}

pub struct MailboxSync {
    store: Store,
    sink: Sink,
    epoch: EpochBumper,
    one_at_a_time: Mutex<()>,
}

impl MailboxSync {
    pub fn new(store: Store, sink: Sink, epoch: EpochBumper) -> Self {
        Self {
            store,
            sink,
            epoch,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Tells KumoMTA to drop what it cached, for a change that touches no
    /// mailbox entry (a domain's egress address).
    pub fn tell_kumomta(&self) {
        self.epoch.bump();
    }

    /// The datasource, when this process holds it.
    pub fn datasource(&self) -> Option<&Datasource> {
        match &self.sink {
            Sink::Local(ds) => Some(ds),
            Sink::Server { .. } => None,
        }
    }

    /// Makes the entries `what` touched match SQLite and tells KumoMTA.
    /// Returns how many entries changed here (0 when the server did it).
    pub async fn refresh(&self, what: Refresh) -> Result<usize, SyncError> {
        let ds = match &self.sink {
            Sink::Local(ds) => ds,
            Sink::Server {
                control_url,
                secret,
                data_dir,
            } => return ask_server(control_url, secret, data_dir).await.map(|()| 0),
        };
        let _turn = self.one_at_a_time.lock().await;
        let (selection, truth) = self
            .store
            .read(move |c| {
                Ok(match &what {
                    Refresh::All => (Selection::All, mailboxes::entries(c, Scope::All)?),
                    Refresh::Mailboxes(ids) => (
                        Selection::Keys(mailboxes::keys_of(c, ids)?),
                        mailboxes::entries(c, Scope::Ids(ids))?,
                    ),
                    Refresh::Address(domain, username) => (
                        Selection::Keys([datasource::key(domain, username)].into()),
                        mailboxes::entries(c, Scope::Address(domain, username))?,
                    ),
                    Refresh::Domain(name) => (
                        Selection::Domain(name.clone()),
                        mailboxes::entries(c, Scope::Domain(name))?,
                    ),
                    Refresh::User(id) => (
                        Selection::User(*id),
                        mailboxes::entries(c, Scope::User(*id))?,
                    ),
                })
            })
            .await?;
        let changed = ds.reconcile(&selection, &truth)?;
        self.epoch.bump();
        Ok(changed)
    }
}

/// The server that holds the datasource resyncs it from SQLite (and tells
/// KumoMTA).
async fn ask_server(
    control_url: &str,
    secret: &SecretString,
    data_dir: &std::path::Path,
) -> Result<(), SyncError> {
    let url = format!("{control_url}/kumo/v1/sync");
    let sent = reqwest::Client::new()
        .post(&url)
        .bearer_auth(secret.expose_secret())
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(SyncError::Server(format!(
            "{url} answered HTTP {}",
            r.status()
        ))),
        Err(e) => Err(SyncError::NoServer {
            data_dir: data_dir.to_owned(),
            url,
            cause: if e.is_connect() {
                "connection refused".into()
            } else {
                e.to_string()
            },
        }),
    }
}
