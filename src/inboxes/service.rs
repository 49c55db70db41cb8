//! The bulk inbox generator and mailbox management (spec endpoint 2). The
//! API, the UI and the CLI call these; every change is written to SQLite and
//! then reaches the datasource KumoMTA's questions are answered from
//! ([`super::sync`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::{OsRng, StdRng};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::naming::{self, CustomName, NamingError, NamingScheme, PersonName};
use super::sync::{MailboxSync, Refresh, SyncError};
use super::{IMAP_PORT, SMTP_PORT};
use crate::auth::password::{HashError, Hasher};
use crate::clock::SharedClock;
use crate::settings::LiveSettings;
use crate::store::mailboxes::{self as repo, Changes, Filter, Mailbox, NewMailbox};
use crate::store::{self, Store, StoreError};
use crate::tiers::{self, TierError};
use crate::vault::{Slot, Vault};
use crate::warmup::ramp;
use crate::warmup::settings::Settings as WarmupSettings;

pub const MAX_QUANTITY: u32 = 1000;
pub const MAX_DAILY_LIMIT: u32 = 500;
const DEFAULT_DAILY_LIMIT: u32 = 40;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("mailbox not found")]
    NotFound,
    #[error("domain not found")]
    DomainNotFound,
    #[error(transparent)]
    Naming(#[from] NamingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tier(#[from] TierError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

fn default_scheme() -> NamingScheme {
    NamingScheme::Random
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/inboxes/bulk`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub domain_id: Uuid,
    pub quantity: u32,
    #[serde(default = "default_scheme")]
    pub naming_scheme: NamingScheme,
    pub daily_limit: Option<u32>,
    #[serde(default = "yes")]
    pub enable_warmup: bool,
    /// With `naming_scheme: custom`: one entry per mailbox.
    #[serde(default)]
    pub names: Vec<CustomName>,
}

#[derive(Debug, Serialize)]
pub struct CreatedInbox {
    pub inbox_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Shown here and in exports only.
    pub password: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub imap_host: String,
    pub imap_port: u16,
    pub daily_limit: u32,
    pub health_score: f64,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct WarmupSchedule {
    pub starts_at: DateTime<Utc>,
    pub ready_date: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct BulkResponse {
    pub created_count: usize,
    pub inboxes: Vec<CreatedInbox>,
    /// A credential export link of the batch; set by the API handler.
    pub export_csv_url: Option<String>,
    pub warmup_schedule: Option<WarmupSchedule>,
}

/// `PATCH /api/v1/inboxes/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxPatch {
    pub daily_limit: Option<u32>,
    /// `true` pauses sending and receiving, `false` resumes.
    pub paused: Option<bool>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

pub struct Inboxes {
    store: Store,
    vault: Arc<Vault>,
    clock: SharedClock,
    sync: Arc<MailboxSync>,
    hasher: Hasher,
    settings: Arc<LiveSettings>,
}

fn check_limit(limit: u32) -> Result<u32, InboxError> {
    if (1..=MAX_DAILY_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(InboxError::Invalid {
            field: "daily_limit",
            message: format!("must be between 1 and {MAX_DAILY_LIMIT} emails a day"),
        })
    }
}

impl Inboxes {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        clock: SharedClock,
        sync: Arc<MailboxSync>,
        hasher: Hasher,
        settings: Arc<LiveSettings>,
    ) -> Self {
        Self {
            store,
            vault,
            clock,
            sync,
            hasher,
            settings,
        }
    }

    pub async fn bulk(
        &self,
        owner: Option<Uuid>,
        req: BulkRequest,
    ) -> Result<BulkResponse, InboxError> {
        if !(1..=MAX_QUANTITY).contains(&req.quantity) {
            return Err(InboxError::Invalid {
                field: "quantity",
                message: format!("must be between 1 and {MAX_QUANTITY}"),
            });
        }
        let daily_limit = check_limit(req.daily_limit.unwrap_or(DEFAULT_DAILY_LIMIT))?;
        let (domain_id, quantity) = (req.domain_id, req.quantity);
        // A member's tier limits how many they hold (an admin is not
        // limited, see `tiers`). Checked before the hashing, and again
        // where they are stored.
        let room = move |c: &rusqlite::Connection| match owner {
            Some(member) => tiers::check_mailboxes(c, member, quantity),
            None => Ok(()),
        };
        let (domain, room_now, taken) = self
            .store
            .read(move |c| {
                let d = store::domains::get(c, domain_id, owner)?;
                Ok((d, room(c), repo::usernames(c, domain_id)?))
            })
            .await?;
        let domain = domain.ok_or(InboxError::DomainNotFound)?;
        room_now?;
        let names = naming::generate(
            req.naming_scheme,
            req.quantity as usize,
            &taken,
            &req.names,
            &mut StdRng::from_entropy(),
        )?;
        let passwords: Vec<SecretString> = names
            .iter()
            .map(|_| naming::generate_password(&mut OsRng))
            .collect();
        // argon2id on every core at once, off the async runtime (the
        // hasher's semaphore allows one hash per core).
        let mut hashing = tokio::task::JoinSet::new();
        for (i, p) in passwords.iter().enumerate() {
            let (hasher, p) = (self.hasher.clone(), p.clone());
            hashing.spawn(async move { (i, hasher.hash(p).await) });
        }
        let mut hashes = vec![String::new(); passwords.len()];
        while let Some(joined) = hashing.join_next().await {
            let (i, hash) = joined.map_err(HashError::from)?;
            hashes[i] = hash?;
        }
        let status = if req.enable_warmup {
            "warming"
        } else {
            "active"
        };
        let now = self.clock.now();
        let mailboxes: Vec<NewMailbox> = names
            .iter()
            .zip(hashes)
            .zip(&passwords)
            .map(|((n, hash), password)| {
                let id = Uuid::new_v4();
                let row = id.to_string();
                NewMailbox {
                    id,
                    domain_id,
                    user_id: domain.user_id,
                    username: n.username.as_str().to_owned(),
                    first_name: n.first_name.clone(),
                    last_name: n.last_name.clone(),
                    password_hash: hash,
                    password_sealed: self.vault.seal(
                        Slot {
                            table: "mailboxes",
                            column: "password_sealed",
                            row_id: &row,
                        },
                        password.expose_secret().as_bytes(),
                    ),
                    daily_limit,
                    status,
                }
            })
            .collect();
        let ids: Vec<Uuid> = mailboxes.iter().map(|m| m.id).collect();
        // Warming mailboxes join the warmup pool in the same transaction,
        // each with its own seed for the daily variation and send times.
        let tz = self.settings.get().timezone;
        let today = now.with_timezone(&tz).date_naive();
        let warmup = WarmupSettings::default();
        let enrol: Vec<(Uuid, u64)> = if req.enable_warmup {
            ids.iter()
                .map(|id| (*id, rand::Rng::r#gen(&mut OsRng)))
                .collect()
        } else {
            Vec::new()
        };
        let warmup_settings = warmup.clone();
        self.store
            .write(move |tx| {
                room(tx)?;
                repo::insert_many(tx, &mailboxes, now)?;
                for (id, seed) in &enrol {
                    store::warmup::enrol(tx, *id, &warmup_settings, *seed, today, now)?;
                }
                Ok::<_, InboxError>(())
            })
            .await?;
        self.sync.refresh(Refresh::Mailboxes(ids.clone())).await?;

        let host = super::mail_host(
            &self.settings.get().domains.mail_host_pattern,
            &domain.domain_name,
        );
        let inboxes = names
            .iter()
            .zip(&passwords)
            .zip(ids)
            .map(|((n, p), id)| CreatedInbox {
                inbox_id: id,
                email: format!("{}@{}", n.username, domain.domain_name),
                first_name: n.first_name.clone(),
                last_name: n.last_name.clone(),
                password: p.expose_secret().to_owned(),
                smtp_host: host.clone(),
                smtp_port: SMTP_PORT,
                imap_host: host.clone(),
                imap_port: IMAP_PORT,
                daily_limit,
                health_score: 100.0,
                status,
            })
            .collect::<Vec<_>>();
        Ok(BulkResponse {
            created_count: inboxes.len(),
            inboxes,
            export_csv_url: None,
            // Day 1 is today: the engine's next tick plans what fits of it.
            warmup_schedule: req.enable_warmup.then(|| WarmupSchedule {
                starts_at: now,
                ready_date: ramp::midnight(ramp::ready_date(&warmup, 0, today), tz),
            }),
        })
    }

    pub async fn get(&self, id: Uuid, scope: Option<Uuid>) -> Result<Mailbox, InboxError> {
        self.store
            .read(move |c| repo::get(c, id, scope))
            .await?
            .ok_or(InboxError::NotFound)
    }

    pub async fn list(&self, filter: Filter) -> Result<(Vec<Mailbox>, i64), InboxError> {
        Ok(self.store.read(move |c| repo::list(c, &filter)).await?)
    }

    pub async fn update(
        &self,
        id: Uuid,
        scope: Option<Uuid>,
        patch: InboxPatch,
    ) -> Result<Mailbox, InboxError> {
        let current = self.get(id, scope).await?;
        let names = match (&patch.first_name, &patch.last_name) {
            (None, None) => None,
            (first, last) => {
                let first = first.as_deref().unwrap_or(&current.first_name);
                let last = last.as_deref().unwrap_or(&current.last_name);
                let person = PersonName::parse(first, last).map_err(|e| InboxError::Invalid {
                    field: if e.0.starts_with("last_name") {
                        "last_name"
                    } else {
                        "first_name"
                    },
                    message: e.0,
                })?;
                Some((
                    person.first_name().to_owned(),
                    person.last_name().to_owned(),
                ))
            }
        };
        let changes = Changes {
            daily_limit: patch.daily_limit.map(check_limit).transpose()?,
            status: match patch.paused {
                Some(true) => Some("paused"),
                Some(false) if current.status == "paused" => Some("active"),
                _ => None,
            },
            first_name: names.as_ref().map(|n| n.0.clone()),
            last_name: names.map(|n| n.1),
            password: None,
        };
        self.apply(id, changes).await?;
        self.get(id, None).await
    }

    /// Writes `changes` to SQLite and then to the datasource.
    async fn apply(&self, id: Uuid, changes: Changes) -> Result<(), InboxError> {
        let now = self.clock.now();
        self.store
            .write(move |tx| repo::update(tx, id, &changes, now))
            .await?;
        self.sync.refresh(Refresh::Mailboxes(vec![id])).await?;
        Ok(())
    }

    /// A new password, shown once; the old one stops working at once.
    pub async fn reset_password(
        &self,
        id: Uuid,
        scope: Option<Uuid>,
    ) -> Result<(Mailbox, SecretString), InboxError> {
        self.get(id, scope).await?;
        let password = naming::generate_password(&mut OsRng);
        let hash = self.hasher.hash(password.clone()).await?;
        let row = id.to_string();
        let sealed = self.vault.seal(
            Slot {
                table: "mailboxes",
                column: "password_sealed",
                row_id: &row,
            },
            password.expose_secret().as_bytes(),
        );
        self.apply(
            id,
            Changes {
                password: Some((hash, sealed)),
                ..Default::default()
            },
        )
        .await?;
        Ok((self.get(id, None).await?, password))
    }

    pub async fn delete(&self, id: Uuid, scope: Option<Uuid>) -> Result<(), InboxError> {
        let m = self.get(id, scope).await?;
        self.store.write(move |tx| repo::delete(tx, id)).await?;
        let (username, domain) = m.email.split_once('@').unwrap_or((&m.username, ""));
        self.sync
            .refresh(Refresh::Address(domain.to_owned(), username.to_owned()))
            .await?;
        Ok(())
    }
}
