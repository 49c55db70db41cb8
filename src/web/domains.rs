//! Domain pages: the list, the add form (Cloudflare or manual DNS), and a
//! domain's page with its records' live state, polled while they settle.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::error::WebError;
use super::session::{Htmx, Viewer};
use super::{Chrome, WebForm, given, html, parse_id};
use crate::domains::model::DomainStatus;
use crate::domains::name::DomainName;
use crate::domains::ownership;
use crate::domains::plan::{DmarcPolicy, Purpose};
use crate::domains::service::{AddDomain, DomainPatch, DomainView};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::store::domains::RecordRow;
use crate::tls::mail::UNCOVERED;
use crate::tls::{Bundle, Manifest};

#[derive(Template)]
#[template(path = "domains/list.html")]
pub struct ListPage {
    pub chrome: Chrome,
    pub items: Vec<DomainView>,
}

pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let items = state.domains.list(viewer.scope()).await?;
    html(&ListPage {
        chrome: viewer.chrome("domains"),
        items,
    })
}

/// The add form, as typed (never the token, which is not shown again).
#[derive(Deserialize, Default)]
pub struct AddForm {
    pub domain_name: String,
    #[serde(default)]
    pub cloudflare_api_token: Option<String>,
    #[serde(default)]
    pub cloudflare_zone_id: Option<String>,
    #[serde(default)]
    pub tracking_domain: Option<String>,
    #[serde(default)]
    pub dmarc_policy: Option<String>,
}

#[derive(Template)]
#[template(path = "domains/new.html")]
pub struct NewPage {
    pub chrome: Chrome,
    pub form: AddForm,
    pub error: Option<String>,
    /// The server's token would publish this viewer's domain.
    pub has_server_token: bool,
    /// The server has a token, but it does not publish this viewer's
    /// domains ([`ownership`]).
    pub server_token_withheld: bool,
}

impl NewPage {
    fn for_viewer(state: &AppState, viewer: &Viewer, form: AddForm, error: Option<String>) -> Self {
        let set = state.settings.get().domains.cloudflare_api_token.is_some();
        let may = ownership::may_use_server_token(&viewer.principal.user);
        Self {
            chrome: viewer.chrome("domains"),
            form,
            error,
            has_server_token: set && may,
            server_token_withheld: set && !may,
        }
    }
}

pub async fn new(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    html(&NewPage::for_viewer(
        &state,
        &viewer,
        AddForm::default(),
        None,
    ))
}

