//! `/api/v1/settings`: the server settings an admin changes at run time.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::AppState;
use super::audit_layer::AuditContext;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::auth::Principal;
use crate::settings::{Change, Patch};

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
    record(&audit, &patch);
    Ok(Json(state.settings.update(patch).await?.to_json()))
}

/// Which settings a submit changed, never their values: one is a secret,
/// and the audit log is for who did what.
pub fn record(audit: &AuditContext, patch: &Patch) {
    audit.resource("settings", "server");
    for (key, change) in &patch.0 {
        let what = match change {
            Change::Set(_) => "set",
            Change::Clear => "cleared",
        };
        audit.meta(key.name(), what);
    }
}
