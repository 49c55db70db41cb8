//! The JSON API on the public listener. Handlers are thin: they extract,
//! call a plain function of the module that owns the logic, and map the
//! result; errors become the one JSON shape in [`error`].

pub mod audit_layer;
pub mod error;
pub mod extract;
pub mod ratelimit;

mod audit_logs;
mod auth;
mod domains;
mod exports;
mod health;
mod inboxes;
mod integrations;
pub(crate) mod settings;
pub(crate) mod tiers;
mod tokens;
mod unsubscribe;
mod users;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Auth;
use crate::clock::SharedClock;
use crate::config::TrustedProxies;
use crate::domains::service::Orchestrator;
use crate::exports::push::Integrations;
use crate::exports::service::Exports;
use crate::inboxes::service::Inboxes;
use crate::settings::LiveSettings;
use crate::store::Store;
use crate::vault::Vault;
use error::ApiError;
use ratelimit::Limiter;

/// Request bodies above this are refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// A request still unanswered after this gets 408, so a stuck client or
/// handler cannot hold a connection forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A push to a sequencer calls its API once or twice per mailbox and waits
/// out its rate limits, so it gets longer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: SharedClock,
    pub auth: Arc<Auth>,
    pub domains: Arc<Orchestrator>,
    pub inboxes: Arc<Inboxes>,
    pub exports: Arc<Exports>,
    pub integrations: Arc<Integrations>,
    pub vault: Arc<Vault>,
    /// The server settings in force, changed at run time by admins.
    pub settings: Arc<LiveSettings>,
    pub limiter: Arc<Limiter>,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// This server's configuration as the browser UI shows it.
    pub web: Arc<crate::web::ServerInfo>,
}

pub fn router(state: AppState) -> Router {
    // Their secret is in the request itself: limited per source address.
    let by_address = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/exports/{token}", get(exports::download));
    let by_caller = Router::new()
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/me/password", post(auth::change_password))
        .route("/me/usage", get(tiers::usage))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::delete))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", patch(users::update))
        .route("/tiers", get(tiers::list))
        .route("/tiers/{tier}", patch(tiers::update))
        .route("/audit-logs", get(audit_logs::list))
        .route("/settings", get(settings::show).patch(settings::update))
        .route("/domains", get(domains::list))
        .route("/domains/add", post(domains::add))
        .route(
            "/domains/{id}",
            get(domains::get)
                .patch(domains::update)
                .delete(domains::remove),
        )
        .route("/domains/{id}/verify", post(domains::verify))
        .route("/inboxes", get(inboxes::list))
        .route("/inboxes/bulk", post(inboxes::bulk))
        .route("/inboxes/export", post(exports::create))
        .route("/integrations", get(integrations::list))
        .route(
            "/integrations/{tool}",
            put(integrations::save_key).delete(integrations::forget_key),
        )
        .route("/integrations/{tool}/push", post(integrations::push))
        .route(
            "/inboxes/{id}",
            get(inboxes::get)
                .patch(inboxes::update)
                .delete(inboxes::delete),
        )
        .route(
            "/inboxes/{id}/reset-password",
            post(inboxes::reset_password),
        );
    // Outermost the limit, so a refused flood writes no audit rows.
    let audit = middleware::from_fn_with_state(state.clone(), audit_layer::middleware);
    let v1 = by_address
        .route_layer(audit.clone())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::per_address,
        ))
        .merge(
            by_caller
                .route_layer(audit)
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    ratelimit::per_caller,
                )),
        );
    let app = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route(
            "/u/{token}",
            get(unsubscribe::confirm)
                .post(unsubscribe::one_click)
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    ratelimit::per_address,
                )),
        )
        .nest("/api/v1", v1)
        .merge(crate::web::routes(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    with_common_layers(app)
}

/// What every listener shares: request ids, tracing, panics caught, and
/// every error in the JSON shape, including those axum produces itself
/// (unknown route, wrong method, body too large).
pub fn with_common_layers(router: Router) -> Router {
    router
        .fallback(not_found)
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Paths whose last segment is a bearer of its own (whoever holds the link
/// may download the export or unsubscribe the recipient), with the
/// segment replaced, so no log at any level holds one. The span is made
/// before routing, so the matched route is not known yet.
const TOKEN_PATHS: &[&str] = &["/u/", "/api/v1/exports/"];

fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match TOKEN_PATHS.iter().find(|p| path.starts_with(*p)) {
        Some(prefix) => format!("{prefix}{{token}}").into(),
        None => path.into(),
    }
}

/// No route: a page for a browser, the JSON error for everyone else.
async fn not_found(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    crate::web::not_found_page(&headers, uri.path())
        .unwrap_or_else(|| ApiError::from_status(axum::http::StatusCode::NOT_FOUND).into_response())
}

/// 408 for a request unanswered after [`REQUEST_TIMEOUT`] ([`PUSH_TIMEOUT`]
/// for a push).
async fn deadline(req: Request, next: Next) -> Response {
    let limit = if req.uri().path().ends_with("/push") {
        PUSH_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::from_status(axum::http::StatusCode::REQUEST_TIMEOUT).into_response(),
    }
}

async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    // Bare errors from routing, extractors and layers come as plain text or
    // nothing; pages we render on purpose (HTML) are left alone.
    let bare = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if (status.is_client_error() || status.is_server_error()) && bare {
        let mut fixed = ApiError::from_status(status).into_response();
        // Keep headers such as Allow on a 405.
        for (name, value) in res.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                fixed.headers_mut().insert(name, value.clone());
            }
        }
        return fixed;
    }
    res
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal(&"a request handler panicked").into_response()
}
