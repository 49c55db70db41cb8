//! Proving control of a name to the CA (RFC 8555 §8): HTTP-01 answered by
//! our own responder on port 80 (§8.3), or DNS-01 as a TXT record at
//! `_acme-challenge.<name>` published through Cloudflare (§8.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use uuid::Uuid;

use crate::domains::name::DomainName;
use crate::domains::plan::RecordType;
use crate::domains::provider::{ChangeSet, DnsProvider, MANAGED_COMMENT, NewRecord};
use crate::domains::service::Orchestrator;
use crate::store::Store;
use crate::store::domains as repo;

use super::AcmeError;

/// How one name proves control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A file on port 80: the name resolves to this host (manual-DNS
    /// domains, and the admin host without a server token).
    Http01,
    /// A TXT record in the zone of this Cloudflare domain.
    Dns01(Uuid),
    /// A TXT record through the server's Cloudflare token (the admin host).
    Dns01Server,
}

/// The key authorizations of live orders, by token, as the responder
/// serves them.
#[derive(Clone, Default)]
pub struct Http01(Arc<Mutex<HashMap<String, String>>>);

impl Http01 {
    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The responder: `/.well-known/acme-challenge/{token}` for tokens of
    /// live orders, 404 for anything else.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/acme-challenge/{token}", get(answer))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(self.clone())
    }
}

async fn answer(State(h): State<Http01>, Path(token): Path<String>) -> Response {
    match h.tokens().get(&token) {
        // §8.3: the body is the key authorization, nothing else.
        Some(key_auth) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_auth.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A challenge response put in place, to be taken back when the order is
/// over, whether it succeeded or not.
pub enum Posted {
    File(String),
    Txt {
        provider: Box<dyn DnsProvider>,
        zone: String,
        name: String,
        value: String,
    },
}

/// Puts challenge responses in place and takes them back.
pub struct Responder {
    pub http: Http01,
    pub store: Store,
    pub domains: Arc<Orchestrator>,
}

impl Responder {
    pub fn serve_file(&self, token: &str, key_auth: &str) -> Posted {
        self.http
            .tokens()
            .insert(token.to_owned(), key_auth.to_owned());
        Posted::File(token.to_owned())
    }

    /// Publishes `_acme-challenge.<host>` with `value` (§8.4: the base64url
    /// SHA-256 digest of the key authorization).
    pub async fn post_txt(
        &self,
        host: &str,
        proof: Proof,
        value: String,
    ) -> Result<Posted, AcmeError> {
        let name = DomainName::parse(host).map_err(|e| AcmeError::Name(e.0))?;
        let domain = match proof {
            Proof::Dns01(id) => Some(
                self.store
                    .read(move |c| repo::get(c, id, None))
                    .await?
                    .ok_or_else(|| AcmeError::Name(format!("the domain of {host} was removed")))?,
            ),
            _ => None,
        };
        let (provider, zone) = self.domains.txt_zone(&name, domain.as_ref()).await?;
        let txt = format!("_acme-challenge.{host}");
        let changes = ChangeSet {
            posts: vec![NewRecord {
                record_type: RecordType::TXT,
                name: txt.clone(),
                content: value.clone(),
                priority: None,
            }],
            ..Default::default()
        };
        provider.apply(&zone, &changes).await?;
        Ok(Posted::Txt {
            provider,
            zone,
            name: txt,
            value,
        })
    }

    /// Takes a response back; a TXT record is deleted by its name and value,
    /// and only if InboxGrove created it.
    pub async fn withdraw(&self, posted: Posted) -> Result<(), AcmeError> {
        match posted {
            Posted::File(token) => {
                self.http.tokens().remove(&token);
                Ok(())
            }
            Posted::Txt {
                provider,
                zone,
                name,
                value,
            } => {
                let deletes: Vec<String> = provider
                    .list_records(&zone)
                    .await?
                    .into_iter()
                    .filter(|r| {
                        r.record_type == "TXT"
                            && r.name == name
                            && r.content.trim_matches('"') == value
                            && r.comment.as_deref() == Some(MANAGED_COMMENT)
                    })
                    .map(|r| r.id)
                    .collect();
                if deletes.is_empty() {
                    return Ok(());
                }
                let changes = ChangeSet {
                    deletes,
                    ..Default::default()
                };
                Ok(provider.apply(&zone, &changes).await?)
            }
        }
    }
}
