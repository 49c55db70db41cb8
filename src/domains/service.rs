//! The orchestrator: adding a domain, showing it, changing and removing it.
//! Publishing and verification run as durable jobs (`super::work`); this
//! module holds what the API, the UI and the CLI call directly.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::dkim;
use super::model::{DnsMode, DomainStatus, RecordState};
use super::name::DomainName;
use super::ownership;
use super::plan::{self, DmarcPolicy, PlannedRecord, Purpose, Server};
use super::provider::ProviderError;
pub use super::providers::{CloudflareFactory, ProviderFactory};
use super::verify::DnsChecker;
use super::work::OnActive;
use crate::audit;
use crate::clock::SharedClock;
use crate::inboxes::sync::{MailboxSync, Refresh, SyncError};
use crate::jobs::Waker;
use crate::settings::LiveSettings;
use crate::store::domains::{self as repo, DkimKey, Domain, NewDomain, RecordRow};
use crate::store::jobs::NewJob;
use crate::store::{self, Store, StoreError};
use crate::tiers::{self, TierError};
use crate::types::ParseError;
use crate::vault::{Slot, Vault, VaultError};

pub const PUBLISH: &str = "domains.publish";
pub const VERIFY: &str = "domains.verify";
pub const DMARC_PROGRESS: &str = "domains.dmarc_progress";
/// Polling kinds reschedule themselves; these bound real failures only.
pub const PUBLISH_ATTEMPTS: u32 = 3;
pub const VERIFY_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(
        "public_ipv4: this server's public IPv4 address is not set; an admin sets it on the settings page (or PATCH /api/v1/settings, or INBOXGROVE_PUBLIC_IPV4 and a restart), then add the domain"
    )]
    NoPublicIp,
    #[error("domain not found")]
    NotFound,
    #[error(
        "this domain still has {0} mailboxes; remove them first, or pass ?force=true to remove them with it"
    )]
    HasMailboxes(i64),
    #[error("cloudflare_api_token: {0}")]
    Token(ProviderError),
    #[error("{0}")]
    Provider(ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tier(#[from] TierError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Key(#[from] dkim::KeyError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// `POST /api/v1/domains/add` (spec endpoint 1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub domain_name: DomainName,
    pub cloudflare_api_token: Option<SecretString>,
    pub cloudflare_zone_id: Option<String>,
    pub cloudflare_account_id: Option<String>,
    pub tracking_domain: Option<String>,
    pub dmarc_policy: Option<DmarcPolicy>,
}

/// `PATCH /api/v1/domains/{id}`: fields left out stay; `tracking_domain:
/// null` removes the tracking record.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPatch {
    pub dmarc_policy: Option<DmarcPolicy>,
    #[serde(default, deserialize_with = "some_nullable")]
    pub tracking_domain: Option<Option<String>>,
    /// One of the server's public addresses to send from; `null` goes back
    /// to the default (see [`super::egress`]).
    #[serde(default, deserialize_with = "some_nullable")]
    pub egress_ip: Option<Option<std::net::IpAddr>>,
}

fn some_nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A domain as the API shows it, with its record plan.
#[derive(Debug, Serialize)]
pub struct DomainView {
    pub domain_id: Uuid,
    #[serde(flatten)]
    pub domain: Domain,
    pub dns_records: Summary,
    /// Who publishes the records (this domain's token, the server's, or
    /// the person by hand) and, when not InboxGrove, why.
    pub dns_note: String,
    pub propagation_status: &'static str,
    pub estimated_ready_time: Option<DateTime<Utc>>,
    pub records: Vec<RecordRow>,
}

/// The spec's short form of the records.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub spf: Option<String>,
    pub dkim_selector: Option<String>,
    pub dkim_public_key: Option<String>,
    pub dmarc: Option<String>,
}

pub struct Orchestrator {
    pub(super) store: Store,
    pub(super) vault: Arc<Vault>,
    pub(super) clock: SharedClock,
    /// Read at use time: an admin may change them while the server runs.
    pub(super) settings: Arc<LiveSettings>,
    pub(super) providers: Arc<dyn ProviderFactory>,
    pub(super) checker: DnsChecker,
    pub(super) waker: Waker,
    /// Removing a domain revokes its mailboxes' datasource entries.
    pub(super) mailboxes: Arc<MailboxSync>,
    pub(super) on_active: Option<Arc<dyn OnActive>>,
}

