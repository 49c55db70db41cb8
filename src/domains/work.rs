//! The durable work behind a domain: publishing its records through the
//! provider, checking them in DNS until they verify, and ramping DMARC.
//! Each handler is a plain async method; [`register`] wires them into the
//! scheduler.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::model::{DnsMode, DomainStatus, RecordState};
use super::name::DomainName;
use super::plan::{DmarcPolicy, PlannedRecord};
use super::provider::ProviderError;
use super::reconcile;
use super::service::{
    DMARC_PROGRESS, DomainError, Orchestrator, PUBLISH, PUBLISH_ATTEMPTS, VERIFY, VERIFY_ATTEMPTS,
    all_required_verified, enqueue, transition,
};
use super::verify::RecordStatus;
use crate::jobs::{JobResult, Next, Scheduler};
use crate::store::StoreError;
use crate::store::domains::{self as repo, Domain};

/// DNS checks give up this long after they began.
const GIVE_UP_AFTER: Duration = Duration::hours(48);
/// A provider that stays unreachable is tried again this often.
const PROVIDER_RETRY: Duration = Duration::minutes(5);

pub fn register(scheduler: &mut Scheduler, orchestrator: Arc<Orchestrator>) {
    let o = orchestrator.clone();
    scheduler.register(PUBLISH, PUBLISH_ATTEMPTS, move |payload| {
        let o = o.clone();
        async move { o.publish(domain_id(&payload)?).await }
    });
    let o = orchestrator.clone();
    scheduler.register(VERIFY, VERIFY_ATTEMPTS, move |payload| {
        let o = o.clone();
        async move { o.verify_job(domain_id(&payload)?).await }
    });
    let o = orchestrator;
    scheduler.register_periodic(DMARC_PROGRESS, Duration::hours(6), move |_| {
        let o = o.clone();
        async move { o.progress_dmarc().await.map_err(|e| e.to_string()) }
    });
}

