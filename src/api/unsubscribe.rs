//! `/u/{token}`: the unsubscribe link in every message. A person who opens
//! it (GET) and a mail client's one-click POST (RFC 8058 §3.1) both
//! suppress the recipient for the sender's owner and get a plain page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;

use super::AppState;
use crate::inboxes::unsubscribe;

const DONE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Unsubscribed</title></head><body><h1>You are unsubscribed</h1>\
<p>You will not receive further email from this sender.</p></body></html>";

const UNKNOWN: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Link not recognised</title></head><body><h1>This link is not recognised</h1>\
<p>It may have been copied incompletely. Reply to the message with \"unsubscribe\" instead.</p>\
</body></html>";

async fn handle(state: &AppState, token: &str) -> (StatusCode, Html<&'static str>) {
    match unsubscribe::unsubscribe(&state.store, &state.vault, token, state.clock.now()).await {
        Ok(true) => (StatusCode::OK, Html(DONE)),
        Ok(false) => (StatusCode::NOT_FOUND, Html(UNKNOWN)),
        Err(e) => {
            tracing::error!(error = %e, "could not record an unsubscribe");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html("<!doctype html><title>Try again</title><p>Please try again in a minute.</p>"),
            )
        }
    }
}

/// A person opened the link. Unsubscribing on GET is what recipients
/// expect from a link in the footer; link scanners that prefetch it only
/// suppress an address that asked for cold mail to stop anyway.
pub async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> (StatusCode, Html<&'static str>) {
    handle(&state, &token).await
}

/// One-click: the mail client POSTs `List-Unsubscribe=One-Click`.
pub async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> (StatusCode, Html<&'static str>) {
    handle(&state, &token).await
}
