//! One-click push: adds mailboxes to the person's Instantly, Smartlead or
//! Reply.io account through the tool's own API, and keeps the API keys
//! people choose to save, sealed per user.
//!
//! A push never stops at the first failure: every mailbox gets its own
//! outcome. Only a refused key ends the calls early, because every later
//! call would be refused the same way.

use std::sync::Arc;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::client::{Answer, Sequencers};
use super::formats::Row;
use super::service::{ExportError, Exports};
use crate::clock::SharedClock;
use crate::store::integration_keys as repo;
use crate::store::{Store, StoreError};
use crate::types::name_enum;
use crate::vault::{Slot, Vault, VaultError};

pub mod client;

name_enum!(
    /// A sequencer InboxGrove can push to.
    Tool {
        Instantly => "instantly",
        Smartlead => "smartlead",
        ReplyIo => "replyio",
    }
);

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::Instantly, Tool::Smartlead, Tool::ReplyIo];

    /// The name people know it by.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Instantly => "Instantly",
            Tool::Smartlead => "Smartlead",
            Tool::ReplyIo => "Reply.io",
        }
    }
}

/// Calls in flight to one tool during a push: enough to push 50 mailboxes
/// in seconds, few enough to stay clear of per-workspace rate limits.
const IN_FLIGHT: usize = 4;
/// Longest API key accepted; real ones are well under 200 characters.
const MAX_KEY: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(
        "no {0} API key: give api_key, or save one with PUT /api/v1/integrations/{tool}",
        tool = .0.as_str()
    )]
    NoKey(Tool),
    #[error("no {} API key is saved", .0.label())]
    KeyNotFound(Tool),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a saved API key cannot be opened: {0}")]
    Vault(#[from] VaultError),
}

/// `POST /api/v1/integrations/{tool}/push`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub mailbox_ids: Option<Vec<Uuid>>,
    pub domain_id: Option<Uuid>,
    /// Used for this push only, unless `save_key`; without it, the saved
    /// key is used.
    pub api_key: Option<String>,
    #[serde(default)]
    pub save_key: bool,
    #[serde(default)]
    pub options: PushOptions,
}

/// What the tool should set up for each mailbox; each defaults to the
/// mailbox's own value.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushOptions {
    /// Turn on the tool's warmup (default: on while the mailbox warms up).
    pub warmup: Option<bool>,
    /// The tool's daily sending limit (default: the mailbox's).
    pub daily_limit: Option<u32>,
}

name_enum!(
    /// What became of one mailbox in a push.
    Outcome {
        Created => "created",
        AlreadyExists => "already_exists",
        Failed => "failed",
    }
);

