//! `/api/v1/certificates`: the ACME certificate bundles (admins only), and
//! renewing them all now.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::acme;
use crate::auth::Principal;
use crate::http::AppState;
use crate::http::error::ApiError;

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let items = acme::list(&state.store).await?;
    Ok(Json(json!({
        "certificates": if state.acme.is_some() { "acme" } else { "self-signed" },
        "directory_url": state.acme.as_ref().map(|a| a.directory_url()),
        "items": items,
    })))
}

pub async fn renew(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_admin()?;
    let Some(acme) = &state.acme else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "certificates_self_signed",
            "certificates are self-signed on this server; set certificates = \"acme\" in the configuration and restart to have them issued",
        ));
    };
    let job = acme
        .renew_now()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": job }))))
}
