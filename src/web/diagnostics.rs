//! The diagnostics page (admins): the checks of `inboxgrove doctor`, run
//! when the page is asked for, secrets never shown (vaultwarden's admin
//! diagnostics are the model).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, html};
use crate::doctor::{self, Report, SELF_SIGNED_CONSEQUENCE};
use crate::http::AppState;
use crate::tls::Manifest;

#[derive(Template)]
#[template(path = "diagnostics.html")]
pub struct DiagnosticsPage {
    pub chrome: Chrome,
    pub report: Report,
    /// While no certificate bundle is issued: what the self-signed one
    /// breaks.
    pub self_signed: Option<&'static str>,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let report = doctor::diagnose(&state.diagnostics, &state.clock, &state.domains).await;
    // An unreadable manifest is one of the report's checks; here it counts
    // as no bundle.
    let issued = Manifest::load(&state.diagnostics.tls_dir).is_ok_and(|m| !m.bundles.is_empty());
    html(&DiagnosticsPage {
        chrome: viewer.chrome("settings"),
        report,
        self_signed: (!issued).then_some(SELF_SIGNED_CONSEQUENCE),
    })
}
