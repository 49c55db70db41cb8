//! `/api/v1/tiers`: the limits of each subscription tier, which admins
//! edit; `/api/v1/me/usage`: the caller's tier, limits and usage.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::store::tiers::Tier;
use crate::tiers::{self, UsageView};

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let items = tiers::list(&state.store).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    Path(tier): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Tier>, ApiError> {
    principal.require_admin()?;
    let tier = tiers::parse_tier(&tier)?;
    let changes = tiers::parse_changes(body)?;
    audit.resource("tier", tier);
    audit.tier_change(&changes);
    Ok(Json(
        tiers::update(&state.store, &state.clock, tier, changes).await?,
    ))
}

pub async fn usage(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<UsageView>, ApiError> {
    let today = state.settings.today();
    let user = &principal.user;
    Ok(Json(
        tiers::usage(&state.store, user.id, user.subscription_tier, today).await?,
    ))
}
