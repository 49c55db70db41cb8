//! Writes one audit row for every state-changing API call, whatever its
//! outcome, so no handler can forget to. Handlers add what only they know
//! (the resource touched, a login's account) through [`AuditContext`].

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::AppState;
use super::extract::client_ip;
use crate::audit::{self, Entry};
use crate::settings::{Change, Patch};
use crate::store::tiers::LimitChanges;

#[derive(Clone, Default)]
pub struct AuditContext(Arc<Mutex<Entry>>);

impl AuditContext {
    fn with(&self, f: impl FnOnce(&mut Entry)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn actor(&self, user: Uuid) {
        self.with(|e| e.user_id = Some(user));
    }

    pub fn resource(&self, kind: &str, id: impl ToString) {
        self.with(|e| {
            e.resource_type = Some(kind.to_owned());
            e.resource_id = Some(id.to_string());
        });
    }

    /// Which settings a submit changed, never their values: one is a
    /// secret, and the audit log is for who did what.
    pub fn settings_change(&self, patch: &Patch) {
        self.resource("settings", "server");
        for (key, change) in &patch.0 {
            let what = match change {
                Change::Set(_) => "set",
                Change::Clear => "cleared",
            };
            self.meta(key.name(), what);
        }
    }

    /// The new limits of a plan: who gave whom how much.
    pub fn tier_change(&self, changes: &LimitChanges) {
        for (field, change) in [
            ("domains", changes.domains),
            ("mailboxes", changes.mailboxes),
            ("daily_volume", changes.daily_volume),
        ] {
            if let Some(limit) = change {
                self.meta(
                    field,
                    limit.map_or(serde_json::json!("unlimited"), |n| serde_json::json!(n)),
                );
            }
        }
    }

    /// Adds a metadata field. Never pass a secret.
    pub fn meta(&self, key: &str, value: impl Into<serde_json::Value>) {
        self.with(|e| {
            e.metadata.insert(key.to_owned(), value.into());
        });
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get().cloned().unwrap_or_default())
    }
}

pub async fn middleware(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let ctx = AuditContext::default();
    let path = matched.as_ref().map_or(req.uri().path(), |m| m.as_str());
    let action = format!("{} {path}", req.method());
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts, &state.trusted_proxies).to_string();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    req = Request::from_parts(parts, body);
    req.extensions_mut().insert(ctx.clone());

    let res = next.run(req).await;

    let mut entry = std::mem::take(&mut *ctx.0.lock().unwrap_or_else(|p| p.into_inner()));
    entry.action = action;
    // The browser UI answers a successful form post with a redirect.
    entry.success = res.status().is_success() || res.status().is_redirection();
    entry.client_ip = Some(ip);
    entry.request_id = request_id;
    entry
        .metadata
        .insert("http_status".into(), res.status().as_u16().into());
    if let Err(e) = audit::record(&state.store, &state.clock, entry).await {
        tracing::error!(error = %e, "could not write an audit row");
    }
    res
}
