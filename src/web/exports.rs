//! The export page: choose mailboxes (a whole domain, or addresses) and a
//! format, then download the CSV through the credential-export service; or
//! push them straight into Instantly, Smartlead or Reply.io, with a result
//! per mailbox, and manage the saved API keys.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::error::WebError;
use super::session::{Htmx, Viewer};
use super::{Chrome, WebForm, given, html, parse_id};
use crate::exports::formats::Format;
use crate::exports::push::{KeyStatus, PushOptions, PushReport, PushRequest, Tool};
use crate::exports::service::{ExportCreated, ExportRequest};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::store::domains::Domain;
use crate::store::{self, StoreError};

const DOWNLOAD_PATH: &str = "/api/v1/exports/";

/// The download link as a path on this server: the page works under any
/// address the browser used, whatever the configured public URL says.
pub fn local_link(file_url: &str) -> String {
    match file_url.find(DOWNLOAD_PATH) {
        Some(i) => file_url[i..].to_owned(),
        None => file_url.to_owned(),
    }
}

pub const FORMATS: [(&str, &str); 4] = [
    ("instantly_csv", "Instantly"),
    ("smartlead_csv", "Smartlead"),
    ("replyio_csv", "Reply.io"),
    ("generic_csv", "Generic CSV"),
];

#[derive(Template)]
#[template(path = "exports/new.html")]
pub struct ExportPage {
    pub chrome: Chrome,
    pub domains: Vec<Domain>,
    pub formats: [(&'static str, &'static str); 4],
    pub ready: Option<ExportCreated>,
    pub link: String,
    /// The viewer's saved sequencer keys, one entry per tool.
    pub keys: Vec<KeyStatus>,
    pub any_saved: bool,
    pub pushed: Option<PushedFragment>,
}

/// A push's results: the part htmx swaps in under the push form.
#[derive(Template)]
#[template(path = "exports/_pushed.html")]
pub struct PushedFragment {
    pub report: PushReport,
    pub label: &'static str,
}

/// What the page shows besides the form: a file ready, or a push done.
#[derive(Default)]
struct Outcome {
    ready: Option<ExportCreated>,
    pushed: Option<PushedFragment>,
}

async fn page(state: &AppState, viewer: &Viewer, outcome: Outcome) -> Result<Response, WebError> {
    let scope = viewer.scope();
    let domains = state
        .store
        .read(move |c| store::domains::list(c, scope))
        .await?;
    let keys = state.integrations.keys(viewer.principal.user_id()).await?;
    html(&ExportPage {
        chrome: viewer.chrome("exports"),
        domains,
        formats: FORMATS,
        link: outcome
            .ready
            .as_ref()
            .map(|r| local_link(&r.file_url))
            .unwrap_or_default(),
        ready: outcome.ready,
        any_saved: keys.iter().any(|k| k.saved),
        keys,
        pushed: outcome.pushed,
    })
}

pub async fn new(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    page(&state, &viewer, Outcome::default()).await
}

type Selection = (Option<Uuid>, Option<Vec<Uuid>>);

/// The mailboxes a form names: a list of addresses, else a whole domain.
/// Whose they are is checked by the service the selection goes to.
async fn selection(
    state: &AppState,
    domain_id: &Option<String>,
    addresses: &Option<String>,
) -> Result<Selection, WebError> {
    if let Some(text) = given(addresses) {
        let addresses: Vec<String> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(str::to_lowercase)
            .collect();
        let found = state
            .store
            .read(move |c| {
                addresses
                    .iter()
                    .map(|a| store::mailboxes::by_address(c, a))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        // An unknown address is refused like someone else's mailbox.
        let ids = found
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| WebError::not_found("mailbox"))?;
        return Ok((None, Some(ids)));
    }
    let domain = given(domain_id)
        .ok_or_else(|| ApiError::invalid("domain_id", "choose a domain or list addresses"))?;
    Ok((Some(parse_id(domain, "domain")?), None))
}

#[derive(Deserialize)]
pub struct ExportForm {
    format: String,
    #[serde(default)]
    domain_id: Option<String>,
    /// Addresses, one a line or separated by commas, instead of a domain.
    #[serde(default)]
    addresses: Option<String>,
    #[serde(default)]
    include_passwords: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<ExportForm>,
) -> Result<Response, WebError> {
    let format = Format::parse(&form.format).map_err(|e| ApiError::invalid("format", e.0))?;
    let (domain_id, mailbox_ids) = selection(&state, &form.domain_id, &form.addresses).await?;
    let include_passwords = form.include_passwords.is_some();
    audit.meta("credential_export", format.as_str());
    audit.meta("include_passwords", include_passwords);
    let created = state
        .exports
        .create(
            viewer.principal.user_id(),
            viewer.scope(),
            ExportRequest {
                mailbox_ids,
                domain_id,
                format,
                include_passwords,
            },
        )
        .await?;
    audit.resource("export", created.export_id);
    audit.meta("rows", created.rows);
    let outcome = Outcome {
        ready: Some(created),
        ..Outcome::default()
    };
    page(&state, &viewer, outcome).await
}

#[derive(Deserialize)]
pub struct PushForm {
    tool: String,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    addresses: Option<String>,
    /// Empty: use the saved key.
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    save_key: Option<String>,
}

fn tool_of(raw: &str) -> Result<Tool, WebError> {
    Tool::parse(raw).map_err(|e| WebError(ApiError::invalid("tool", e.0)))
}

pub async fn push(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    WebForm(form): WebForm<PushForm>,
) -> Result<Response, WebError> {
    let tool = tool_of(&form.tool)?;
    let (domain_id, mailbox_ids) = selection(&state, &form.domain_id, &form.addresses).await?;
    audit.resource("integration", tool);
    audit.meta("credential_export", format!("push:{tool}"));
    let req = PushRequest {
        mailbox_ids,
        domain_id,
        api_key: given(&form.api_key).map(str::to_owned),
        save_key: form.save_key.is_some(),
        options: PushOptions::default(),
    };
    let report = state
        .integrations
        .push(viewer.principal.user_id(), viewer.scope(), tool, req)
        .await?;
    audit.meta("created", report.created);
    audit.meta("already_exists", report.already_exists);
    audit.meta("failed", report.failed);
    let pushed = PushedFragment {
        report,
        label: tool.label(),
    };
    if htmx {
        return html(&pushed);
    }
    let outcome = Outcome {
        pushed: Some(pushed),
        ..Outcome::default()
    };
    page(&state, &viewer, outcome).await
}

pub async fn forget_key(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(tool): Path<String>,
) -> Result<Response, WebError> {
    let tool = tool_of(&tool)?;
    audit.resource("integration", tool);
    state
        .integrations
        .forget_key(viewer.principal.user_id(), tool)
        .await?;
    Ok(Redirect::to("/exports").into_response())
}
