//! `/api/v1/inboxes/{id}/warmup`, `/api/v1/domains/{id}/warmup/…` and
//! `/api/v1/warmup/peers`: warmup settings, today's plan and history,
//! pause and resume, and the external peer accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, IdPath};
use crate::store::warmup::peers::Peer;
use crate::warmup::peers::NewPeer;
use crate::warmup::service::Overview;

pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Overview>, ApiError> {
    Ok(Json(state.warmup.overview(id, principal.scope()).await?))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<Overview>, ApiError> {
    audit.resource("mailbox", id);
    Ok(Json(
        state.warmup.update(id, principal.scope(), patch).await?,
    ))
}

pub async fn pause(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Overview>, ApiError> {
    audit.resource("mailbox", id);
    Ok(Json(
        state.warmup.set_paused(id, principal.scope(), true).await?,
    ))
}

pub async fn resume(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Overview>, ApiError> {
    audit.resource("mailbox", id);
    Ok(Json(
        state
            .warmup
            .set_paused(id, principal.scope(), false)
            .await?,
    ))
}

pub async fn pause_domain(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    audit.resource("domain", id);
    let n = state
        .warmup
        .set_domain_paused(id, principal.scope(), true)
        .await?;
    Ok(Json(
        json!({ "domain_id": id, "paused": true, "mailboxes": n }),
    ))
}

pub async fn resume_domain(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    audit.resource("domain", id);
    let n = state
        .warmup
        .set_domain_paused(id, principal.scope(), false)
        .await?;
    Ok(Json(
        json!({ "domain_id": id, "paused": false, "mailboxes": n }),
    ))
}

pub async fn peers(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let items = state.warmup.peers(principal.scope()).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn add_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<NewPeer>,
) -> Result<(StatusCode, Json<Peer>), ApiError> {
    let admin = principal.require_admin().is_ok();
    let peer = state
        .warmup
        .add_peer(principal.user_id(), admin, req)
        .await?;
    audit.resource("warmup_peer", peer.id);
    Ok((StatusCode::CREATED, Json(peer)))
}

pub async fn test_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Peer>, ApiError> {
    audit.resource("warmup_peer", id);
    Ok(Json(state.warmup.test_peer(id, principal.scope()).await?))
}

pub async fn delete_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    audit.resource("warmup_peer", id);
    state.warmup.delete_peer(id, principal.scope()).await?;
    Ok(StatusCode::NO_CONTENT)
}
