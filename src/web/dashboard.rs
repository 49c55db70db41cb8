//! The dashboard: counts by status, today's sends against capacity, what
//! needs attention, and the latest audit entries.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, html};
use crate::audit;
use crate::http::AppState;
use crate::store::audit::AuditRow;
use crate::store::mailboxes::Filter;
use crate::store::{self, StoreError};

/// Something a person should look at.
pub struct Alert {
    pub subject: String,
    pub message: String,
    pub href: String,
}

pub struct Summary {
    pub domains: Vec<(String, i64)>,
    pub inboxes: Vec<(String, i64)>,
    pub sent_today: i64,
    pub capacity: i64,
    pub alerts: Vec<Alert>,
    pub audit: Vec<AuditRow>,
}

impl Summary {
    pub fn total(counts: &[(String, i64)]) -> i64 {
        counts.iter().map(|(_, n)| n).sum()
    }
}

const ALERTS: usize = 8;
const AUDIT_ROWS: u32 = 8;

/// What the dashboard shows to `scope` (an admin: everyone's).
pub async fn summary(state: &AppState, scope: Option<Uuid>) -> Result<Summary, WebError> {
    let today = state.settings.today();
    let (domains, inboxes, (sent_today, capacity), listed) = state
        .store
        .read(move |c| {
            Ok::<_, StoreError>((
                store::stats::domains_by_status(c, scope)?,
                store::stats::mailboxes_by_status(c, scope)?,
                store::stats::sends_today(c, scope, today)?,
                store::domains::list(c, scope)?,
            ))
        })
        .await?;
    let mut alerts: Vec<Alert> = listed
        .into_iter()
        .filter_map(|d| {
            let message = d.last_error?;
            Some(Alert {
                subject: d.domain_name,
                message,
                href: format!("/domains/{}", d.id),
            })
        })
        .take(ALERTS)
        .collect();
    let (blacklisted, _) = state
        .inboxes
        .list(Filter {
            scope,
            domain_id: None,
            status: Some("blacklisted".into()),
            search: None,
            limit: ALERTS as u32,
            offset: 0,
        })
        .await?;
    alerts.extend(blacklisted.into_iter().map(|m| Alert {
        href: format!("/inboxes/{}", m.id),
        message: "this mailbox is blacklisted and does not send".into(),
        subject: m.email,
    }));
    alerts.truncate(ALERTS);
    let audit = audit::page(
        &state.store,
        scope,
        None,
        audit::Filter::default(),
        AUDIT_ROWS,
    )
    .await?
    .items;
    Ok(Summary {
        domains,
        inboxes,
        sent_today,
        capacity,
        alerts,
        audit,
    })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub summary: Summary,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let summary = summary(&state, viewer.scope()).await?;
    html(&DashboardPage {
        chrome: viewer.chrome("dashboard"),
        summary,
    })
}
