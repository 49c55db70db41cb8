//! What every UI request passes through: the session cookie is resolved to
//! a [`Viewer`], every state-changing request must carry its session's CSRF
//! token (htmx sends it as a header from `hx-headers` on `<body>`, forms as
//! the hidden `_csrf` field), errors are rendered once, and every response
//! gets the security headers.

use askama::Template;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::error::Failure;
use super::session::{self, Viewer};
use super::{Chrome, ErrorPage, ErrorPartial};
use crate::auth::Credential;
use crate::http::error::ApiError;
use crate::http::{AppState, MAX_BODY};

pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "_csrf";

/// Scripts only from this server's files (no inline script, no eval), so
/// injected markup cannot run code even if escaping ever failed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let htmx = session::is_htmx(req.headers());
    let viewer = match session::cookie(req.headers()) {
        Some(token) => match state.auth.authenticate(token).await {
            // Only a browser session, never an API token put in a cookie.
            Ok(principal) => match principal.credential {
                Credential::Session(sid) => Some(Viewer {
                    csrf: state.auth.csrf_token(sid),
                    principal,
                }),
                Credential::ApiToken(_) => None,
            },
            Err(_) => None,
        },
        None => None,
    };
    let (mut parts, body) = req.into_parts();
    let body = if matches!(parts.method, Method::GET | Method::HEAD) {
        body
    } else {
        let bytes = match to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return finish(
                    failure(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"),
                    htmx,
                    viewer.as_ref(),
                );
            }
        };
        if let Err(why) = check_forgery(&parts.headers, &bytes, viewer.as_ref()) {
            return finish(failure(StatusCode::FORBIDDEN, why), htmx, viewer.as_ref());
        }
        Body::from(bytes)
    };
    if let Some(v) = &viewer {
        parts.extensions.insert(v.clone());
    }
    let res = next.run(Request::from_parts(parts, body)).await;
    finish(res, htmx, viewer.as_ref())
}

/// No route: a page for a browser, the JSON error for everyone else.
pub async fn not_found(headers: HeaderMap, uri: Uri) -> Response {
    not_found_page(&headers, uri.path())
        .unwrap_or_else(|| ApiError::from_status(StatusCode::NOT_FOUND).into_response())
}

/// A browser navigating to a path no route serves gets a page, not the
/// API's JSON: the API and the control endpoint keep their JSON 404.
fn not_found_page(headers: &HeaderMap, path: &str) -> Option<Response> {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let api = ["/api/", "/kumo/", "/u/"]
        .iter()
        .any(|p| path.starts_with(p));
    (browser && !api).then(|| {
        let missing = failure(
            StatusCode::NOT_FOUND,
            "there is no page at this address; use the menu above",
        );
        finish(missing, false, None)
    })
}

fn failure(status: StatusCode, message: &str) -> Response {
    let mut res = status.into_response();
    res.extensions_mut().insert(Failure {
        status,
        message: message.to_owned(),
    });
    res
}

/// Refuses a state-changing request that another site could have made: with
/// a session, it must carry the session's CSRF token; without one (signing
/// in), the browser must say it came from this site.
fn check_forgery(
    headers: &HeaderMap,
    body: &[u8],
    viewer: Option<&Viewer>,
) -> Result<(), &'static str> {
    let Some(viewer) = viewer else {
        let cross = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v != "same-origin" && v != "none");
        return if cross {
            Err("this form was sent from another site and was refused")
        } else {
            Ok(())
        };
    };
    let from_header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let from_form = || {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v)
    };
    let given = match from_header {
        Some(h) => Some(h.to_owned()),
        None => from_form(),
    };
    match given {
        Some(g) if same(g.as_bytes(), viewer.csrf.as_bytes()) => Ok(()),
        _ => Err(
            "this form is missing its security token (CSRF) or it has expired; reload the page and try again",
        ),
    }
}

/// Compares without stopping at the first difference, so the time taken
/// says nothing about how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Renders a failure, sends the signed-out to the login page, and adds the
/// security headers.
fn finish(mut res: Response, htmx: bool, viewer: Option<&Viewer>) -> Response {
    if let Some(f) = res.extensions_mut().remove::<Failure>() {
        res = render_failure(f, htmx, viewer);
    }
    let h = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Pages show account data: keep them out of shared caches and history.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

fn render_failure(f: Failure, htmx: bool, viewer: Option<&Viewer>) -> Response {
    if f.status == StatusCode::UNAUTHORIZED {
        let mut res = if htmx {
            StatusCode::OK.into_response()
        } else {
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
        };
        if htmx {
            res.headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/login"));
        }
        return res;
    }
    let rendered = if htmx {
        ErrorPartial {
            message: &f.message,
        }
        .render()
    } else {
        ErrorPage {
            chrome: viewer.map_or_else(Chrome::anonymous, |v| v.chrome("")),
            status: f.status.as_u16(),
            message: &f.message,
        }
        .render()
    };
    let html = rendered.unwrap_or_else(|_| f.message.clone());
    let mut res = (f.status, Html(html)).into_response();
    if htmx {
        // The partial goes into the page's message area, whatever the
        // element that asked expected.
        let h = res.headers_mut();
        h.insert("hx-retarget", HeaderValue::from_static("#flash"));
        h.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    }
    res
}
