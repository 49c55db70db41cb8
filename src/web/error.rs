//! UI errors. Every module error already maps to an [`ApiError`] (status
//! and plain-words message); a handler's error travels in the response's
//! extensions and [`super::security::layer`] renders it once, as a full
//! page or, for an htmx request, as a partial swapped into the page's
//! message area. A missing or ended session sends the person to sign in.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

#[derive(Debug)]
pub struct WebError(pub ApiError);

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl WebError {
    pub fn sign_in() -> Self {
        Self(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in to continue",
        ))
    }

    pub fn not_found(what: &str) -> Self {
        Self(ApiError::not_found(what))
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        Self(ApiError::internal(cause))
    }
}

/// What the rendering layer needs of a failed request.
#[derive(Clone, Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let failure = Failure {
            status: self.0.status(),
            message: self.0.message().to_owned(),
        };
        let mut res = failure.status.into_response();
        res.extensions_mut().insert(failure);
        res
    }
}
