//! `/api/v1/settings`: the server settings an admin changes at run time.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::auth::Principal;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::settings::Patch;

pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    Ok(Json(state.settings.view().to_json()))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let patch = Patch::from_json(body)?;
    audit.settings_change(&patch);
    Ok(Json(state.settings.update(patch).await?.to_json()))
}
