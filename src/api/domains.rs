//! `/api/v1/domains`: the domain orchestrator (spec endpoint 1 and the
//! management around it).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::domains::service::{AddDomain, DomainPatch, DomainView};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, IdPath};

pub async fn add(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<AddDomain>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    audit.meta("domain", req.domain_name.as_str());
    let view = state.domains.add(principal.user_id(), req).await?;
    audit.resource("domain", view.domain_id);
    Ok((StatusCode::ACCEPTED, Json(view)))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let items = state.domains.list(principal.scope()).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(state.domains.view(id, principal.scope()).await?))
}

pub async fn verify(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<Json<DomainView>, ApiError> {
    audit.resource("domain", id);
    state.domains.verify_now(id, principal.scope()).await?;
    Ok(Json(state.domains.view(id, principal.scope()).await?))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<DomainPatch>,
) -> Result<Json<DomainView>, ApiError> {
    audit.resource("domain", id);
    Ok(Json(
        state.domains.update(id, principal.scope(), patch).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    #[serde(default)]
    force: bool,
    #[serde(default)]
    remove_records: bool,
}

pub async fn remove(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<RemoveParams>,
) -> Result<StatusCode, ApiError> {
    audit.resource("domain", id);
    state
        .domains
        .remove(id, principal.scope(), params.force, params.remove_records)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
