//! The signed-in person of a UI request. The session cookie holds a token
//! of the API's own session machinery ([`crate::auth::Auth::web_login`]),
//! so signing out, an admin disabling the account or resetting its password
//! ends the browser session as it ends an API login.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

use super::error::WebError;
use super::{Chrome, assets};
use crate::auth::{Credential, Principal};
use crate::http::audit_layer::AuditContext;
use crate::types::Role;

pub const COOKIE: &str = "ig_session";

/// Someone signed in, with the CSRF token of their session.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
}

impl Viewer {
    pub fn scope(&self) -> Option<uuid::Uuid> {
        self.principal.scope()
    }

    pub fn is_admin(&self) -> bool {
        self.principal.user.role == Role::Admin
    }

    /// The page frame for this person, with `nav` highlighted.
    pub fn chrome(&self, nav: &'static str) -> Chrome {
        let user = &self.principal.user;
        Chrome {
            signed_in: true,
            email: user.email.clone(),
            is_admin: self.is_admin(),
            csrf: self.csrf.clone(),
            nav,
            // The password is still the one the account was created with
            // (generated at first run, or chosen by an admin).
            change_password: user.updated_at == user.created_at,
            links: assets::links(),
        }
    }

    pub fn session(&self) -> Option<uuid::Uuid> {
        match self.principal.credential {
            Credential::Session(s) => Some(s),
            Credential::ApiToken(_) => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        let viewer = parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(WebError::sign_in)?;
        if let Some(audit) = parts.extensions.get::<AuditContext>() {
            audit.actor(viewer.principal.user_id());
        }
        Ok(viewer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Viewer>().cloned())
    }
}

/// The session cookie's value, if the request carries one.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session: unreadable by scripts, never sent with
/// a cross-site request, and over https only when the server is.
pub fn set_cookie(value: &str, secure: bool, max_age: i64) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> Option<HeaderValue> {
    set_cookie("", secure, 0)
}

/// Whether this is a request htmx made (it then wants a fragment).
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(is_htmx(&parts.headers)))
    }
}

pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}
