//! `/api/v1/users`: user management, for admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::users::UserPatch;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, IdPath};
use crate::store::users::User;
use crate::types::{EmailAddress, Password, Role, SubscriptionTier};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    email: EmailAddress,
    password: Password,
    #[serde(default = "member")]
    role: Role,
    #[serde(default = "free")]
    subscription_tier: SubscriptionTier,
}

fn member() -> Role {
    Role::Member
}

fn free() -> SubscriptionTier {
    SubscriptionTier::Free
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let items = state.auth.accounts.list().await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn create(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    principal.require_admin()?;
    audit.meta("email", req.email.as_str());
    let user = state
        .auth
        .accounts
        .create(req.email, req.password, req.role, req.subscription_tier)
        .await?;
    audit.resource("user", user.id);
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    principal.require_admin()?;
    audit.resource("user", id);
    // Which fields changed, never their values (one may be a password).
    for (field, given) in [
        ("role", patch.role.is_some()),
        ("subscription_tier", patch.subscription_tier.is_some()),
        ("disabled", patch.disabled.is_some()),
        ("password", patch.password.is_some()),
        ("may_use_server_token", patch.may_use_server_token.is_some()),
    ] {
        if given {
            audit.meta(field, "changed");
        }
    }
    Ok(Json(state.auth.accounts.update(id, patch).await?))
}
