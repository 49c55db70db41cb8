//! The engine: its parts, its jobs and how it reaches the servers. Each
//! job is a plain async method ([`plan`](super::plan),
//! [`send`](super::send), [`engage`](super::engage)); [`register`] wires
//! them into the scheduler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use super::smtp::Submitter;
use super::tls::Trust;
use super::{Endpoint, MemberId};
use crate::clock::SharedClock;
use crate::config::{HostPort, Settings as ServerSettings};
use crate::inboxes::sync::MailboxSync;
use crate::jobs::{Next, Scheduler, Waker};
use crate::settings::LiveSettings;
use crate::store::jobs::NewJob;
use crate::store::{self, Store, StoreError};
use crate::tls::mail::{self, Source};
use crate::vault::Vault;

pub const TICK: &str = "warmup.tick";
pub const SEND: &str = "warmup.send";
pub const ENGAGE: &str = "warmup.engage";
/// How often the engine looks for days to plan and mailboxes to graduate.
pub const TICK_EVERY: Duration = Duration::minutes(15);
const SEND_ATTEMPTS: u32 = 3;
const ENGAGE_ATTEMPTS: u32 = 3;
/// The folder the receiving side files warmup mail into.
pub const FOLDER: &str = "Warmup";

#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A peer's server refused the login or could not be reached at add
    /// time: what to fix, never the password.
    #[error("{0}")]
    Unreachable(String),
    /// A stored password that does not open: a fault of this server (a
    /// restored database without its key), never the person's.
    #[error("{0}")]
    Sealed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

/// The appliance's own submission and IMAP services, as the engine
/// reaches them.
#[derive(Debug, Clone)]
pub struct Local {
    pub submission: Endpoint,
    pub imap: Endpoint,
}

impl Local {
    fn endpoint(hp: &HostPort, tls_name: &str, implicit_tls: bool) -> Endpoint {
        Endpoint {
            host: hp.host.clone(),
            port: hp.port,
            tls_name: tls_name.to_owned(),
            implicit_tls,
        }
    }
}

/// The engine's connection settings from the server's: where the mail
/// services listen, the name their certificate carries and what to trust.
/// The self-signed pair is trusted as itself and carries `localhost`.
pub fn connections(settings: &ServerSettings) -> (Local, Vec<PathBuf>) {
    let hostname = settings.doctor.mail_hostname();
    let manifest = crate::tls::Manifest::load(&settings.tls_dir).unwrap_or_default();
    let served = mail::default_cert(settings, &manifest, &hostname);
    let mut trust = Vec::new();
    let default_name = match served.source {
        Source::SelfSigned => {
            // The pair `dovecot-config` makes, made here first when the
            // server starts before it (the same names), so the engine
            // trusts what Dovecot and KumoMTA will serve.
            let pair = crate::dovecot::tls::default_paths(&settings.tls_dir);
            let names = crate::dovecot::tls::SELF_SIGNED_NAMES.map(str::to_owned);
            if let Err(e) = crate::dovecot::tls::ensure_self_signed(&pair, &names) {
                tracing::warn!(error = %e, "warmup: no self-signed pair to trust");
            }
            trust.push(served.cert);
            crate::dovecot::tls::SELF_SIGNED_NAMES[0].to_owned()
        }
        Source::Configured => {
            trust.push(served.cert);
            hostname
        }
        // The bundle KumoMTA presents is the host name's, or else the one
        // with the most names: then one of its own names.
        Source::Bundle(b) if !b.covers(&hostname) => b.names.first().cloned().unwrap_or(hostname),
        Source::Bundle(_) => hostname,
    };
    trust.extend(settings.warmup.ca_file.clone());
    let name = settings.warmup.tls_name.clone().unwrap_or(default_name);
    let local = Local {
        // SMTPS only on 465, STARTTLS elsewhere (587); IMAP's STARTTLS only
        // on 143, TLS from the start elsewhere (993): the usual ports of
        // RFC 8314 decide, any other is the TLS-first variant for IMAP.
        submission: Local::endpoint(
            &settings.warmup.submission,
            &name,
            settings.warmup.submission.port == 465,
        ),
        imap: Local::endpoint(
            &settings.warmup.imap,
            &name,
            settings.warmup.imap.port != 143,
        ),
    };
    (local, trust)
}

