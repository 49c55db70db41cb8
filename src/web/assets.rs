//! The UI's static files, embedded at build time (rust-embed) and served
//! with an ETag of their SHA-256; a request that names the hash (`?v=`, as
//! every page does) may cache the file for a year, since a new build with
//! a changed file changes the link.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::{EmbeddedFile, RustEmbed};

#[derive(RustEmbed)]
#[folder = "assets/"]
#[exclude = "*.md"]
struct Assets;

/// The query string that pins an asset's version: its hash, shortened.
fn version_of(file: &EmbeddedFile) -> String {
    hex::encode(&file.metadata.sha256_hash()[..8])
}

/// Links to the assets every page loads, with their versions; computed once.
#[derive(Debug)]
pub struct Links {
    pub css: String,
    pub htmx: String,
    pub app: String,
}

pub fn links() -> &'static Links {
    static LINKS: OnceLock<Links> = OnceLock::new();
    LINKS.get_or_init(|| {
        let link = |name: &str| match Assets::get(name) {
            Some(f) => format!("/assets/{name}?v={}", version_of(&f)),
            None => format!("/assets/{name}"),
        };
        Links {
            css: link("app.css"),
            htmx: link("htmx.min.js"),
            app: link("app.js"),
        }
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

pub async fn serve(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(file) = Assets::get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let version = version_of(&file);
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let pinned = query.as_deref() == Some(&format!("v={version}"));
    let cache = if pinned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(&name))],
            file.data.into_owned(),
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}
