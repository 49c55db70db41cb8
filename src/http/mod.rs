//! The HTTP layer the public listener (the JSON API and the browser UI)
//! and the control endpoint share: the application state, the JSON error
//! shape, the extractors, the audit and rate-limit layers, the common tower
//! layers and the body limit. It sits below [`crate::api`], [`crate::web`]
//! and [`crate::kumo`], which never depend on one another for it;
//! [`crate::server`] composes their routers.

pub mod audit_layer;
pub mod error;
pub mod extract;
pub mod ratelimit;
pub mod routes;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::auth::Auth;
use crate::clock::SharedClock;
use crate::config::{Settings, TrustedProxies};
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

/// What every handler and layer reaches, behind one `Arc`: axum clones the
/// state for each layer and extractor of each request, and cloning a dozen
/// handles (each an atomic count, the store's two channel senders
/// contended across cores) was a fifth of the CPU of `GET /api/v1/me`
/// (perf, README "Performance").
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
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
    pub info: Arc<ServerInfo>,
    /// Where the diagnostics page looks.
    pub diagnostics: Arc<crate::doctor::Target>,
    /// The ACME client, when `certificates = acme`.
    pub acme: Option<Arc<crate::acme::Acme>>,
    /// The warmup engine: settings, plans and peers.
    pub warmup: Arc<crate::warmup::engine::Engine>,
}

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

/// What every listener shares: request ids, tracing, panics caught, and
/// every error in the JSON shape, including those axum produces itself
/// (unknown route, wrong method, body too large). A listener that shows
/// browsers a page for an unknown route sets its own fallback.
pub fn with_common_layers(router: Router) -> Router {
    router
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
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
}

/// A version 4 UUID per request from the thread's generator: the same ids
/// as tower-http's `MakeRequestUuid`, without its `getrandom` system call
/// per request (an id needs to be unique, not secret).
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        axum::http::HeaderValue::from_str(&id.to_string())
            .ok()
            .map(RequestId::new)
    }
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