pub struct Engine {
    pub(super) store: Store,
    pub(super) vault: Arc<Vault>,
    pub(super) clock: SharedClock,
    pub(super) live: Arc<LiveSettings>,
    pub(super) sync: Arc<MailboxSync>,
    pub(super) submitter: Submitter,
    pub(super) trust: Trust,
    pub(super) local: Local,
    pub(super) rng: Arc<Mutex<StdRng>>,
    pub(super) waker: Waker,
}

pub struct Parts {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub clock: SharedClock,
    pub live: Arc<LiveSettings>,
    pub sync: Arc<MailboxSync>,
    pub local: Local,
    pub trust: Vec<PathBuf>,
    /// EHLO name of the engine's SMTP sessions.
    pub helo: String,
    pub rng: Arc<Mutex<StdRng>>,
    pub waker: Waker,
}

impl Engine {
    pub fn new(p: Parts) -> Result<Self, WarmupError> {
        let trust = Trust::new(&p.trust)?;
        Ok(Self {
            submitter: Submitter::new(trust.clone(), p.helo),
            trust,
            store: p.store,
            vault: p.vault,
            clock: p.clock,
            live: p.live,
            sync: p.sync,
            local: p.local,
            rng: p.rng,
            waker: p.waker,
        })
    }

    /// Runs `f` with the engine's seeded RNG.
    pub(super) fn with_rng<R>(&self, f: impl FnOnce(&mut StdRng) -> R) -> R {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut rng)
    }

    /// A message row for a job; a fault is the job's error.
    pub(super) async fn message(
        &self,
        id: Uuid,
    ) -> Result<Option<store::warmup::messages::Message>, String> {
        self.store
            .read(move |c| store::warmup::messages::get(c, id))
            .await
            .map_err(fault)
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The server's sending-day time zone (a mailbox's own overrides it).
    pub(super) fn server_tz(&self) -> chrono_tz::Tz {
        self.live.get().timezone
    }
}

pub fn register(scheduler: &mut Scheduler, engine: Arc<Engine>) {
    let e = engine.clone();
    scheduler.register_periodic(TICK, TICK_EVERY, move |_| {
        let e = e.clone();
        async move {
            e.tick().await.map_err(|err| err.to_string())?;
            Ok(Next::Done)
        }
    });
    let e = engine.clone();
    scheduler.register(SEND, SEND_ATTEMPTS, move |payload| {
        let e = e.clone();
        async move { e.send_job(message_id(&payload)?).await }
    });
    let e = engine;
    scheduler.register(ENGAGE, ENGAGE_ATTEMPTS, move |payload| {
        let e = e.clone();
        async move { e.engage_job(message_id(&payload)?).await }
    });
}

/// A job's error text: what went wrong, never a secret.
pub(super) fn fault(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn message_id(payload: &Value) -> Result<Uuid, String> {
    payload["message"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| format!("job payload has no message: {payload}"))
}

/// Queues the send or engage job of a message in the caller's
/// transaction, so a planned message always has its job.
pub(super) fn enqueue(
    tx: &rusqlite::Connection,
    kind: &'static str,
    message: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let key = format!("{kind}:{message}");
    store::jobs::insert(
        tx,
        &NewJob {
            kind,
            payload: &json!({ "message": message.to_string() }),
            run_at: at,
            max_attempts: if kind == SEND {
                SEND_ATTEMPTS
            } else {
                ENGAGE_ATTEMPTS
            },
            unique_key: Some(&key),
        },
        now,
    )?;
    Ok(())
}

/// Which day row a member's message counts in: an enrolled mailbox's own.
pub(super) fn mailbox_of(m: MemberId) -> Option<Uuid> {
    match m {
        MemberId::Mailbox(id) => Some(id),
        MemberId::Peer(_) => None,
    }
}