impl Outcome {
    /// As a person would say it.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Created => "added",
            Outcome::AlreadyExists => "already there",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MailboxResult {
    pub mailbox_id: Uuid,
    pub email: String,
    pub outcome: Outcome,
    /// The tool's own words when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PushReport {
    pub tool: Tool,
    pub created: usize,
    pub already_exists: usize,
    pub failed: usize,
    pub key_saved: bool,
    pub results: Vec<MailboxResult>,
}

/// A saved key as listed: never the key itself.
#[derive(Debug, Serialize)]
pub struct KeyStatus {
    pub tool: Tool,
    pub label: &'static str,
    pub saved: bool,
    /// The key's last four characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

pub struct Integrations {
    exports: Arc<Exports>,
    store: Store,
    vault: Arc<Vault>,
    clock: SharedClock,
    sequencers: Sequencers,
}

fn slot_id(user: Uuid, tool: Tool) -> String {
    format!("{user}:{}", tool.as_str())
}

/// Where a saved key is sealed: bound to its user and tool.
fn key_slot(row_id: &str) -> Slot<'_> {
    Slot {
        table: "integration_keys",
        column: "key_sealed",
        row_id,
    }
}

fn parse_key(raw: &str) -> Result<SecretString, PushError> {
    let key = raw.trim();
    let invalid = |message: &str| PushError::Invalid {
        field: "api_key",
        message: message.to_owned(),
    };
    if key.is_empty() {
        return Err(invalid(
            "the API key is empty; paste the key from the tool's settings",
        ));
    }
    if key.len() > MAX_KEY || key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "this does not look like an API key (too long, or it holds spaces); copy it again from the tool's settings",
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

impl Integrations {
    pub fn new(
        exports: Arc<Exports>,
        store: Store,
        vault: Arc<Vault>,
        clock: SharedClock,
        sequencers: Sequencers,
    ) -> Self {
        Self {
            exports,
            store,
            vault,
            clock,
            sequencers,
        }
    }

    pub async fn keys(&self, user: Uuid) -> Result<Vec<KeyStatus>, PushError> {
        let saved = self.store.read(move |c| repo::list(c, user)).await?;
        Ok(Tool::ALL
            .iter()
            .map(|&tool| {
                let found = saved.iter().find(|k| k.tool == tool.as_str());
                KeyStatus {
                    tool,
                    label: tool.label(),
                    saved: found.is_some(),
                    hint: found.map(|k| k.hint.clone()),
                    updated_at: found.map(|k| k.updated_at),
                }
            })
            .collect())
    }

    pub async fn save_key(
        &self,
        user: Uuid,
        tool: Tool,
        raw: &str,
    ) -> Result<KeyStatus, PushError> {
        let key = parse_key(raw)?;
        self.store_key(user, tool, &key).await
    }

    async fn store_key(
        &self,
        user: Uuid,
        tool: Tool,
        key: &SecretString,
    ) -> Result<KeyStatus, PushError> {
        let secret = key.expose_secret();
        let hint: String = secret
            .chars()
            .skip(secret.chars().count().saturating_sub(4))
            .collect();
        let row = slot_id(user, tool);
        let sealed = self.vault.seal(key_slot(&row), secret.as_bytes());
        let now = self.clock.now();
        let stored_hint = hint.clone();
        self.store
            .write(move |tx| repo::upsert(tx, user, tool.as_str(), &sealed, &stored_hint, now))
            .await?;
        Ok(KeyStatus {
            tool,
            label: tool.label(),
            saved: true,
            hint: Some(hint),
            updated_at: Some(now),
        })
    }

    pub async fn forget_key(&self, user: Uuid, tool: Tool) -> Result<(), PushError> {
        let removed = self
            .store
            .write(move |tx| repo::delete(tx, user, tool.as_str()))
            .await?;
        if removed {
            Ok(())
        } else {
            Err(PushError::KeyNotFound(tool))
        }
    }

    async fn saved_key(&self, user: Uuid, tool: Tool) -> Result<SecretString, PushError> {
        let sealed = self
            .store
            .read(move |c| repo::sealed(c, user, tool.as_str()))
            .await?
            .ok_or(PushError::NoKey(tool))?;
        let row = slot_id(user, tool);
        let opened = self.vault.open(key_slot(&row), &sealed)?;
        Ok(SecretString::from(
            String::from_utf8_lossy(opened.expose_secret()).into_owned(),
        ))
    }

    /// Adds the selected mailboxes to `tool`, one outcome per mailbox.
    pub async fn push(
        &self,
        caller: Uuid,
        scope: Option<Uuid>,
        tool: Tool,
        req: PushRequest,
    ) -> Result<PushReport, PushError> {
        if let Some(limit) = req.options.daily_limit
            && !(1..=10_000).contains(&limit)
        {
            return Err(PushError::Invalid {
                field: "options.daily_limit",
                message: format!("{limit} is out of range; give 1 to 10000 emails a day"),
            });
        }
        let key = match &req.api_key {
            Some(raw) => parse_key(raw)?,
            None if req.save_key => {
                return Err(PushError::Invalid {
                    field: "save_key",
                    message: "save_key needs api_key".into(),
                });
            }
            None => self.saved_key(caller, tool).await?,
        };
        let ids = self
            .exports
            .select(scope, req.mailbox_ids, req.domain_id)
            .await?;
        let rows = self.exports.load(caller, ids, true).await?;
        let existing = match self.sequencers.existing(tool, &key).await {
            Ok(existing) => existing,
            Err(answer) => {
                let message = match answer {
                    Answer::Refused(m) | Answer::KeyRefused(m) => m,
                    Answer::Created | Answer::Exists => String::new(),
                };
                let answers = vec![Answer::Refused(message); rows.len()];
                return Ok(report(tool, false, rows, answers));
            }
        };
        // Set by the first call whose key is refused; later mailboxes are
        // not sent.
        let key_refused: OnceLock<String> = OnceLock::new();
        let (key_ref, refused_ref, existing_ref, options, rows_ref) =
            (&key, &key_refused, &existing, &req.options, &rows);
        // Indices, not `rows.iter()`: a stream of borrowed items makes this
        // future not `Send`-provable for a spawned task (rust#102211).
        let answers: Vec<Answer> = stream::iter(0..rows.len())
            .map(|i| async move {
                let row = &rows_ref[i].1;
                if let Some(m) = refused_ref.get() {
                    return Answer::KeyRefused(m.clone());
                }
                if existing_ref
                    .as_ref()
                    .is_some_and(|known| known.contains(&row.email.to_ascii_lowercase()))
                {
                    return Answer::Exists;
                }
                let answer = self.sequencers.add(tool, key_ref, row, options).await;
                if let Answer::KeyRefused(m) = &answer {
                    let _ = refused_ref.set(m.clone());
                }
                answer
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let any_accepted = answers
            .iter()
            .any(|a| matches!(a, Answer::Created | Answer::Exists));
        // A key that works is worth keeping; one that does not is not saved.
        let key_saved = req.save_key && any_accepted;
        if key_saved {
            self.store_key(caller, tool, &key).await?;
        }
        Ok(report(tool, key_saved, rows, answers))
    }
}

/// One result per row, in the order asked; `answers` is as long as `rows`.
fn report(tool: Tool, key_saved: bool, rows: Vec<(Uuid, Row)>, answers: Vec<Answer>) -> PushReport {
    let results: Vec<MailboxResult> = rows
        .into_iter()
        .zip(answers)
        .map(|((id, row), answer)| {
            let (outcome, message) = match answer {
                Answer::Created => (Outcome::Created, None),
                Answer::Exists => (Outcome::AlreadyExists, None),
                Answer::Refused(m) | Answer::KeyRefused(m) => (Outcome::Failed, Some(m)),
            };
            MailboxResult {
                mailbox_id: id,
                email: row.email,
                outcome,
                message,
            }
        })
        .collect();
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    PushReport {
        tool,
        created: count(Outcome::Created),
        already_exists: count(Outcome::AlreadyExists),
        failed: count(Outcome::Failed),
        key_saved,
        results,
    }
}
