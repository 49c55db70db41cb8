//! `/u/{token}`: the unsubscribe link in every message.
//!
//! Only a POST unsubscribes: the mail client's one-click request
//! (`List-Unsubscribe=One-Click`, RFC 8058 §3.1) or the button on the page
//! a GET shows. Corporate mail gateways (Mimecast, Proofpoint, Microsoft
//! Defender Safe Links) fetch every link of every incoming message, so a
//! GET that unsubscribed would suppress each such recipient unasked; RFC
//! 8058 §3.2 forbids exactly that. The pages are the same whether or not
//! the token is ours, so a link reveals nothing about who it names.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;

use crate::http::AppState;
use crate::inboxes::unsubscribe;

/// The one field of an RFC 8058 one-click POST, which the page's button
/// sends too.
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

const ASK: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Unsubscribe</title></head><body><h1>Unsubscribe</h1>\
<p>Stop receiving email from this sender?</p>\
<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">Unsubscribe</button></form></body></html>";

const DONE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Unsubscribed</title></head><body><h1>You are unsubscribed</h1>\
<p>You will not receive further email from this sender. If a message still \
arrives, reply to it with \"unsubscribe\".</p></body></html>";

const NOT_ONE_CLICK: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Unsubscribe</title></head><body><h1>Unsubscribe</h1>\
<p>Use the button on the unsubscribe page to stop receiving email from this sender.</p>\
</body></html>";

const TRY_AGAIN: &str =
    "<!doctype html><title>Try again</title><p>Please try again in a minute.</p>";

/// A person (or a link scanner) opened the link: the page with the button,
/// and nothing changes.
pub async fn confirm(Path(_token): Path<String>) -> Html<&'static str> {
    Html(ASK)
}

/// The one-click POST or the button: the recipient is suppressed for the
/// sending mailbox's owner. An unknown or damaged token gets the same page
/// as a good one.
pub async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> (StatusCode, Html<&'static str>) {
    if !is_one_click(&body) {
        return (StatusCode::BAD_REQUEST, Html(NOT_ONE_CLICK));
    }
    match unsubscribe::unsubscribe(&state.store, &state.vault, &token, state.clock.now()).await {
        Ok(_) => (StatusCode::OK, Html(DONE)),
        Err(e) => {
            tracing::error!(error = %e, "could not record an unsubscribe");
            (StatusCode::SERVICE_UNAVAILABLE, Html(TRY_AGAIN))
        }
    }
}

/// RFC 8058 §3.1: the body is `List-Unsubscribe=One-Click`, sent as
/// `application/x-www-form-urlencoded` or as a `multipart/form-data` field
/// of that name and value.
fn is_one_click(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    if text.split('&').any(|pair| pair.trim() == ONE_CLICK) {
        return true;
    }
    text.contains("name=\"List-Unsubscribe\"")
        && text.lines().any(|line| line.trim() == "One-Click")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_one_click_body_counts() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"a=b&List-Unsubscribe=One-Click"));
        let multipart = "--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n";
        assert!(is_one_click(multipart.as_bytes()));
        for other in [
            "",
            "List-Unsubscribe=Yes",
            "One-Click",
            "{\"List-Unsubscribe\":\"One-Click\"}",
        ] {
            assert!(!is_one_click(other.as_bytes()), "{other:?}");
        }
    }
}
