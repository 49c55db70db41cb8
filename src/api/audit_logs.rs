//! `GET /api/v1/audit-logs`: the caller's audit rows (an admin's: all),
//! newest first, paged with `limit` and `before`, filtered by `action`
//! (any part of it) and `status` (`success` or `failure`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use crate::audit::{self, MAX_PAGE, Page};
use crate::auth::Principal;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    limit: Option<u32>,
    before: Option<Uuid>,
    action: Option<String>,
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<Params>,
) -> Result<Json<Page>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let filter = audit::Filter::parse(params.action.as_deref(), params.status.as_deref())
        .map_err(|e| ApiError::invalid("status", e.0))?;
    let page = audit::page(
        &state.store,
        principal.scope(),
        params.before,
        filter,
        limit,
    )
    .await?;
    Ok(Json(page))
}
