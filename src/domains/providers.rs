//! The orchestrator's side of the DNS provider: which token a domain's
//! calls use (its own, sealed, or the server's), checking a token before
//! anything is stored, and removing the records InboxGrove created.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::cloudflare::{CloudflareLimiter, CloudflareProvider};
use super::name::DomainName;
use super::ownership;
use super::provider::{ChangeSet, DnsProvider, ExistingRecord, MANAGED_COMMENT, ProviderError};
use super::service::{DomainError, Orchestrator};
use crate::remote::RetryPolicy;
use crate::store::domains::{self as repo, Domain};
use crate::vault::Slot;

/// Builds DNS-provider clients for a token; the real one talks to
/// Cloudflare's API at the configured base URL.
pub trait ProviderFactory: Send + Sync {
    fn cloudflare(
        &self,
        token: SecretString,
        account_id: Option<String>,
    ) -> Result<Box<dyn DnsProvider>, ProviderError>;
}

/// The real factory: Cloudflare's v4 API at `base_url`, every client
/// sharing one process-wide request limiter.
pub struct CloudflareFactory {
    pub base_url: String,
    pub limiter: Arc<CloudflareLimiter>,
    pub retry: RetryPolicy,
}

impl ProviderFactory for CloudflareFactory {
    fn cloudflare(
        &self,
        token: SecretString,
        account_id: Option<String>,
    ) -> Result<Box<dyn DnsProvider>, ProviderError> {
        CloudflareProvider::new(
            &self.base_url,
            token,
            account_id,
            self.limiter.clone(),
            self.retry,
        )
        .map(|p| Box::new(p) as Box<dyn DnsProvider>)
        .map_err(|e| ProviderError::Transient(e.to_string()))
    }
}

impl Orchestrator {
    /// Checks, before anything is stored, that the token works and that a
    /// given zone id is the domain's zone ([`ownership::check_zone`]).
    pub(super) async fn check_token(
        &self,
        token: Option<&SecretString>,
        account_id: Option<String>,
        domain: &DomainName,
        zone_id: Option<&str>,
    ) -> Result<(), DomainError> {
        let Some(token) = token else { return Ok(()) };
        let provider = self
            .providers
            .cloudflare(token.clone(), account_id)
            .map_err(DomainError::Token)?;
        provider
            .verify_token()
            .await
            .map_err(ownership::refused_or_fault)?;
        match zone_id {
            Some(zone) => ownership::check_zone(&*provider, domain, zone).await,
            None => Ok(()),
        }
    }

    /// The provider client for a domain: its own token, or the server's
    /// when the owner may use it ([`ownership`]), asked at each use. An
    /// admin acting on the domain (removing its records) may always use
    /// the server's token.
    pub(super) async fn provider(
        &self,
        d: &Domain,
        admin_acting: bool,
    ) -> Result<Box<dyn DnsProvider>, ProviderError> {
        let token = if d.has_own_token {
            let id = d.id;
            let sealed = self
                .store
                .read(move |c| repo::sealed_token(c, id))
                .await
                .map_err(|e| ProviderError::Transient(e.to_string()))?
                .unwrap_or_default();
            let row = d.id.to_string();
            let open = self
                .vault
                .open(
                    Slot {
                        table: "domains",
                        column: "cloudflare_api_token",
                        row_id: &row,
                    },
                    &sealed,
                )
                .map_err(|e| ProviderError::Unauthorized(e.to_string()))?;
            SecretString::from(String::from_utf8_lossy(open.expose_secret()).into_owned())
        } else {
            let allowed = admin_acting
                || ownership::owner_may_use_server_token(&self.store, d.user_id)
                    .await
                    .map_err(|e| ProviderError::Transient(e.to_string()))?;
            if !allowed {
                return Err(ProviderError::ServerTokenNotAllowed(d.domain_name.clone()));
            }
            self.settings.get().domains.cloudflare_api_token.clone().ok_or_else(|| {
                ProviderError::Unauthorized(
                    "no Cloudflare token: the domain has none and no default token is set (settings page, or INBOXGROVE_CLOUDFLARE_API_TOKEN)".into(),
                )
            })?
        };
        self.providers
            .cloudflare(token, d.cloudflare_account_id.clone())
    }

    /// The provider client and zone id where a TXT record for `host` goes
    /// (an ACME DNS-01 challenge, RFC 8555 §8.4): the zone of `domain`
    /// through the token its records use, or, for a host of no domain (the
    /// admin host), the zone enclosing it that the server's token sees.
    pub async fn txt_zone(
        &self,
        host: &DomainName,
        domain: Option<&Domain>,
    ) -> Result<(Box<dyn DnsProvider>, String), ProviderError> {
        let provider = match domain {
            Some(d) => self.provider(d, false).await?,
            None => {
                let token = self.settings.get().domains.cloudflare_api_token.clone();
                let token = token.ok_or_else(|| {
                    ProviderError::Unauthorized("no server Cloudflare token is set".into())
                })?;
                self.providers.cloudflare(token, None)?
            }
        };
        let zone = match domain.and_then(|d| d.cloudflare_zone_id.clone()) {
            Some(z) if !z.is_empty() => z,
            _ => provider.find_zone(host).await?.id,
        };
        Ok((provider, zone))
    }

    pub(super) async fn unpublish(
        &self,
        d: &Domain,
        admin_acting: bool,
    ) -> Result<(), ProviderError> {
        let provider = self.provider(d, admin_acting).await?;
        let zone = match &d.cloudflare_zone_id {
            Some(z) if !z.is_empty() => z.clone(),
            _ => return Ok(()),
        };
        let existing = provider.list_records(&zone).await?;
        let ids = id_of_ours(&existing, d);
        if ids.is_empty() {
            return Ok(());
        }
        let changes = ChangeSet {
            deletes: ids,
            ..Default::default()
        };
        provider.apply(&zone, &changes).await
    }
}

/// The ids of the records InboxGrove created for `d` (tagged with the
/// managed comment and inside the domain).
fn id_of_ours(existing: &[ExistingRecord], d: &Domain) -> Vec<String> {
    let suffix = format!(".{}", d.domain_name);
    existing
        .iter()
        .filter(|e| e.comment.as_deref() == Some(MANAGED_COMMENT))
        .filter(|e| e.name == d.domain_name || e.name.ends_with(&suffix))
        .map(|e| e.id.clone())
        .collect()
}
