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

#[derive(Template)]
#[template(path = "diagnostics.html")]
pub struct DiagnosticsPage {
    pub chrome: Chrome,
    pub report: Report,
    pub self_signed: &'static str,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let report = doctor::diagnose(&state.diagnostics, &state.clock, &state.domains).await;
    html(&DiagnosticsPage {
        chrome: viewer.chrome("settings"),
        report,
        self_signed: SELF_SIGNED_CONSEQUENCE,
    })
}
