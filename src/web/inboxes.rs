//! Inbox pages: bulk creation (credentials shown once, with a download),
//! the searchable, filtered, paged list with pause/resume, and an inbox's
//! page with its counters and a password reset.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::error::WebError;
use super::session::{Htmx, Viewer};
use super::{Chrome, WebForm, given, html, parse_id};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::inboxes::naming::{CustomName, NamingScheme};
use crate::inboxes::service::{BulkRequest, BulkResponse, InboxPatch};
use crate::store::domains::Domain;
use crate::store::mailboxes::{Filter, Mailbox};
use crate::warmup::service::Column;

pub const PAGE_SIZE: u32 = 50;
const STATUSES: [&str; 4] = ["active", "warming", "paused", "blacklisted"];

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub page: Option<u32>,
}

/// One page of the list: the part htmx replaces when a filter changes.
#[derive(Template)]
#[template(path = "inboxes/_table.html")]
pub struct TableFragment {
    pub items: Vec<Mailbox>,
    pub total: i64,
    pub page: u32,
    pub pages: u32,
    /// The filters as a query string, for the pager's links.
    pub filters: String,
    /// The warmup column of the mailboxes that warm up.
    pub warmup: HashMap<Uuid, Column>,
}

#[derive(Template)]
#[template(path = "inboxes/list.html")]
pub struct ListPage {
    pub chrome: Chrome,
    pub query: ListQuery,
    pub domains: Vec<Domain>,
    pub statuses: [&'static str; 4],
    pub table: TableFragment,
}

/// The list page's data for `query`, as `scope` sees it.
pub async fn table(
    state: &AppState,
    scope: Option<Uuid>,
    query: &ListQuery,
) -> Result<TableFragment, WebError> {
    let domain_id = given(&query.domain)
        .map(|d| parse_id(d, "domain"))
        .transpose()?;
    let status = given(&query.status)
        .filter(|s| STATUSES.contains(s))
        .map(str::to_owned);
    let page = query.page.unwrap_or(1).max(1);
    let (items, total) = state
        .inboxes
        .list(Filter {
            scope,
            domain_id,
            status,
            search: given(&query.q).map(str::to_owned),
            limit: PAGE_SIZE,
            offset: (page - 1).saturating_mul(PAGE_SIZE),
        })
        .await?;
    let pages = (total.max(0) as u32).div_ceil(PAGE_SIZE).max(1);
    let filters = serde_urlencoded::to_string([
        ("q", given(&query.q).unwrap_or_default()),
        ("domain", given(&query.domain).unwrap_or_default()),
        ("status", given(&query.status).unwrap_or_default()),
    ])
    .unwrap_or_default();
    let ids = items.iter().map(|m| m.id).collect();
    let warmup = state.warmup.columns(ids).await?.into_iter().collect();
    Ok(TableFragment {
        items,
        total,
        page,
        pages,
        filters,
        warmup,
    })
}

async fn domains_of(state: &AppState, scope: Option<Uuid>) -> Result<Vec<Domain>, WebError> {
    Ok(state
        .store
        .read(move |c| crate::store::domains::list(c, scope))
        .await?)
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let table = table(&state, viewer.scope(), &query).await?;
    if htmx {
        return html(&table);
    }
    html(&ListPage {
        chrome: viewer.chrome("inboxes"),
        domains: domains_of(&state, viewer.scope()).await?,
        statuses: STATUSES,
        query,
        table,
    })
}

#[derive(Template)]
#[template(path = "inboxes/new.html")]
pub struct NewPage {
    pub chrome: Chrome,
    pub domains: Vec<Domain>,
    pub selected: Option<Uuid>,
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    domain: Option<String>,
}

pub async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<NewQuery>,
) -> Result<Response, WebError> {
    html(&NewPage {
        chrome: viewer.chrome("inboxes"),
        domains: domains_of(&state, viewer.scope()).await?,
        selected: given(&q.domain).and_then(|d| Uuid::parse_str(d).ok()),
    })
}

#[derive(Deserialize)]
pub struct BulkForm {
    domain_id: String,
    quantity: String,
    naming_scheme: String,
    #[serde(default)]
    names: Option<String>,
    #[serde(default)]
    daily_limit: Option<String>,
    #[serde(default)]
    enable_warmup: Option<String>,
}

