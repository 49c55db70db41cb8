//! The DNS-provider seam: what the orchestrator needs from a DNS host, so
//! Cloudflare, other providers and an in-memory fake can all stand behind
//! it. Publishing is a reconcile (see [`super::reconcile`]): list, diff,
//! apply one all-or-nothing change set.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use super::name::DomainName;
use super::plan::RecordType;
use crate::remote::Failure;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Written on every record InboxGrove creates, so removing a domain can
/// take back exactly its own records.
pub const MANAGED_COMMENT: &str = "managed by InboxGrove";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub status: String,
    /// The nameservers the provider assigned; verification asks these.
    pub name_servers: Vec<String>,
}

/// A record as the provider holds it. The type is free text: zones hold
/// types InboxGrove never writes (CAA, HTTPS, SVCB …) and must still list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRecord {
    pub id: String,
    pub record_type: String,
    /// Fully qualified, no trailing dot.
    pub name: String,
    /// As the provider returns it (TXT may be quoted and split).
    pub content: String,
    pub priority: Option<u16>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRecord {
    pub record_type: RecordType,
    pub name: String,
    pub content: String,
    pub priority: Option<u16>,
}

/// One all-or-nothing change. Providers apply deletes, then patches, then
/// posts (Cloudflare's batch order), so a record can be replaced by one of
/// another type under the same name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub deletes: Vec<String>,
    pub patches: Vec<(String, NewRecord)>,
    pub posts: Vec<NewRecord>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.patches.is_empty() && self.posts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "the DNS provider refused the API token: {0}. Create a token with Zone:Read and DNS:Edit and try again"
    )]
    Unauthorized(String),
    #[error(
        "the API token lacks the '{permission}' permission ({message}); edit the token to add it"
    )]
    MissingPermission {
        permission: &'static str,
        message: String,
    },
    #[error(
        "no zone named {0} is visible to this token; add the domain to the DNS provider first, or give its zone id"
    )]
    ZoneNotFound(String),
    #[error("the DNS provider is rate limiting us; retrying after {} seconds", .0.as_secs())]
    RateLimited(Duration),
    #[error("the DNS provider is unreachable or failing ({0}); retrying")]
    Transient(String),
    #[error("the DNS provider refused the change (code {code}): {message}")]
    Rejected { code: u32, message: String },
    /// Not the provider's answer: InboxGrove refuses to use the server's
    /// token for this domain (see [`super::ownership`]).
    #[error("{rule}; the owner of {0} is not allowed, so InboxGrove does not use it for this domain: an admin allows the owner on the users page (may_use_server_token), or the owner adds the domain again with their own cloudflare_api_token", rule = super::ownership::SERVER_TOKEN_RULE)]
    ServerTokenNotAllowed(String),
}

impl ProviderError {
    /// Worth trying again later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Transient(_))
    }

    pub fn failure(&self) -> Failure {
        match self {
            Self::Transient(_) => Failure::Transient,
            Self::RateLimited(after) => Failure::RateLimited(*after),
            _ => Failure::Final,
        }
    }
}

pub trait DnsProvider: Send + Sync {
    /// Checks the credentials work at all (before anything is stored).
    fn verify_token(&self) -> BoxFuture<'_, Result<(), ProviderError>>;
    /// The closest zone enclosing `name` (the name itself or its nearest
    /// parent that is a zone).
    fn find_zone<'a>(&'a self, name: &'a DomainName) -> BoxFuture<'a, Result<Zone, ProviderError>>;
    fn zone<'a>(&'a self, zone_id: &'a str) -> BoxFuture<'a, Result<Zone, ProviderError>>;
    /// Every record of the zone, all pages.
    fn list_records<'a>(
        &'a self,
        zone_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ExistingRecord>, ProviderError>>;
    /// Applies `changes` all or nothing.
    fn apply<'a>(
        &'a self,
        zone_id: &'a str,
        changes: &'a ChangeSet,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
}
