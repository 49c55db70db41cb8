//! The export page: choose mailboxes (a whole domain, or addresses) and a
//! format, then download the CSV through the credential-export service.
//! Pushing straight into Instantly/Smartlead/Reply.io arrives with that API.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, WebForm, given, html, parse_id};
use crate::api::AppState;
use crate::api::audit_layer::AuditContext;
use crate::api::error::ApiError;
use crate::exports::formats::Format;
use crate::exports::service::{ExportCreated, ExportRequest};
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
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    ready: Option<ExportCreated>,
) -> Result<Response, WebError> {
    let scope = viewer.scope();
    let domains = state
        .store
        .read(move |c| store::domains::list(c, scope))
        .await?;
    html(&ExportPage {
        chrome: viewer.chrome("exports"),
        domains,
        formats: FORMATS,
        link: ready
            .as_ref()
            .map(|r| local_link(&r.file_url))
            .unwrap_or_default(),
        ready,
    })
}

pub async fn new(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    page(&state, &viewer, None).await
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
    let (domain_id, mailbox_ids) = match given(&form.addresses) {
        Some(text) => {
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
            (None, Some(ids))
        }
        None => {
            let domain = given(&form.domain_id).ok_or_else(|| {
                ApiError::invalid("domain_id", "choose a domain or list addresses")
            })?;
            (Some(parse_id(domain, "domain")?), None)
        }
    };
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
    page(&state, &viewer, Some(created)).await
}
