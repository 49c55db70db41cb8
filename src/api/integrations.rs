//! `/api/v1/integrations`: saved sequencer API keys, and the one-click push
//! of mailboxes into Instantly, Smartlead or Reply.io.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::exports::push::{KeyStatus, PushReport, PushRequest, Tool};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;

/// The `{tool}` in the path; an unknown one names no resource.
pub struct ToolPath(Tool);

impl<S: Send + Sync> FromRequestParts<S> for ToolPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such integration; use instantly, smartlead or replyio",
            )
        };
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| unknown())?;
        Tool::parse(&raw).map(ToolPath).map_err(|_| unknown())
    }
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let items = state.integrations.keys(principal.user_id()).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveKey {
    api_key: String,
}

pub async fn save_key(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ToolPath(tool): ToolPath,
    ApiJson(req): ApiJson<SaveKey>,
) -> Result<Json<KeyStatus>, ApiError> {
    audit.resource("integration", tool);
    let saved = state
        .integrations
        .save_key(principal.user_id(), tool, &req.api_key)
        .await?;
    Ok(Json(saved))
}

pub async fn forget_key(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ToolPath(tool): ToolPath,
) -> Result<StatusCode, ApiError> {
    audit.resource("integration", tool);
    state
        .integrations
        .forget_key(principal.user_id(), tool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The push runs on its own task: a client that goes away midway does not
/// leave some mailboxes pushed and the rest never tried.
pub async fn push(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ToolPath(tool): ToolPath,
    ApiJson(req): ApiJson<PushRequest>,
) -> Result<Json<PushReport>, ApiError> {
    audit.resource("integration", tool);
    audit.meta("credential_export", format!("push:{tool}"));
    let integrations = state.integrations.clone();
    let (caller, scope) = (principal.user_id(), principal.scope());
    let report = tokio::spawn(async move { integrations.push(caller, scope, tool, req).await })
        .await
        .map_err(|e| ApiError::internal(&e))??;
    audit.meta("created", report.created);
    audit.meta("already_exists", report.already_exists);
    audit.meta("failed", report.failed);
    Ok(Json(report))
}
