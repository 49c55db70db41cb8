//! `/api/v1/inboxes`: the bulk generator (spec endpoint 2) and mailbox
//! management.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Principal;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, IdPath};
use crate::inboxes::service::{BulkRequest, BulkResponse, InboxPatch};
use crate::store::mailboxes::{Filter, Mailbox};

pub async fn bulk(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<BulkRequest>,
) -> Result<Json<BulkResponse>, ApiError> {
    audit.resource("domain", req.domain_id);
    audit.meta("quantity", req.quantity);
    let mut created = state.inboxes.bulk(principal.scope(), req).await?;
    audit.meta("created", created.created_count);
    // The mailboxes exist by now: a link that cannot be made is left out
    // rather than failing the whole request.
    let ids = created.inboxes.iter().map(|i| i.inbox_id).collect();
    match state
        .exports
        .of_batch(principal.user_id(), principal.scope(), ids)
        .await
    {
        Ok(link) => {
            audit.meta("credential_export", link.format.as_str());
            audit.meta("export_id", link.export_id.to_string());
            created.export_csv_url = Some(link.file_url);
        }
        Err(e) => tracing::warn!(error = %e, "no export link for a bulk creation"),
    }
    Ok(Json(created))
}

const MAX_PAGE: u32 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    domain_id: Option<Uuid>,
    status: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    if let Some(s) = &p.status
        && !matches!(s.as_str(), "active" | "warming" | "paused" | "blacklisted")
    {
        return Err(ApiError::invalid(
            "status",
            "must be one of: active, warming, paused, blacklisted",
        ));
    }
    let offset = p.offset.unwrap_or(0);
    let (items, total) = state
        .inboxes
        .list(Filter {
            scope: principal.scope(),
            domain_id: p.domain_id,
            status: p.status,
            search: None,
            limit,
            offset,
        })
        .await?;
    Ok(Json(
        json!({ "items": items, "total": total, "limit": limit, "offset": offset }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Mailbox>, ApiError> {
    Ok(Json(state.inboxes.get(id, principal.scope()).await?))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<InboxPatch>,
) -> Result<Json<Mailbox>, ApiError> {
    audit.resource("mailbox", id);
    Ok(Json(
        state.inboxes.update(id, principal.scope(), patch).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    audit.resource("mailbox", id);
    state.inboxes.delete(id, principal.scope()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reset_password(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    audit.resource("mailbox", id);
    let (mailbox, password) = state.inboxes.reset_password(id, principal.scope()).await?;
    Ok(Json(json!({
        "inbox_id": mailbox.id,
        "email": mailbox.email,
        "password": password.expose_secret(),
    })))
}
