//! `/api/v1/auth/*` and `/api/v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::Principal;
use crate::auth::session::TokenPair;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientIp};
use crate::store::users::User;
use crate::types::{EmailAddress, Password};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: EmailAddress,
    password: SecretString,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    audit.meta("email", req.email.as_str());
    let (user, outcome) = state.auth.login(&req.email, req.password, ip).await;
    if let Some(user) = user {
        audit.actor(user);
        audit.resource("user", user);
    }
    Ok(Json(outcome?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: SecretString,
}

pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(state.auth.refresh(&req.refresh_token).await?))
}

pub async fn logout(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    let session = state.auth.logout(&principal).await?;
    audit.resource("session", session);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(principal: Principal) -> Json<User> {
    Json(principal.user)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: SecretString,
    new_password: Password,
    /// Also delete the caller's API tokens (the old password may be known
    /// to someone else).
    #[serde(default)]
    revoke_api_tokens: bool,
}

/// `POST /api/v1/me/password`: like the settings page, it ends every
/// session of the account, so the caller signs in again.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    audit.resource("user", principal.user_id());
    audit.meta("revoke_api_tokens", req.revoke_api_tokens);
    // Through the login throttle: the current password is a guess too.
    state
        .auth
        .change_own_password(
            &principal.user,
            req.current_password,
            req.new_password,
            req.revoke_api_tokens,
            ip,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
