//! Browser admin UI: askama templates and htmx fragments, embedded with
//! rust-embed, served on the public listener beside the JSON API. Handlers
//! are as thin as the API's and call the same service functions; one file
//! per page area.

pub mod assets;
mod audit;
mod auth;
mod dashboard;
mod domains;
pub mod error;
mod exports;
mod inboxes;
mod security;

pub use security::not_found_page;
pub mod session;
mod settings;
pub mod views;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::{AppState, audit_layer, ratelimit};
use crate::config::Settings;
use error::WebError;

pub use views::{Chrome, ErrorPage, ErrorPartial};

/// What the settings page shows of this server's start-time configuration,
/// and whether cookies must be `Secure`. Captured once at start: these
/// change with a restart; the run-time ones are `AppState::settings`.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub public_url: String,
    pub export_link_hours: u32,
    /// Served over https: the session cookie gets `Secure`.
    pub secure_cookies: bool,
}

impl ServerInfo {
    pub fn new(settings: &Settings, public_url: &str) -> Self {
        Self {
            public_url: public_url.to_owned(),
            export_link_hours: settings.export_link_hours,
            secure_cookies: public_url.starts_with("https://"),
        }
    }
}

pub fn routes(state: AppState) -> Router<AppState> {
    // Inner first: the audit row sees the viewer the outer layer found.
    let layered = |r: Router<AppState>| {
        r.route_layer(middleware::from_fn_with_state(
            state.clone(),
            audit_layer::middleware,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            security::layer,
        ))
    };
    // The password form is limited per source address, outside the audit
    // so a refused flood writes no rows.
    let login = layered(Router::new().route("/login", get(auth::login_page).post(auth::login)))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::per_address,
        ));
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/logout", post(auth::logout))
        .route("/dashboard", get(dashboard::show))
        .route("/domains", get(domains::list).post(domains::add))
        .route("/domains/new", get(domains::new))
        .route("/domains/{id}", get(domains::show))
        .route("/domains/{id}/records", get(domains::records))
        .route("/domains/{id}/verify", post(domains::verify))
        .route("/domains/{id}/dmarc", post(domains::dmarc))
        .route("/domains/{id}/egress", post(domains::egress))
        .route("/domains/{id}/remove", post(domains::remove))
        .route("/inboxes", get(inboxes::list))
        .route("/inboxes/new", get(inboxes::new).post(inboxes::bulk))
        .route("/inboxes/{id}", get(inboxes::show))
        .route("/inboxes/{id}/pause", post(inboxes::pause))
        .route("/inboxes/{id}/resume", post(inboxes::resume))
        .route(
            "/inboxes/{id}/reset-password",
            post(inboxes::reset_password),
        )
        .route("/exports", get(exports::new).post(exports::create))
        .route("/exports/push", post(exports::push))
        .route("/exports/keys/{tool}/forget", post(exports::forget_key))
        .route("/settings", get(settings::show))
        .route("/settings/server", post(settings::save_server))
        .route("/settings/password", post(settings::change_password))
        .route(
            "/tokens",
            get(settings::tokens).post(settings::create_token),
        )
        .route("/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/users", get(settings::users).post(settings::create_user))
        .route("/users/{id}", post(settings::update_user))
        .route("/tiers/{tier}", post(settings::save_tier))
        .route("/audit", get(audit::list))
        .route("/assets/{name}", get(assets::serve));
    login.merge(layered(pages))
}

/// A rendered template as an HTML response.
pub fn html<T: Template>(t: &T) -> Result<Response, WebError> {
    t.render()
        .map(|s| Html(s).into_response())
        .map_err(|e| WebError::internal(&e))
}

/// A resource id from the path; text that is no UUID names nothing.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, WebError> {
    Uuid::parse_str(raw).map_err(|_| WebError::not_found(what))
}

/// A form body (`application/x-www-form-urlencoded`). Fields the form does
/// not declare (the CSRF token, a button's name) are ignored.
pub struct WebForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for WebForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| WebError(ApiError::from_status(r.status())))?;
        serde_urlencoded::from_bytes(&bytes)
            .map(WebForm)
            .map_err(|e| WebError(ApiError::invalid("form", e.to_string())))
    }
}

/// An optional form or query field: an empty input means "not given".
pub fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
