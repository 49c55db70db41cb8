//! The audit log page: the viewer's rows (an admin's: everyone's), newest
//! first, paged like `GET /api/v1/audit-logs`, filtered by action text and
//! result within each page.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, given, html, parse_id};
use crate::api::AppState;
use crate::audit;
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
    let page = audit::page(&state.store, viewer.scope(), before, PAGE).await?;
    let action = given(&query.action).map(str::to_lowercase);
    let status = given(&query.status).map(str::to_owned);
    let rows = page
        .items
        .into_iter()
        .filter(|r| {
            action
                .as_deref()
                .is_none_or(|a| r.action.to_lowercase().contains(a))
        })
        .filter(|r| status.as_deref().is_none_or(|s| r.status == s))
        .collect();
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
