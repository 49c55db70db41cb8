//! Certificates from an ACME CA (RFC 8555; issue 13, point 4) for the
//! admin host and every active domain's mail host, when `certificates =
//! acme`. Names are packed into bundles of up to [`crate::tls::MAX_NAMES`]
//! ([`plan`]), each one certificate, proven per name by HTTP-01 or DNS-01
//! ([`challenge`]), ordered through instant-acme ([`client`]), kept in the
//! `certificates` table (the key sealed) and installed in `tls_dir` through
//! [`crate::tls::Manifest`], after which the injected [`Reload`] tells
//! KumoMTA, Dovecot and the public listener.
//!
//! Durable jobs do the work ([`jobs`]): `acme.issue` orders what is due
//! (retried with backoff, each failure recorded on its bundle), and the
//! periodic `acme.check` queues it when a renewal time has come.

pub mod challenge;
mod client;
mod issue;
pub mod jobs;
pub mod plan;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;

use crate::clock::SharedClock;
use crate::config::{AcmeSettings, Settings};
use crate::domains::name::DomainName;
use crate::domains::provider::ProviderError;
use crate::domains::service::Orchestrator;
use crate::jobs::{Scheduler, Waker};
use crate::settings::LiveSettings;
use crate::store::certificates::{self as repo, BundleRow};
use crate::store::{Store, StoreError};
use crate::tls::{Reload, TlsError};
use crate::vault::{Vault, VaultError};

use self::challenge::{Http01, Responder};
use self::client::Ca;

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME CA: {0}")]
    Ca(#[from] instant_acme::Error),
    #[error("the ACME CA refused: {0}")]
    Refused(String),
    #[error("certificate orders failed: {0}")]
    Orders(String),
    #[error("the ACME account: {0}")]
    Account(String),
    #[error("DNS-01 challenge record: {0}")]
    Dns(#[from] ProviderError),
    #[error("{0}")]
    Name(String),
    #[error("cannot make the certificate request: {0}")]
    Csr(String),
    #[error("the CA's certificate is unreadable: {0}")]
    Certificate(String),
    #[error("telling the services to reload: {0}")]
    Reload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The ACME client of this server.
pub struct Acme {
    store: Store,
    vault: Arc<Vault>,
    clock: SharedClock,
    live: Arc<LiveSettings>,
    ca: Ca,
    responder: Responder,
    tls_dir: PathBuf,
    admin_host: Option<String>,
    reload: Arc<dyn Reload>,
    /// The scheduler's seeded RNG, for the renewal jitter.
    rng: Arc<Mutex<StdRng>>,
    waker: Waker,
    /// One issuing run at a time (the due and the forced job may overlap).
    running: tokio::sync::Mutex<()>,
    /// One write of `tls_dir` at a time.
    installing: Mutex<()>,
}

/// The parts of the server the ACME client works with.
pub struct Parts {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub clock: SharedClock,
    pub live: Arc<LiveSettings>,
    pub domains: Arc<Orchestrator>,
    pub reload: Arc<dyn Reload>,
    pub rng: Arc<Mutex<StdRng>>,
    pub waker: Waker,
}

impl Acme {
    fn new(acme: &AcmeSettings, settings: &Settings, p: Parts) -> Self {
        Self {
            ca: Ca::new(
                acme.clone(),
                p.store.clone(),
                p.vault.clone(),
                p.clock.clone(),
            ),
            responder: Responder {
                http: Http01::default(),
                store: p.store.clone(),
                domains: p.domains,
            },
            store: p.store,
            vault: p.vault,
            clock: p.clock,
            live: p.live,
            tls_dir: settings.tls_dir.clone(),
            admin_host: settings.public_url.as_deref().and_then(admin_host),
            reload: p.reload,
            rng: p.rng,
            waker: p.waker,
            running: tokio::sync::Mutex::new(()),
            installing: Mutex::new(()),
        }
    }

    /// The client of a server that runs with `certificates = acme`: its
    /// jobs registered, `tls_dir` rewritten from the database where it
    /// lacks a certificate, a first run queued ([`Acme::start`]).
    pub async fn serve(
        acme: &AcmeSettings,
        settings: &Settings,
        parts: Parts,
        scheduler: &mut Scheduler,
    ) -> Arc<Self> {
        let a = Arc::new(Self::new(acme, settings, parts));
        jobs::register(scheduler, a.clone());
        match a.start().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(n, "certificates rewritten into tls_dir from the database"),
            // The queued check tries again; serving goes on meanwhile.
            Err(e) => tracing::error!(error = %e, "cannot rewrite tls_dir from the database"),
        }
        a
    }

    /// The HTTP-01 responder's routes, served on `acme_http_listen`.
    pub fn http01(&self) -> axum::Router {
        self.responder.http.router()
    }

    pub fn directory_url(&self) -> &str {
        self.ca.directory_url()
    }

    /// `POST /api/v1/certificates/renew`: every bundle is ordered again
    /// now; returns the job's id.
    pub async fn renew_now(&self) -> Result<uuid::Uuid, AcmeError> {
        let now = self.clock.now();
        let id = self
            .store
            .write(move |tx| jobs::enqueue(tx, now, true, now))
            .await?;
        self.waker.wake();
        Ok(id)
    }
}

/// Every bundle the store holds, for the API (also when certificates are
/// self-signed: then there are none, or those of an earlier `acme` run).
pub async fn list(store: &Store) -> Result<Vec<BundleRow>, StoreError> {
    store.read(repo::list).await
}

/// The admin host: the host of `public_url` when it is a DNS name (no IP
/// address, no single label such as `localhost`: no CA issues for those).
fn admin_host(public_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(public_url).ok()?;
    // `domain()` is None for an IP address.
    DomainName::parse(url.domain()?)
        .ok()
        .filter(|n| n.as_str().contains('.'))
        .map(|n| n.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_host_is_a_dns_name_of_the_public_url() {
        assert_eq!(
            admin_host("https://Admin.Example.com:8443/ui").as_deref(),
            Some("admin.example.com")
        );
        assert_eq!(admin_host("http://203.0.113.7:8080"), None);
        assert_eq!(admin_host("http://[2001:db8::1]/"), None);
        assert_eq!(admin_host("http://localhost:8080"), None);
        assert_eq!(admin_host("not a url"), None);
    }
}