impl Orchestrator {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        clock: SharedClock,
        settings: Arc<LiveSettings>,
        providers: Arc<dyn ProviderFactory>,
        waker: Waker,
        mailboxes: Arc<MailboxSync>,
    ) -> Self {
        // The DNS servers are not a run-time setting.
        let checker = DnsChecker::new(settings.get().domains.dns_servers.clone());
        Self {
            store,
            vault,
            clock,
            settings,
            providers,
            checker,
            waker,
            mailboxes,
            on_active: None,
        }
    }

    /// Tells `hook` of every domain that becomes active.
    pub fn with_on_active(mut self, hook: Arc<dyn OnActive>) -> Self {
        self.on_active = Some(hook);
        self
    }

    pub(super) fn server(&self) -> Result<Server, DomainError> {
        let now = self.settings.get();
        let s = &now.domains;
        Ok(Server {
            ipv4: s.public_ipv4.ok_or(DomainError::NoPublicIp)?,
            ipv6: s.public_ipv6,
            mail_host_pattern: s.mail_host_pattern.clone(),
            tracking_target: s.tracking_host.clone(),
        })
    }

    pub async fn add(&self, owner: Uuid, req: AddDomain) -> Result<DomainView, DomainError> {
        let server = self.server()?;
        let domain = req.domain_name.clone();
        let tracking = tracking_host(&domain, req.tracking_domain.as_deref())?;
        let name = domain.to_string();
        // Before any call to Cloudflare; checked again where it is stored.
        let (room, exists) = self
            .store
            .read(move |c| Ok((tiers::check_domains(c, owner), repo::exists(c, &name)?)))
            .await?;
        room?;
        if exists {
            return Err(StoreError::Conflict(format!(
                "{domain} is already added; each domain can be added once"
            ))
            .into());
        }
        let zone_id = req
            .cloudflare_zone_id
            .as_deref()
            .map(ownership::parse_zone_id)
            .transpose()?;
        // The token and zone are checked before anything is stored, while
        // the key (~100 ms of CPU) is made beside the round trips to
        // Cloudflare.
        let token = self.token_for_add(owner, &req).await?;
        let (checked, key) = tokio::join!(
            self.check_token(
                token.as_ref(),
                req.cloudflare_account_id.clone(),
                &domain,
                zone_id.as_deref()
            ),
            dkim::generate()
        );
        checked?;
        let key = key?;
        let now = self.clock.now();
        let (domain_id, key_id) = (Uuid::new_v4(), Uuid::new_v4());
        let key_row = key_id.to_string();
        let dkim = DkimKey {
            id: key_id,
            selector: dkim::selector_for(now),
            public_key: key.public_b64.clone(),
            sealed_private_key: self.vault.seal(
                Slot {
                    table: "dkim_keys",
                    column: "private_key",
                    row_id: &key_row,
                },
                key.private_pem.expose_secret().as_bytes(),
            ),
        };
        let domain_row = domain_id.to_string();
        let sealed_token = req.cloudflare_api_token.as_ref().map(|t| {
            self.vault.seal(
                Slot {
                    table: "domains",
                    column: "cloudflare_api_token",
                    row_id: &domain_row,
                },
                t.expose_secret().as_bytes(),
            )
        });
        let dmarc = req.dmarc_policy.unwrap_or(DmarcPolicy::None);
        let records = plan::plan(
            &server,
            &plan::Inputs {
                domain: &domain,
                selector: &dkim.selector,
                dkim_public_b64: &dkim.public_key,
                dmarc,
                tracking_domain: tracking.as_deref(),
            },
        );
        let (mode, status, first_job) = match token {
            Some(_) => (DnsMode::Cloudflare, DomainStatus::Publishing, PUBLISH),
            None => (DnsMode::Manual, DomainStatus::AwaitingDns, VERIFY),
        };
        let spf = planned(&records, Purpose::Spf).unwrap_or_default();
        let account_id = req.cloudflare_account_id.clone();
        let name = domain.to_string();
        self.store
            .write(move |tx| {
                // Two adds at the limit: the writer runs one after the other.
                tiers::check_domains(tx, owner)?;
                repo::insert(
                    tx,
                    &NewDomain {
                        id: domain_id,
                        user_id: owner,
                        domain_name: &name,
                        status,
                        dns_mode: mode,
                        cloudflare_zone_id: zone_id.as_deref(),
                        cloudflare_account_id: account_id.as_deref(),
                        sealed_token: sealed_token.as_deref(),
                        tracking_domain: tracking.as_deref(),
                        spf_record: &spf,
                        dmarc_policy: dmarc,
                    },
                    now,
                )?;
                repo::insert_dkim_key(tx, domain_id, &dkim, now)?;
                repo::replace_records(tx, domain_id, &records)?;
                enqueue(tx, first_job, domain_id, now)?;
                Ok::<_, DomainError>(())
            })
            .await?;
        self.waker.wake();
        // Nothing may log in under a name added again: clear whatever an
        // interrupted removal left.
        self.mailboxes
            .refresh(Refresh::Domain(domain.to_string()))
            .await?;
        self.view(domain_id, None).await
    }

    pub async fn get(&self, id: Uuid, scope: Option<Uuid>) -> Result<Domain, DomainError> {
        self.store
            .read(move |c| repo::get(c, id, scope))
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn view(&self, id: Uuid, scope: Option<Uuid>) -> Result<DomainView, DomainError> {
        let domain = self.get(id, scope).await?;
        let (records, key) = self
            .store
            .read(move |c| Ok((repo::records(c, id)?, repo::active_dkim_key(c, id)?)))
            .await?;
        let owner_may = ownership::owner_may_use_server_token(&self.store, domain.user_id).await?;
        let server_token = self.settings.get().domains.cloudflare_api_token.is_some();
        let dns_note = ownership::dns_note(&domain, owner_may, server_token);
        Ok(self.assemble(domain, records, key, dns_note))
    }

    pub async fn list(&self, scope: Option<Uuid>) -> Result<Vec<DomainView>, DomainError> {
        let domains = self.store.read(move |c| repo::list(c, scope)).await?;
        let mut out = Vec::with_capacity(domains.len());
        for d in domains {
            out.push(self.view(d.id, None).await?);
        }
        Ok(out)
    }

    fn assemble(
        &self,
        domain: Domain,
        records: Vec<RecordRow>,
        key: Option<DkimKey>,
        dns_note: String,
    ) -> DomainView {
        let plan: Vec<PlannedRecord> = records.iter().map(|r| r.record.clone()).collect();
        let propagation_status = match domain.status {
            DomainStatus::Active => "verified",
            DomainStatus::Failed => "failed",
            DomainStatus::AwaitingDns => "awaiting_dns",
            _ => "checking",
        };
        let estimated_ready_time = match domain.status {
            DomainStatus::Pending | DomainStatus::Publishing | DomainStatus::Verifying => {
                Some(domain.updated_at + Duration::minutes(2))
            }
            _ => None,
        };
        DomainView {
            domain_id: domain.id,
            dns_records: Summary {
                spf: planned(&plan, Purpose::Spf),
                dkim_selector: key.as_ref().map(|k| k.selector.clone()),
                dkim_public_key: planned(&plan, Purpose::Dkim),
                dmarc: planned(&plan, Purpose::Dmarc),
            },
            dns_note,
            propagation_status,
            estimated_ready_time,
            records,
            domain,
        }
    }

    /// Changes the DMARC policy or tracking host. The plan is rebuilt and
    /// goes through publishing (or awaits the person's DNS edit) again.
    pub async fn update(
        &self,
        id: Uuid,
        scope: Option<Uuid>,
        patch: DomainPatch,
    ) -> Result<DomainView, DomainError> {
        let domain = self.get(id, scope).await?;
        if let Some(ip) = patch.egress_ip {
            self.set_egress_ip(id, scope, ip).await?;
            // The address changes no record (SPF lists every public one).
            if patch.dmarc_policy.is_none() && patch.tracking_domain.is_none() {
                return self.view(id, None).await;
            }
        }
        let name = DomainName::parse(&domain.domain_name).map_err(|e| DomainError::Invalid {
            field: "domain_name",
            message: e.0,
        })?;
        let dmarc = patch.dmarc_policy.unwrap_or(domain.dmarc_policy);
        let tracking = match patch.tracking_domain {
            Some(t) => tracking_host(&name, t.as_deref())?,
            None => domain.tracking_domain.clone(),
        };
        self.replan(&domain, dmarc, tracking, "changed by user")
            .await?;
        self.view(id, None).await
    }

    /// Rebuilds a domain's plan with `dmarc` and `tracking`, and sends it
    /// through publishing or manual verification again.
    pub(super) async fn replan(
        &self,
        domain: &Domain,
        dmarc: DmarcPolicy,
        tracking: Option<String>,
        reason: &str,
    ) -> Result<(), DomainError> {
        let server = self.server()?;
        let name = DomainName::parse(&domain.domain_name).map_err(|e| DomainError::Invalid {
            field: "domain_name",
            message: e.0,
        })?;
        let id = domain.id;
        let key = self
            .store
            .read(move |c| repo::active_dkim_key(c, id))
            .await?
            .ok_or(DomainError::NotFound)?;
        let records = plan::plan(
            &server,
            &plan::Inputs {
                domain: &name,
                selector: &key.selector,
                dkim_public_b64: &key.public_key,
                dmarc,
                tracking_domain: tracking.as_deref(),
            },
        );
        let (status, job) = match domain.dns_mode {
            DnsMode::Cloudflare => (DomainStatus::Publishing, PUBLISH),
            DnsMode::Manual => (DomainStatus::AwaitingDns, VERIFY),
        };
        let now = self.clock.now();
        let (d, reason) = (domain.clone(), reason.to_owned());
        self.store
            .write(move |tx| {
                repo::set_policy(tx, id, dmarc, tracking.as_deref(), now)?;
                repo::replace_records(tx, id, &records)?;
                repo::restart_checks(tx, id, now)?;
                transition(tx, &d, status, None, &reason, now)?;
                enqueue(tx, job, id, now)
            })
            .await?;
        self.waker.wake();
        Ok(())
    }

    /// Removes a domain. With `remove_records`, the records InboxGrove
    /// created at Cloudflare are deleted first; if that fails, nothing is
    /// removed.
    pub async fn remove(
        &self,
        id: Uuid,
        scope: Option<Uuid>,
        force: bool,
        remove_records: bool,
    ) -> Result<(), DomainError> {
        let domain = self.get(id, scope).await?;
        let name = domain.domain_name.clone();
        let mailboxes = self.store.read(move |c| repo::mailbox_count(c, id)).await?;
        if mailboxes > 0 && !force {
            return Err(DomainError::HasMailboxes(mailboxes));
        }
        if remove_records && domain.dns_mode == DnsMode::Cloudflare {
            // An admin may always take records back with the server's token.
            self.unpublish(&domain, scope.is_none())
                .await
                .map_err(DomainError::Provider)?;
        }
        let now = self.clock.now();
        self.store
            .write(move |tx| {
                store::audit::insert(
                    tx,
                    &audit::row(status_entry(&domain, "removed", "removed by user"), now),
                )?;
                repo::delete(tx, id)
            })
            .await?;
        self.mailboxes.refresh(Refresh::Domain(name)).await?;
        Ok(())
    }
}