pub async fn add(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<AddForm>,
) -> Result<Response, WebError> {
    let request = parse_add(&form);
    let outcome = match request {
        Ok(req) => {
            audit.meta("domain", req.domain_name.as_str());
            state
                .domains
                .add(viewer.principal.user_id(), req)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(view) => {
            audit.resource("domain", view.domain_id);
            Ok(Redirect::to(&format!("/domains/{}", view.domain_id)).into_response())
        }
        Err(e) => {
            let form = AddForm {
                cloudflare_api_token: None,
                ..form
            };
            let error = Some(e.message().to_owned());
            let page = html(&NewPage::for_viewer(&state, &viewer, form, error))?;
            Ok((e.status(), page).into_response())
        }
    }
}

fn parse_add(form: &AddForm) -> Result<AddDomain, ApiError> {
    let domain_name = DomainName::parse(form.domain_name.trim())
        .map_err(|e| ApiError::invalid("domain_name", e.0))?;
    let dmarc_policy = given(&form.dmarc_policy)
        .map(DmarcPolicy::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("dmarc_policy", e.0))?;
    Ok(AddDomain {
        domain_name,
        cloudflare_api_token: given(&form.cloudflare_api_token)
            .map(|t| SecretString::from(t.to_owned())),
        cloudflare_zone_id: given(&form.cloudflare_zone_id).map(str::to_owned),
        cloudflare_account_id: None,
        tracking_domain: given(&form.tracking_domain).map(str::to_owned),
        dmarc_policy,
    })
}

/// The records table of a domain; polls itself while records settle.
#[derive(Template)]
#[template(path = "domains/_records.html")]
pub struct RecordsFragment {
    pub id: Uuid,
    pub status: DomainStatus,
    pub manual: bool,
    /// Who publishes the records, and why not InboxGrove when it does not.
    pub note: String,
    pub last_error: Option<String>,
    pub records: Vec<RecordRow>,
}

impl RecordsFragment {
    pub fn of(view: &DomainView) -> Self {
        Self {
            id: view.domain_id,
            status: view.domain.status,
            manual: view.domain.dns_mode == crate::domains::model::DnsMode::Manual,
            note: view.dns_note.clone(),
            last_error: view.domain.last_error.clone(),
            records: view.records.clone(),
        }
    }

    /// Still moving: the page keeps asking for fresh state.
    pub fn polling(&self) -> bool {
        !matches!(self.status, DomainStatus::Active | DomainStatus::Failed)
    }
}

#[derive(Template)]
#[template(path = "domains/show.html")]
pub struct ShowPage {
    pub chrome: Chrome,
    pub view: DomainView,
    pub records: RecordsFragment,
    /// The server's public addresses the domain may send from.
    pub egress_choices: Vec<String>,
    /// The one it is bound to, or "" for the default.
    pub egress_current: String,
    pub certificate: MailHostCertificate,
}

/// Whether the domain's mail host has a real certificate: read from the
/// manifest each time the page is shown, so it changes when one is issued.
pub struct MailHostCertificate {
    /// `None` when the domain plans no mail host record.
    pub host: Option<String>,
    pub bundle: Option<Bundle>,
    /// The manifest could not be read.
    pub error: Option<String>,
    pub uncovered: &'static str,
}

impl MailHostCertificate {
    fn of(view: &DomainView, tls_dir: &std::path::Path) -> Self {
        let host = view
            .records
            .iter()
            .find(|r| r.record.purpose == Purpose::MailHost)
            .map(|r| r.record.name.clone());
        let (bundle, error) = match (&host, Manifest::load(tls_dir)) {
            (Some(h), Ok(m)) => (m.for_host(h).cloned(), None),
            (None, Ok(_)) => (None, None),
            (_, Err(e)) => (None, Some(e.to_string())),
        };
        Self {
            host,
            bundle,
            error,
            uncovered: UNCOVERED,
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    let view = state.domains.view(id, viewer.scope()).await?;
    html(&ShowPage {
        chrome: viewer.chrome("domains"),
        records: RecordsFragment::of(&view),
        egress_choices: state
            .domains
            .egress_choices()
            .iter()
            .map(ToString::to_string)
            .collect(),
        egress_current: view
            .domain
            .egress_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        certificate: MailHostCertificate::of(&view, &state.diagnostics.tls_dir),
        view,
    })
}

pub async fn records(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    let view = state.domains.view(id, viewer.scope()).await?;
    html(&RecordsFragment::of(&view))
}

pub async fn verify(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    audit.resource("domain", id);
    state.domains.verify_now(id, viewer.scope()).await?;
    if htmx {
        let view = state.domains.view(id, viewer.scope()).await?;
        return html(&RecordsFragment::of(&view));
    }
    Ok(Redirect::to(&format!("/domains/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct DmarcForm {
    dmarc_policy: String,
}

pub async fn dmarc(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
    WebForm(form): WebForm<DmarcForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    audit.resource("domain", id);
    let policy = DmarcPolicy::parse(&form.dmarc_policy)
        .map_err(|e| ApiError::invalid("dmarc_policy", e.0))?;
    let patch = DomainPatch {
        dmarc_policy: Some(policy),
        ..Default::default()
    };
    state.domains.update(id, viewer.scope(), patch).await?;
    Ok(Redirect::to(&format!("/domains/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct EgressForm {
    /// An address, or empty for the default.
    egress_ip: String,
}

pub async fn egress(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
    WebForm(form): WebForm<EgressForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    audit.resource("domain", id);
    let ip = match form.egress_ip.trim() {
        "" => None,
        text => Some(text.parse().map_err(|_| {
            ApiError::invalid("egress_ip", format!("{text:?} is not an IP address"))
        })?),
    };
    state.domains.set_egress_ip(id, viewer.scope(), ip).await?;
    Ok(Redirect::to(&format!("/domains/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    remove_records: Option<String>,
}

pub async fn remove(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
    WebForm(form): WebForm<RemoveForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "domain")?;
    audit.resource("domain", id);
    state
        .domains
        .remove(
            id,
            viewer.scope(),
            form.force.is_some(),
            form.remove_records.is_some(),
        )
        .await?;
    Ok(Redirect::to("/domains").into_response())
}