fn domain_id(payload: &Value) -> Result<Uuid, String> {
    payload["domain_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| format!("job payload has no domain_id: {payload}"))
}

/// How long to wait before the next DNS check: often at first, when the
/// records usually appear, then less and less.
pub fn next_check_delay(elapsed: Duration) -> Duration {
    if elapsed < Duration::minutes(10) {
        Duration::seconds(30)
    } else if elapsed < Duration::hours(1) {
        Duration::minutes(2)
    } else if elapsed < Duration::hours(6) {
        Duration::minutes(10)
    } else {
        Duration::minutes(30)
    }
}

/// Told in the transaction that makes a domain active, so work that needs
/// an active domain (its mail host's certificate, `crate::acme`) is queued
/// with it or not at all.
pub trait OnActive: Send + Sync {
    fn activated(
        &self,
        tx: &rusqlite::Transaction<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The outcome of one DNS check of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Active,
    NotYet,
    GaveUp,
}

impl Orchestrator {
    async fn domain(&self, id: Uuid) -> Result<Option<Domain>, String> {
        self.store
            .read(move |c| repo::get(c, id, None))
            .await
            .map_err(|e| e.to_string())
    }

    /// Publishes a domain's plan as one reconcile against its zone.
    pub async fn publish(&self, id: Uuid) -> JobResult {
        let Some(d) = self.domain(id).await? else {
            return Ok(Next::Done);
        };
        if d.dns_mode != DnsMode::Cloudflare || d.status != DomainStatus::Publishing {
            return Ok(Next::Done);
        }
        let now = self.clock.now();
        match self.reconcile(&d).await {
            Ok(()) => {
                let d2 = d.clone();
                self.store
                    .write(move |tx| {
                        let positions: Vec<_> = repo::records(tx, id)?
                            .iter()
                            .enumerate()
                            .map(|(i, _)| (i, RecordState::Published, None))
                            .collect();
                        repo::set_record_states(tx, id, &positions, now)?;
                        repo::restart_checks(tx, id, now)?;
                        transition(
                            tx,
                            &d2,
                            DomainStatus::Verifying,
                            None,
                            "records published",
                            now,
                        )?;
                        enqueue(tx, VERIFY, id, now)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                self.waker.wake();
                Ok(Next::Done)
            }
            Err(e) if e.is_transient() => {
                let msg = e.to_string();
                let expired = d.checks_since.is_some_and(|s| now - s > GIVE_UP_AFTER);
                self.store
                    .write(move |tx| {
                        if expired {
                            transition(
                                tx,
                                &d,
                                DomainStatus::Failed,
                                Some(&msg),
                                "publishing kept failing for 48 hours",
                                now,
                            )
                        } else {
                            repo::set_last_error(tx, id, Some(&msg), now)
                        }
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(if expired {
                    Next::Done
                } else {
                    Next::At(now + PROVIDER_RETRY)
                })
            }
            Err(e) => {
                let msg = e.to_string();
                self.store
                    .write(move |tx| {
                        transition(
                            tx,
                            &d,
                            DomainStatus::Failed,
                            Some(&msg),
                            "publishing refused",
                            now,
                        )
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Next::Done)
            }
        }
    }

    async fn reconcile(&self, d: &Domain) -> Result<(), ProviderError> {
        let provider = self.provider(d, false).await?;
        let name = DomainName::parse(&d.domain_name).map_err(|e| ProviderError::Rejected {
            code: 0,
            message: e.0,
        })?;
        let zone = match d.cloudflare_zone_id.as_deref().filter(|z| !z.is_empty()) {
            Some(z) => provider.zone(z).await?,
            None => provider.find_zone(&name).await?,
        };
        // Checked at add time, and again here for every use: records go
        // only into the domain's own zone or a parent's.
        if !name.is_within(&zone.name) {
            return Err(ProviderError::Rejected {
                code: 0,
                message: format!(
                    "zone {} is {}, which is neither {name} nor a parent of it; remove the domain and add it again with the right cloudflare_zone_id",
                    zone.id, zone.name
                ),
            });
        }
        let (id, now, zone_id, ns) = (
            d.id,
            self.clock.now(),
            zone.id.clone(),
            zone.name_servers.clone(),
        );
        self.store
            .write(move |tx| repo::set_zone(tx, id, &zone_id, None, &ns, now))
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        let plan = self
            .plan_of(d.id)
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        let existing = provider.list_records(&zone.id).await?;
        let changes = reconcile::diff(&plan, &existing);
        if changes.is_empty() {
            return Ok(());
        }
        provider.apply(&zone.id, &changes).await
    }

    async fn plan_of(&self, id: Uuid) -> Result<Vec<PlannedRecord>, StoreError> {
        let rows = self.store.read(move |c| repo::records(c, id)).await?;
        Ok(rows.into_iter().map(|r| r.record).collect())
    }

    async fn verify_job(&self, id: Uuid) -> JobResult {
        let Some(d) = self.domain(id).await? else {
            return Ok(Next::Done);
        };
        if !matches!(
            d.status,
            DomainStatus::Verifying | DomainStatus::AwaitingDns
        ) {
            return Ok(Next::Done);
        }
        let now = self.clock.now();
        match self.check(&d).await.map_err(|e| e.to_string())? {
            Checked::Active | Checked::GaveUp => Ok(Next::Done),
            Checked::NotYet => {
                let since = d.checks_since.unwrap_or(now);
                Ok(Next::At(now + next_check_delay(now - since)))
            }
        }
    }

    /// Asks DNS about every planned record now, stores what it answered,
    /// and moves the domain to `active` (all required records verified) or
    /// `failed` (still not, 48 hours after checks began).
    pub async fn check(&self, d: &Domain) -> Result<Checked, DomainError> {
        let name = DomainName::parse(&d.domain_name).map_err(|e| DomainError::Invalid {
            field: "domain_name",
            message: e.0,
        })?;
        let id = d.id;
        let plan = self.plan_of(id).await?;
        let now = self.clock.now();
        let observed = match self.checker.check(&name, &plan).await {
            Ok(o) => o,
            Err(e) => {
                let msg = e.to_string();
                self.store
                    .write(move |tx| repo::set_last_error(tx, id, Some(&msg), now))
                    .await?;
                return self.gave_up(d, now, "DNS servers did not answer").await;
            }
        };
        let states: Vec<(usize, RecordState, Option<Vec<String>>)> = observed
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let state = match o.status {
                    RecordStatus::Verified => RecordState::Verified,
                    RecordStatus::Mismatch => RecordState::Mismatch,
                    RecordStatus::Missing => RecordState::Missing,
                };
                (i, state, Some(o.answers))
            })
            .collect();
        let purposes: Vec<_> = plan
            .iter()
            .zip(&states)
            .map(|(p, (_, s, _))| (p.purpose, *s))
            .collect();
        let done = all_required_verified(&purposes);
        let d2 = d.clone();
        let on_active = self.on_active.clone();
        self.store
            .write(move |tx| {
                repo::set_record_states(tx, id, &states, now)?;
                repo::set_last_error(tx, id, None, now)?;
                if done {
                    transition(
                        tx,
                        &d2,
                        DomainStatus::Active,
                        None,
                        "all records verified in DNS",
                        now,
                    )?;
                    if let Some(hook) = &on_active {
                        hook.activated(tx, now)?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        if done {
            return Ok(Checked::Active);
        }
        let waiting: Vec<String> = plan
            .iter()
            .zip(&purposes)
            .filter(|(_, (_, s))| *s != RecordState::Verified)
            .map(|(p, (_, s))| format!("{} {} is {}", p.record_type.as_str(), p.name, s.as_str()))
            .collect();
        self.gave_up(d, now, &waiting.join("; ")).await
    }

    async fn gave_up(
        &self,
        d: &Domain,
        now: DateTime<Utc>,
        why: &str,
    ) -> Result<Checked, DomainError> {
        let since = d.checks_since.unwrap_or(now);
        if now - since <= GIVE_UP_AFTER {
            return Ok(Checked::NotYet);
        }
        let (d, msg) = (
            d.clone(),
            format!("records not visible in DNS after 48 hours: {why}"),
        );
        self.store
            .write(move |tx| {
                transition(
                    tx,
                    &d,
                    DomainStatus::Failed,
                    Some(&msg),
                    "verification timed out",
                    now,
                )
            })
            .await?;
        Ok(Checked::GaveUp)
    }

    /// `POST /domains/{id}/verify`: checks now. A failed domain starts
    /// over: Cloudflare domains are published again, manual ones get a new
    /// 48-hour window.
    pub async fn verify_now(&self, id: Uuid, scope: Option<Uuid>) -> Result<(), DomainError> {
        let d = self.get(id, scope).await?;
        match (d.status, d.dns_mode) {
            (DomainStatus::Failed | DomainStatus::Publishing, DnsMode::Cloudflare) => {
                self.start_over(&d, DomainStatus::Publishing, PUBLISH).await
            }
            (DomainStatus::Failed, DnsMode::Manual) => {
                self.start_over(&d, DomainStatus::AwaitingDns, VERIFY)
                    .await?;
                let fresh = self.get(id, None).await?;
                self.check(&fresh).await.map(|_| ())
            }
            _ => self.check(&d).await.map(|_| ()),
        }
    }

    /// Opens a new 48-hour window in `status` and queues `job` now.
    async fn start_over(
        &self,
        d: &Domain,
        status: DomainStatus,
        job: &'static str,
    ) -> Result<(), DomainError> {
        let (d, id, now) = (d.clone(), d.id, self.clock.now());
        self.store
            .write(move |tx| {
                repo::restart_checks(tx, id, now)?;
                transition(tx, &d, status, None, "retry requested", now)?;
                enqueue(tx, job, id, now)
            })
            .await?;
        self.waker.wake();
        Ok(())
    }

    /// Moves domains that have been active at `p=none` for the configured
    /// number of days to `p=quarantine`.
    pub async fn progress_dmarc(&self) -> Result<Next, DomainError> {
        let days = self.settings.get().domains.dmarc_quarantine_after_days;
        if days == 0 {
            return Ok(Next::Done);
        }
        let cutoff = self.clock.now() - Duration::days(days.into());
        let due = self
            .store
            .read(move |c| repo::due_for_quarantine(c, cutoff))
            .await?;
        for id in due {
            let d = self.get(id, None).await?;
            let tracking = d.tracking_domain.clone();
            self.replan(
                &d,
                DmarcPolicy::Quarantine,
                tracking,
                &format!("DMARC ramp after {days} days at p=none"),
            )
            .await?;
        }
        Ok(Next::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_slow_down_over_time() {
        assert_eq!(next_check_delay(Duration::zero()), Duration::seconds(30));
        assert_eq!(
            next_check_delay(Duration::minutes(30)),
            Duration::minutes(2)
        );
        assert_eq!(next_check_delay(Duration::hours(3)), Duration::minutes(10));
        assert_eq!(next_check_delay(Duration::hours(40)), Duration::minutes(30));
    }
}
