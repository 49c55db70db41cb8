//! Credential exports (spec endpoint 4): a link that downloads a CSV of
//! mailboxes with their credentials. The link's token is stored hashed,
//! expires, and the file is built at download, so passwords are opened
//! once per download and never written anywhere in clear.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::formats::{self, Format, Row};
use crate::auth::{new_secret, secret_hash};
use crate::clock::SharedClock;
use crate::inboxes::{IMAP_PORT, SMTP_PORT, mail_host};
use crate::settings::LiveSettings;
use crate::store::exports::{self as repo, Export};
use crate::store::{self, Store, StoreError};
use crate::types::Role;
use crate::vault::{Slot, Vault};

const TOKEN_PREFIX: &str = "ige_";
/// The most mailboxes one export or push may name.
const MAX_SELECTION: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("mailbox not found")]
    MailboxNotFound,
    #[error("domain not found")]
    DomainNotFound,
    #[error("this export link is unknown")]
    UnknownLink,
    #[error("this export link has expired; create a new export")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the export could not be written: {0}")]
    Csv(#[from] csv::Error),
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/inboxes/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub mailbox_ids: Option<Vec<Uuid>>,
    pub domain_id: Option<Uuid>,
    pub format: Format,
    #[serde(default = "yes")]
    pub include_passwords: bool,
}

#[derive(Debug, Serialize)]
pub struct ExportCreated {
    pub export_id: Uuid,
    pub format: Format,
    pub file_url: String,
    pub expires_at: DateTime<Utc>,
    pub rows: usize,
    pub columns: &'static [&'static str],
}

/// A file ready to send.
pub struct File {
    pub export_id: Uuid,
    pub owner: Uuid,
    pub name: String,
    pub bytes: Vec<u8>,
}

pub struct Exports {
    store: Store,
    vault: Arc<Vault>,
    clock: SharedClock,
    /// Without a trailing slash.
    pub public_url: String,
    /// The mail host pattern is read at use time.
    settings: Arc<LiveSettings>,
    ttl: Duration,
}

