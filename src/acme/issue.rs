//! One issuing run: which names are wanted and how each is proven, the
//! bundles they go into, an order for each bundle that is due, and the
//! results kept, installed and reloaded.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use secrecy::ExposeSecret;

use super::challenge::Proof;
use super::client::Issued;
use super::{Acme, AcmeError, jobs, plan};
use crate::domains::model::{DnsMode, DomainStatus};
use crate::domains::name::DomainName;
use crate::jobs::Next;
use crate::store::certificates::{self as repo, BundleRow};
use crate::store::domains::{self as domains_repo, Domain};
use crate::tls::{Bundle, Manifest};
use crate::vault::Slot;

/// Renewal starts this long before expiry (issue 13: 30 days) …
const RENEW_BEFORE: Duration = Duration::days(30);
/// … minus up to this much, drawn per certificate, so a fleet of
/// appliances does not ask the CA at the same moment.
const JITTER: Duration = Duration::hours(12);

fn key_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "certificates",
        column: "private_key",
        row_id: id,
    }
}

impl Acme {
    /// The `acme.issue` job: orders every bundle that is due (`force`:
    /// every bundle with names). A failed order leaves the bundle's
    /// certificate in place and its error on the bundle, and fails the
    /// job so the scheduler tries again.
    pub async fn issue(&self, force: bool) -> Result<Next, AcmeError> {
        let _one = self.running.lock().await;
        let (bundles, proofs) = self.plan().await?;
        let mut failures = Vec::new();
        for b in bundles
            .iter()
            .filter(|b| !b.names.is_empty() && (force || plan::due(b, self.clock.now())))
        {
            match self.ca.order(&b.names, &proofs, &self.responder).await {
                Ok(issued) => self.keep(b, issued).await?,
                Err(e) => {
                    let message = crate::remote::with_causes(&e);
                    let (id, now) = (b.id.clone(), self.clock.now());
                    tracing::warn!(bundle = %b.id, error = %message, "certificate order failed");
                    let m = message.clone();
                    self.store
                        .write(move |tx| repo::set_failed(tx, &id, &m, now))
                        .await?;
                    failures.push(format!("{}: {message}", b.id));
                }
            }
        }
        // What an earlier run kept but could not write into tls_dir is
        // written now.
        self.restore().await?;
        self.reload_pending().await?;
        if !failures.is_empty() {
            return Err(AcmeError::Orders(failures.join("; ")));
        }
        // A domain that became active while this ran found this job
        // running and queued nothing: take its name in a moment.
        let (bundles, _) = self.plan().await?;
        let now = self.clock.now();
        Ok(if bundles.iter().any(|b| plan::due(b, now)) {
            Next::At(now + jobs::DEBOUNCE)
        } else {
            Next::Done
        })
    }

    /// The `acme.check` job: installs what `tls_dir` lacks, tells the
    /// services of what they have not taken yet, and queues an issuing run
    /// if one is due.
    pub async fn check(&self) -> Result<(), AcmeError> {
        let (bundles, _) = self.plan().await?;
        self.restore().await?;
        self.reload_pending().await?;
        let now = self.clock.now();
        if bundles.iter().any(|b| plan::due(b, now)) {
            self.store
                .write(move |tx| jobs::enqueue(tx, now, false, now))
                .await?;
            self.waker.wake();
        }
        Ok(())
    }

    /// At server start: rewrites `tls_dir` from the database where it lacks
    /// a certificate, and queues an issuing run now, which tells the
    /// services of those and orders what changed while the server was
    /// down (another `public_url`, a domain activated from the console).
    pub async fn start(&self) -> Result<usize, AcmeError> {
        let restored = self.restore().await?;
        let now = self.clock.now();
        self.store
            .write(move |tx| jobs::enqueue(tx, now, false, now))
            .await?;
        self.waker.wake();
        Ok(restored)
    }

    /// Writes into `tls_dir` every certificate the store holds that is not
    /// there as stored (a data dir restored from backup, a new `tls_dir`),
    /// and marks it to be reloaded. A bundle that cannot be written is
    /// logged and left for the next run; the others go on.
    pub async fn restore(&self) -> Result<usize, AcmeError> {
        let rows = self.store.read(repo::list).await?;
        let manifest = self.manifest();
        let mut restored = 0;
        for row in rows {
            let (Some(chain), Some(bundle)) = (row.chain_pem.clone(), installed(&row)) else {
                continue;
            };
            let on_disk = manifest.bundles.contains(&bundle)
                && bundle.chain_path(&self.tls_dir).exists()
                && bundle.key_path(&self.tls_dir).exists();
            if on_disk {
                continue;
            }
            let id = row.id.clone();
            let Some(sealed) = self.store.read(move |c| repo::sealed_key(c, &id)).await? else {
                continue;
            };
            let written = self
                .vault
                .open(key_slot(&row.id), &sealed)
                .map_err(AcmeError::from)
                .and_then(|key| {
                    let key = String::from_utf8_lossy(key.expose_secret()).into_owned();
                    self.install(bundle, &chain, &key)
                });
            if let Err(e) = written {
                tracing::error!(bundle = %row.id, error = %e, "cannot write the certificate into tls_dir");
                continue;
            }
            let id = row.id.clone();
            self.store
                .write(move |tx| repo::mark_reload(tx, &id))
                .await?;
            restored += 1;
        }
        Ok(restored)
    }

