//! `GET /api/v1/diagnostics` (admins): the report `inboxgrove doctor
//! --json` prints, from the running server.

use axum::Json;
use axum::extract::State;

use crate::auth::Principal;
use crate::doctor::{self, Report};
use crate::http::AppState;
use crate::http::error::ApiError;

pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Report>, ApiError> {
    principal.require_admin()?;
    Ok(Json(
        doctor::diagnose(&state.diagnostics, &state.clock, &state.domains).await,
    ))
}
