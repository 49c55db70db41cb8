//! Signing in and out of the browser UI.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::WebError;
use super::session::{self, Viewer};
use super::{Chrome, WebForm, html};
use crate::auth::session::WEB_TTL;
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::types::EmailAddress;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub email: String,
    pub error: Option<String>,
}

pub async fn login_page(viewer: Option<Viewer>) -> Result<Response, WebError> {
    if viewer.is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    html(&LoginPage {
        chrome: Chrome::anonymous(),
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: SecretString,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    WebForm(form): WebForm<LoginForm>,
) -> Result<Response, WebError> {
    let refused = |status: StatusCode, message: String| -> Result<Response, WebError> {
        let page = html(&LoginPage {
            chrome: Chrome::anonymous(),
            email: form.email.clone(),
            error: Some(message),
        })?;
        Ok((status, page).into_response())
    };
    let email = match EmailAddress::parse(form.email.trim()) {
        Ok(e) => e,
        Err(_) => {
            return refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Enter the email address of your account.".into(),
            );
        }
    };
    audit.meta("email", email.as_str());
    let (user, outcome) = state
        .auth
        .web_login(&email, form.password.clone(), ip)
        .await;
    if let Some(user) = user {
        audit.actor(user);
        audit.resource("user", user);
    }
    match outcome {
        Ok(web) => {
            let cookie = session::set_cookie(
                web.cookie.expose_secret(),
                state.info.secure_cookies,
                WEB_TTL.num_seconds(),
            )
            .ok_or_else(|| WebError::internal(&"session cookie is not a header value"))?;
            Ok((
                StatusCode::SEE_OTHER,
                [(header::SET_COOKIE, cookie)],
                [(header::LOCATION, "/dashboard")],
            )
                .into_response())
        }
        Err(e) => {
            let e = ApiError::from(e);
            refused(e.status(), e.message().to_owned())
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let session = state.auth.logout(&viewer.principal).await?;
    audit.resource("session", session);
    let mut res = Redirect::to("/login").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Some(c) = session::clear_cookie(state.info.secure_cookies) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(res)
}