/// Custom names, one a line: "First Last" is a person, one word a username.
fn custom_names(text: &str) -> Vec<CustomName> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((first, last)) => CustomName::Person {
                first_name: first.to_owned(),
                last_name: last.trim().to_owned(),
            },
            None => CustomName::Username {
                username: l.to_owned(),
            },
        })
        .collect()
}

fn parse_bulk(form: &BulkForm) -> Result<BulkRequest, ApiError> {
    let number = |field: &'static str, s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| ApiError::invalid(field, "enter a whole number"))
    };
    Ok(BulkRequest {
        domain_id: Uuid::parse_str(&form.domain_id)
            .map_err(|_| ApiError::invalid("domain_id", "choose a domain"))?,
        quantity: number("quantity", &form.quantity)?,
        naming_scheme: NamingScheme::parse(&form.naming_scheme)
            .map_err(|e| ApiError::invalid("naming_scheme", e.0))?,
        daily_limit: given(&form.daily_limit)
            .map(|s| number("daily_limit", s))
            .transpose()?,
        enable_warmup: form.enable_warmup.is_some(),
        names: given(&form.names).map(custom_names).unwrap_or_default(),
    })
}

/// The mailboxes just made, with their passwords: shown this once.
#[derive(Template)]
#[template(path = "inboxes/_created.html")]
pub struct CreatedFragment {
    pub created: BulkResponse,
    /// A credential-export link for exactly these mailboxes.
    pub download: String,
}

#[derive(Template)]
#[template(path = "inboxes/created.html")]
pub struct CreatedPage {
    pub chrome: Chrome,
    pub result: CreatedFragment,
}

pub async fn bulk(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    WebForm(form): WebForm<BulkForm>,
) -> Result<Response, WebError> {
    let req = parse_bulk(&form)?;
    audit.resource("domain", req.domain_id);
    audit.meta("quantity", req.quantity);
    let created = state.inboxes.bulk(viewer.scope(), req).await?;
    audit.meta("created", created.created_count);
    // The download reopens the sealed passwords through the export
    // service, so the file is never kept anywhere in clear.
    let ids = created.inboxes.iter().map(|i| i.inbox_id).collect();
    let export = state
        .exports
        .of_batch(viewer.principal.user_id(), viewer.scope(), ids)
        .await?;
    let result = CreatedFragment {
        created,
        download: super::exports::local_link(&export.file_url),
    };
    if htmx {
        return html(&result);
    }
    html(&CreatedPage {
        chrome: viewer.chrome("inboxes"),
        result,
    })
}

#[derive(Template)]
#[template(path = "inboxes/show.html")]
pub struct ShowPage {
    pub chrome: Chrome,
    pub m: Mailbox,
    pub new_password: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "mailbox")?;
    let m = state.inboxes.get(id, viewer.scope()).await?;
    html(&ShowPage {
        chrome: viewer.chrome("inboxes"),
        m,
        new_password: None,
    })
}

/// One row of the list, swapped in place after pause or resume.
#[derive(Template)]
#[template(path = "inboxes/_row.html")]
pub struct RowFragment {
    pub m: Mailbox,
    pub col: Option<Column>,
}

async fn set_paused(
    state: &AppState,
    audit: &AuditContext,
    viewer: &Viewer,
    htmx: bool,
    id: &str,
    paused: bool,
) -> Result<Response, WebError> {
    let id = parse_id(id, "mailbox")?;
    audit.resource("mailbox", id);
    let patch = InboxPatch {
        paused: Some(paused),
        ..Default::default()
    };
    let m = state.inboxes.update(id, viewer.scope(), patch).await?;
    if htmx {
        let col = state.warmup.columns(vec![id]).await?.pop().map(|(_, c)| c);
        return html(&RowFragment { m, col });
    }
    Ok(Redirect::to(&format!("/inboxes/{id}")).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    set_paused(&state, &audit, &viewer, htmx, &id, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    set_paused(&state, &audit, &viewer, htmx, &id, false).await
}

pub async fn reset_password(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "mailbox")?;
    audit.resource("mailbox", id);
    let (m, password) = state.inboxes.reset_password(id, viewer.scope()).await?;
    html(&ShowPage {
        chrome: viewer.chrome("inboxes"),
        m,
        new_password: Some(password.expose_secret().to_owned()),
    })
}
