//! Credential exports: `POST /api/v1/inboxes/export` makes a link,
//! `GET /api/v1/exports/{token}` downloads the CSV. Both are audited as
//! credential exports.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::audit;
use crate::auth::Principal;
use crate::exports::service::{ExportCreated, ExportRequest};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientIp};

pub async fn create(
    State(state): State<AppState>,
    audit: AuditContext,
    principal: Principal,
    ApiJson(req): ApiJson<ExportRequest>,
) -> Result<Json<ExportCreated>, ApiError> {
    audit.meta("credential_export", req.format.as_str());
    audit.meta("include_passwords", req.include_passwords);
    let created = state
        .exports
        .create(principal.user_id(), principal.scope(), req)
        .await?;
    audit.resource("export", created.export_id);
    audit.meta("rows", created.rows);
    Ok(Json(created))
}

pub async fn download(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let file = state.exports.download(&token).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("credential_export".into(), "download".into());
    let entry = audit::Entry {
        user_id: Some(file.owner),
        action: "GET /api/v1/exports/{token}".into(),
        resource_type: Some("export".into()),
        resource_id: Some(file.export_id.to_string()),
        success: true,
        metadata,
        client_ip: Some(ip.to_string()),
        ..Default::default()
    };
    audit::record(&state.store, &state.clock, entry)
        .await
        .map_err(ApiError::from)?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.name))
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        file.bytes,
    )
        .into_response())
}