impl Exports {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        clock: SharedClock,
        public_url: String,
        settings: Arc<LiveSettings>,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            vault,
            clock,
            public_url,
            settings,
            ttl,
        }
    }

    /// The mailboxes a request names, by id or by domain, as `scope` sees
    /// them. Someone else's id looks exactly like a missing one.
    pub async fn select(
        &self,
        scope: Option<Uuid>,
        mailbox_ids: Option<Vec<Uuid>>,
        domain_id: Option<Uuid>,
    ) -> Result<Vec<Uuid>, ExportError> {
        match (mailbox_ids, domain_id) {
            (Some(ids), None) if !ids.is_empty() && ids.len() <= MAX_SELECTION => {
                let wanted = ids.len();
                let found = self
                    .store
                    .read(move |c| repo::visible(c, &ids, scope))
                    .await?;
                if found.len() != wanted {
                    return Err(ExportError::MailboxNotFound);
                }
                Ok(found)
            }
            (None, Some(domain)) => self
                .store
                .read(move |c| {
                    if store::domains::get(c, domain, scope)?.is_none() {
                        return Ok(None);
                    }
                    repo::of_domain(c, domain).map(Some)
                })
                .await?
                .ok_or(ExportError::DomainNotFound),
            _ => Err(ExportError::Invalid {
                field: "mailbox_ids",
                message: format!("give either mailbox_ids (1 to {MAX_SELECTION} ids) or domain_id"),
            }),
        }
    }

    pub async fn create(
        &self,
        caller: Uuid,
        scope: Option<Uuid>,
        req: ExportRequest,
    ) -> Result<ExportCreated, ExportError> {
        let ids = self.select(scope, req.mailbox_ids, req.domain_id).await?;
        let now = self.clock.now();
        let (token, hash) = new_secret(TOKEN_PREFIX);
        let export = Export {
            id: Uuid::new_v4(),
            user_id: caller,
            format: req.format.as_str().to_owned(),
            include_passwords: req.include_passwords,
            mailbox_ids: ids,
            expires_at: now + self.ttl,
        };
        let rows = export.mailbox_ids.len();
        let (id, expires_at) = (export.id, export.expires_at);
        self.store
            .write(move |tx| repo::insert(tx, &export, &hash, now))
            .await?;
        Ok(ExportCreated {
            export_id: id,
            format: req.format,
            file_url: format!(
                "{}/api/v1/exports/{}",
                self.public_url,
                token.expose_secret()
            ),
            expires_at,
            rows,
            columns: req.format.columns(),
        })
    }

    /// A link to the credentials of a batch just created, in the spec's
    /// own layout (spec endpoint 2's `export_csv_url`).
    pub async fn of_batch(
        &self,
        caller: Uuid,
        scope: Option<Uuid>,
        ids: Vec<Uuid>,
    ) -> Result<ExportCreated, ExportError> {
        let req = ExportRequest {
            mailbox_ids: Some(ids),
            domain_id: None,
            format: Format::Generic,
            include_passwords: true,
        };
        self.create(caller, scope, req).await
    }

    /// Builds the file behind a link. Unknown and expired links say nothing
    /// about the mailboxes they held.
    pub async fn download(&self, token: &str) -> Result<File, ExportError> {
        let hash = secret_hash(token);
        let export = self
            .store
            .read(move |c| repo::by_token_hash(c, &hash))
            .await?
            .ok_or(ExportError::UnknownLink)?;
        if export.expires_at <= self.clock.now() {
            return Err(ExportError::Expired);
        }
        let format = Format::parse(&export.format).map_err(|_| ExportError::UnknownLink)?;
        let owner = export.user_id;
        let rows = self
            .load(owner, export.mailbox_ids.clone(), export.include_passwords)
            .await?
            .into_iter()
            .map(|(_, row)| row)
            .collect::<Vec<_>>();
        let bytes = formats::write(format, &rows)?;
        Ok(File {
            export_id: export.id,
            owner,
            name: format.file_name(&export.id.simple().to_string()[..8]),
            bytes,
        })
    }

    /// Each of `ids` that `owner` may still see, with its credentials as the
    /// formats and pushes need them; each password is opened once. A
    /// disabled owner sees nothing.
    pub async fn load(
        &self,
        owner: Uuid,
        ids: Vec<Uuid>,
        include_passwords: bool,
    ) -> Result<Vec<(Uuid, Row)>, ExportError> {
        let sources = self
            .store
            .read(move |c| {
                let user = store::users::by_id(c, owner)?.filter(|u| !u.disabled);
                let Some(user) = user else {
                    return Ok(Vec::new());
                };
                let scope = (user.role != Role::Admin).then_some(owner);
                repo::sources(c, &ids, scope)
            })
            .await?;
        let pattern = self.settings.get().domains.mail_host_pattern.clone();
        Ok(sources
            .into_iter()
            .map(|s| {
                let password = match (&s.password_sealed, include_passwords) {
                    (Some(sealed), true) => {
                        let row = s.id.to_string();
                        self.vault
                            .open(
                                Slot {
                                    table: "mailboxes",
                                    column: "password_sealed",
                                    row_id: &row,
                                },
                                sealed,
                            )
                            .map(|p| String::from_utf8_lossy(p.expose_secret()).into_owned())
                            .unwrap_or_default()
                    }
                    _ => String::new(),
                };
                let host = mail_host(&pattern, &s.domain);
                let row = Row {
                    email: s.email,
                    first_name: s.first_name,
                    last_name: s.last_name,
                    password,
                    smtp_host: host.clone(),
                    smtp_port: SMTP_PORT,
                    imap_host: host,
                    imap_port: IMAP_PORT,
                    daily_limit: s.daily_limit,
                    warmup: s.status == "warming",
                    tracking_domain: s.tracking_domain,
                };
                (s.id, row)
            })
            .collect())
    }
}