fn planned(records: &[PlannedRecord], purpose: Purpose) -> Option<String> {
    records
        .iter()
        .find(|r| r.purpose == purpose)
        .map(|r| r.content.clone())
}

/// A tracking host must be a name inside the sending domain, so its link
/// domain stays aligned with From (see the DNS conventions fact sheet).
fn tracking_host(domain: &DomainName, raw: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    let invalid = |message: String| DomainError::Invalid {
        field: "tracking_domain",
        message,
    };
    let host = DomainName::parse(raw).map_err(|ParseError(m)| invalid(m))?;
    if !host.as_str().ends_with(&format!(".{domain}")) {
        return Err(invalid(format!(
            "'{host}' is not inside {domain}; use a subdomain such as track.{domain}"
        )));
    }
    Ok(Some(host.to_string()))
}

pub(super) fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    kind: &'static str,
    domain: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let key = format!("{kind}:{domain}");
    let max_attempts = if kind == PUBLISH {
        PUBLISH_ATTEMPTS
    } else {
        VERIFY_ATTEMPTS
    };
    store::jobs::insert(
        tx,
        &NewJob {
            kind,
            payload: &serde_json::json!({ "domain_id": domain }),
            run_at: now,
            max_attempts,
            unique_key: Some(&key),
        },
        now,
    )?;
    Ok(())
}

