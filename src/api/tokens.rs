//! `/api/v1/tokens`: long-lived API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::api_tokens::CreatedToken;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, IdPath};
use crate::types::TokenName;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: TokenName,
    /// Left out: the token never expires.
    expires_in_days: Option<u32>,
}

pub async fn create(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = state
        .auth
        .create_api_token(&principal, req.name, req.expires_in_days)
        .await?;
    audit.resource("api_token", created.token.id);
    audit.meta("name", created.token.name.as_str());
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let items = state.auth.list_api_tokens(&principal).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn delete(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    audit.resource("api_token", id);
    state.auth.delete_api_token(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