    /// The manifest of `tls_dir`; an unreadable one counts as empty, so
    /// every bundle is written again from the database, which holds them
    /// all.
    fn manifest(&self) -> Manifest {
        Manifest::load(&self.tls_dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "tls_dir's manifest is unreadable; writing it anew");
            Manifest::default()
        })
    }

    /// The wanted names and their proofs, and the bundles as planned from
    /// them (stored, so the API shows what each bundle will cover).
    async fn plan(&self) -> Result<(Vec<BundleRow>, HashMap<String, Proof>), AcmeError> {
        let domains = self.store.read(|c| domains_repo::list(c, None)).await?;
        let live = self.live.get();
        let pattern = &live.domains.mail_host_pattern;
        let mut proofs = HashMap::new();
        let mut mail = Vec::new();
        for d in domains.iter().filter(|d| in_service(d)) {
            let host = crate::inboxes::mail_host(pattern, &d.domain_name);
            // A TXT record can only go into the domain's own zone.
            let inside = match (DomainName::parse(&host), DomainName::parse(&d.domain_name)) {
                (Ok(h), Ok(n)) => h.is_within(n.as_str()),
                _ => false,
            };
            let proof = if d.dns_mode == DnsMode::Cloudflare && inside {
                Proof::Dns01(d.id)
            } else {
                Proof::Http01
            };
            proofs.insert(host.clone(), proof);
            mail.push(host);
        }
        if let Some(admin) = &self.admin_host {
            let proof = if live.domains.cloudflare_api_token.is_some() {
                Proof::Dns01Server
            } else {
                Proof::Http01
            };
            proofs.insert(admin.clone(), proof);
        }
        let existing = self.store.read(repo::list).await?;
        let planned = plan::assign(&existing, self.admin_host.as_deref(), &mail);
        let now = self.clock.now();
        let bundles = self
            .store
            .write(move |tx| {
                for (id, names) in &planned {
                    repo::set_names(tx, id, names, now)?;
                }
                repo::list(tx)
            })
            .await?;
        Ok((bundles, proofs))
    }

    /// Keeps a new certificate (its key sealed) and installs it.
    async fn keep(&self, b: &BundleRow, issued: Issued) -> Result<(), AcmeError> {
        let now = self.clock.now();
        let key_pem = issued.key_pem.expose_secret();
        let sealed = self.vault.seal(key_slot(&b.id), key_pem.as_bytes());
        let renew_after = self.renew_after(now, issued.not_after);
        let (id, names, chain) = (b.id.clone(), b.names.clone(), issued.chain_pem.clone());
        let serial = issued.serial.clone();
        let not_after = issued.not_after;
        self.store
            .write(move |tx| {
                let i = repo::Issued {
                    names: &names,
                    chain_pem: &chain,
                    sealed_key: &sealed,
                    serial: &serial,
                    not_after,
                    renew_after,
                };
                repo::set_issued(tx, &id, &i, now)
            })
            .await?;
        let bundle = Bundle {
            id: b.id.clone(),
            names: b.names.clone(),
            not_after: issued.not_after,
            issued_at: now,
        };
        self.install(bundle, &issued.chain_pem, key_pem)?;
        tracing::info!(bundle = %b.id, names = b.names.len(), serial = %issued.serial,
            not_after = %issued.not_after, "certificate installed");
        Ok(())
    }

    /// Writes one bundle into `tls_dir`. One at a time: each install
    /// rewrites the whole manifest.
    fn install(&self, bundle: Bundle, chain_pem: &str, key_pem: &str) -> Result<(), AcmeError> {
        let _one = self.installing.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self
            .manifest()
            .install(&self.tls_dir, bundle, chain_pem, key_pem)?)
    }

    /// `not_after − 30 days − jitter`; for a certificate that lives less
    /// than 90 days, after two thirds of its life, so a short-lived one is
    /// not renewed at once, forever.
    fn renew_after(&self, now: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
        let left = not_after - now;
        let before = RENEW_BEFORE.min(left / 3);
        let jitter_max = JITTER.min(before / 4).num_seconds().max(0);
        let jitter = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .gen_range(0..=jitter_max);
        not_after - before - Duration::seconds(jitter)
    }

    /// Tells the services of every installed certificate they have not
    /// taken yet; on success they are no longer pending.
    async fn reload_pending(&self) -> Result<(), AcmeError> {
        let rows = self.store.read(repo::list).await?;
        let pending: Vec<Bundle> = rows
            .iter()
            .filter(|r| r.needs_reload)
            .filter_map(installed)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        self.reload
            .reload(&pending)
            .await
            .map_err(AcmeError::Reload)?;
        let ids: Vec<String> = pending.into_iter().map(|b| b.id).collect();
        self.store
            .write(move |tx| ids.iter().try_for_each(|id| repo::set_reloaded(tx, id)))
            .await?;
        Ok(())
    }
}

/// Whether a domain's mail host serves mail: the domain is active, or was
/// and is publishing a changed plan (a DMARC ramp, a new tracking domain),
/// which keeps its mail host. A failed domain leaves at the next renewal.
fn in_service(d: &Domain) -> bool {
    d.status == DomainStatus::Active
        || (d.activated_at.is_some() && d.status != DomainStatus::Failed)
}

/// The bundle as installed in `tls_dir`, if it has a certificate.
fn installed(row: &BundleRow) -> Option<Bundle> {
    Some(Bundle {
        id: row.id.clone(),
        names: row.issued_names.clone(),
        not_after: row.not_after?,
        issued_at: row.issued_at?,
    })
}