fn status_entry(d: &Domain, to: &str, reason: &str) -> audit::Entry {
    let mut metadata = serde_json::Map::new();
    metadata.insert("domain".into(), d.domain_name.clone().into());
    metadata.insert("from".into(), d.status.as_str().into());
    metadata.insert("to".into(), to.into());
    metadata.insert("reason".into(), reason.into());
    audit::Entry {
        user_id: Some(d.user_id),
        action: "domain.status".into(),
        resource_type: Some("domain".into()),
        resource_id: Some(d.id.to_string()),
        success: to != DomainStatus::Failed.as_str(),
        metadata,
        ..Default::default()
    }
}

/// Moves `d` to `to` and writes the audit row in the same transaction.
/// Staying in the same status writes nothing.
pub(super) fn transition(
    tx: &rusqlite::Transaction<'_>,
    d: &Domain,
    to: DomainStatus,
    error: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let before = repo::set_status(tx, d.id, to, error, now)?;
    if before != to {
        let d = Domain {
            status: before,
            ..d.clone()
        };
        store::audit::insert(tx, &audit::row(status_entry(&d, to.as_str(), reason), now))?;
    }
    Ok(())
}

/// Whether the records required for `active` are all verified. A tracking
/// CNAME helps link tracking but does not gate sending.
pub(super) fn all_required_verified(states: &[(Purpose, RecordState)]) -> bool {
    states
        .iter()
        .filter(|(p, _)| *p != Purpose::Tracking)
        .all(|(_, s)| *s == RecordState::Verified)
}
