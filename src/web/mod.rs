//! Browser admin UI: askama templates and htmx fragments, embedded with
//! rust-embed, served on the public listener beside the JSON API. Handlers
//! are as thin as the API's and call the same service functions; one file
//! per page area.

pub mod assets;
mod audit;
mod auth;
mod chart;
mod dashboard;
mod diagnostics;
mod domains;
pub mod error;
mod exports;
mod inboxes;
mod security;

pub use security::not_found;
pub mod session;
mod settings;
pub mod views;
mod warmup;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::routes::{Access, Routes, Surface};
use crate::http::{AppState, audit_layer, ratelimit};
use error::WebError;

pub use views::{Chrome, ErrorPage, ErrorPartial};

/// The UI's routes, for [`crate::server`] to compose with the API's.
pub fn routes(state: &AppState) -> Routes<AppState> {
    use Access::{Admin, Anyone, Member};
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
    let login = Routes::new(Surface::Web)
        .get("/login", Anyone, auth::login_page)
        .post("/login", Anyone, auth::login)
        .layered(layered)
        .layered(|r| {
            r.route_layer(middleware::from_fn_with_state(
                state.clone(),
                ratelimit::per_address,
            ))
        });
    let pages = Routes::new(Surface::Web)
        .get("/", Anyone, || async { Redirect::to("/dashboard") })
        .post("/logout", Member, auth::logout)
        .get("/dashboard", Member, dashboard::show)
        .get("/domains", Member, domains::list)
        .post("/domains", Member, domains::add)
        .get("/domains/new", Member, domains::new)
        .get("/domains/{id}", Member, domains::show)
        .get("/domains/{id}/records", Member, domains::records)
        .post("/domains/{id}/verify", Member, domains::verify)
        .post("/domains/{id}/dmarc", Member, domains::dmarc)
        .post("/domains/{id}/egress", Member, domains::egress)
        .post("/domains/{id}/remove", Member, domains::remove)
        .get("/inboxes", Member, inboxes::list)
        .get("/inboxes/new", Member, inboxes::new)
        .post("/inboxes/new", Member, inboxes::bulk)
        .get("/inboxes/{id}", Member, inboxes::show)
        .post("/inboxes/{id}/pause", Member, inboxes::pause)
        .post("/inboxes/{id}/resume", Member, inboxes::resume)
        .post(
            "/inboxes/{id}/reset-password",
            Member,
            inboxes::reset_password,
        )
        .get("/inboxes/{id}/warmup", Member, warmup::show)
        .post("/inboxes/{id}/warmup", Member, warmup::update)
        .post("/inboxes/{id}/warmup/pause", Member, warmup::pause)
        .post("/inboxes/{id}/warmup/resume", Member, warmup::resume)
        .get("/warmup/peers", Member, warmup::peers)
        .post("/warmup/peers", Member, warmup::add_peer)
        .post("/warmup/peers/{id}/test", Member, warmup::test_peer)
        .post("/warmup/peers/{id}/delete", Member, warmup::delete_peer)
        .get("/exports", Member, exports::new)
        .post("/exports", Member, exports::create)
        .post("/exports/push", Member, exports::push)
        .post("/exports/keys/{tool}/forget", Member, exports::forget_key)
        .get("/settings", Member, settings::show)
        .post("/settings/server", Admin, settings::save_server)
        .post("/settings/password", Member, settings::change_password)
        .get("/tokens", Member, settings::tokens)
        .post("/tokens", Member, settings::create_token)
        .post("/tokens/{id}/revoke", Member, settings::revoke_token)
        .get("/users", Admin, settings::users)
        .post("/users", Admin, settings::create_user)
        .post("/users/{id}", Admin, settings::update_user)
        .post("/tiers/{tier}", Admin, settings::save_tier)
        .get("/diagnostics", Admin, diagnostics::show)
        .get("/audit", Member, audit::list)
        .get("/assets/{name}", Anyone, assets::serve)
        .layered(layered);
    login.merge(pages)
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
pub(crate) mod tests;
