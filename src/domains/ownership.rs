//! Who may publish with the server's Cloudflare token, and which zone a
//! domain's records belong in (issue 12, point 1).
//!
//! The server-wide token edits every zone of the server's Cloudflare
//! account, so it publishes only domains whose owner is an admin or a
//! member an admin allowed (`users.may_use_server_token`). Any other member
//! brings their own token or gets manual DNS. The rule holds at every use
//! of the token (adding, publishing, publishing again, removing records),
//! not only when the domain is added: an admin who takes the flag back
//! stops every later use for that member's domains at once. The domain
//! stays; its next publish fails and says why, and records already
//! published stay in the zone until an admin removes the domain with
//! `remove_records` (an admin may always use the server's token) or
//! deletes them at Cloudflare.

use secrecy::SecretString;
use uuid::Uuid;

use super::model::DnsMode;
use super::name::DomainName;
use super::provider::{DnsProvider, ProviderError};
use super::service::{AddDomain, DomainError, Orchestrator};
use crate::store::domains::Domain;
use crate::store::users::{self, User};
use crate::store::{Store, StoreError};
use crate::types::Role;

/// The rule in the words every answer about it uses.
pub const SERVER_TOKEN_RULE: &str = "the server's Cloudflare token publishes only domains of admins and of members an admin allowed";

/// Whether the server's token may publish `owner`'s domains.
pub fn may_use_server_token(owner: &User) -> bool {
    owner.role == Role::Admin || owner.may_use_server_token
}

/// Whether the owner with this id may have the server's token used for
/// them, as the store says now. A user who is gone may not.
pub(super) async fn owner_may_use_server_token(
    store: &Store,
    owner: Uuid,
) -> Result<bool, StoreError> {
    let user = store.read(move |c| users::by_id(c, owner)).await?;
    Ok(user.as_ref().is_some_and(may_use_server_token))
}

/// A zone id as given. Cloudflare's are 32 hex digits; anything but a short
/// run of letters and digits is refused before any call is made.
pub(super) fn parse_zone_id(raw: &str) -> Result<String, DomainError> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DomainError::Invalid {
            field: "cloudflare_zone_id",
            message: "must be the zone's id from the Cloudflare dashboard (32 letters and digits), or left out to find the zone by name".into(),
        });
    }
    Ok(id.to_owned())
}

/// A provider failure while checking what was given: a fault to retry
/// (503), or the token's fault (422 naming it).
pub(super) fn refused_or_fault(e: ProviderError) -> DomainError {
    if e.is_transient() {
        DomainError::Provider(e)
    } else {
        DomainError::Token(e)
    }
}

/// The given zone must be the domain's: its name is the domain or a parent
/// of it, and no zone closer to the domain is visible (records in a parent
/// zone are hidden by a child zone's delegation). Asked before anything is
/// stored.
pub(super) async fn check_zone(
    provider: &dyn DnsProvider,
    domain: &DomainName,
    zone_id: &str,
) -> Result<(), DomainError> {
    let invalid = |message: String| DomainError::Invalid {
        field: "cloudflare_zone_id",
        message,
    };
    let zone = match provider.zone(zone_id).await {
        Ok(z) => z,
        Err(ProviderError::ZoneNotFound(_)) => {
            return Err(invalid(format!(
                "no zone with id {zone_id} is visible to the token; give the id of {domain}'s zone, or leave it out to find the zone by name"
            )));
        }
        Err(e) => return Err(refused_or_fault(e)),
    };
    if !domain.is_within(&zone.name) {
        return Err(invalid(format!(
            "zone {zone_id} is {}, which is neither {domain} nor a parent of it; give the id of {domain}'s zone, or leave it out to find the zone by name",
            zone.name
        )));
    }
    match provider.find_zone(domain).await {
        Ok(closest) if closest.id != zone.id && closest.name.len() > zone.name.len() => {
            Err(invalid(format!(
                "zone {} encloses {domain}, but the zone {} (id {}) is closer and answers for it; give that id, or leave it out",
                zone.name, closest.name, closest.id
            )))
        }
        // Not found by name (another account's filter): the zone by id
        // encloses the domain and is the only one known.
        Ok(_) | Err(ProviderError::ZoneNotFound(_)) => Ok(()),
        Err(e) => Err(refused_or_fault(e)),
    }
}

/// What the domain's page says about who publishes its records.
pub(super) fn dns_note(d: &Domain, owner_may: bool, server_token_set: bool) -> String {
    match (d.dns_mode, d.has_own_token) {
        (DnsMode::Cloudflare, true) => {
            "InboxGrove publishes these records at Cloudflare with this domain's own token.".into()
        }
        (DnsMode::Cloudflare, false) if owner_may => {
            "InboxGrove publishes these records at Cloudflare with the server's token.".into()
        }
        (DnsMode::Cloudflare, false) => {
            ProviderError::ServerTokenNotAllowed(d.domain_name.clone()).to_string()
        }
        (DnsMode::Manual, _) if server_token_set && !owner_may => format!(
            "Manual DNS: create each record below at your DNS host. Not published by InboxGrove: {SERVER_TOKEN_RULE}; to have it publish, add the domain with your own cloudflare_api_token, or ask an admin to allow you (may_use_server_token)."
        ),
        (DnsMode::Manual, _) => "Manual DNS: no Cloudflare token was given, so create each record below at your DNS host; InboxGrove checks them until they are live.".into(),
    }
}

impl Orchestrator {
    /// The token a new domain is published with: the caller's own, else
    /// the server's when the owner may use it, else none (manual DNS).
    /// A zone or account id makes no sense without a token, and would have
    /// the server's token look zones up for someone it does not serve.
    pub(super) async fn token_for_add(
        &self,
        owner: Uuid,
        req: &AddDomain,
    ) -> Result<Option<SecretString>, DomainError> {
        if let Some(own) = &req.cloudflare_api_token {
            return Ok(Some(own.clone()));
        }
        let server = self.settings.get().domains.cloudflare_api_token.clone();
        let allowed = server.is_some() && owner_may_use_server_token(&self.store, owner).await?;
        if allowed {
            return Ok(server);
        }
        let why = if server.is_some() {
            format!(
                "{SERVER_TOKEN_RULE}, so without your own cloudflare_api_token this domain gets manual DNS; give your token with it, or leave it out"
            )
        } else {
            "needs a Cloudflare token: give cloudflare_api_token with it (or an admin sets the server's token), or leave it out for manual DNS".to_owned()
        };
        for (field, given) in [
            ("cloudflare_zone_id", req.cloudflare_zone_id.is_some()),
            ("cloudflare_account_id", req.cloudflare_account_id.is_some()),
        ] {
            if given {
                return Err(DomainError::Invalid {
                    field,
                    message: why,
                });
            }
        }
        Ok(None)
    }
}
