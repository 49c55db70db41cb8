//! The audit log page: the viewer's rows (an admin's: everyone's), newest
//! first, paged and filtered (action text, result) like
//! `GET /api/v1/audit-logs`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, given, html, parse_id};
use crate::audit;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::audit::AuditRow;

const PAGE: u32 = 100;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub query: AuditQuery,
    pub rows: Vec<AuditRow>,
    /// The query string of the next (older) page, if there is one.
    pub older: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let before = given(&query.before)
        .map(|b| parse_id(b, "audit page"))
        .transpose()?;
    let filter = audit::Filter::parse(query.action.as_deref(), query.status.as_deref())
        .map_err(|e| ApiError::invalid("status", e.0))?;
    let (action, status) = (filter.action.clone(), query.status.clone());
    let page = audit::page(&state.store, viewer.scope(), before, filter, PAGE).await?;
    let rows = page.items;
    let older = page.next_before.map(|b| {
        serde_urlencoded::to_string([
            ("action", action.as_deref().unwrap_or_default()),
            ("status", status.as_deref().unwrap_or_default()),
            ("before", &b.to_string()),
        ])
        .unwrap_or_default()
    });
    html(&AuditPage {
        chrome: viewer.chrome("audit"),
        query,
        rows,
        older,
    })
}
