//! Extractors that turn bad input into the JSON error shape: malformed JSON
//! is 400, a body over the limit 413, a wrong or unknown field 422 naming the
//! field, a missing or bad token 401.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use uuid::Uuid;

use super::AppState;
use super::audit_layer::AuditContext;
use super::error::ApiError;
use super::ratelimit::Checked;
use crate::auth::{AuthError, Principal};
use crate::config::TrustedProxies;

/// A JSON body, checked strictly.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json") || m.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::from_status(r.status()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document, naming the path of a field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the request body is empty; send a JSON object",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {e}"),
            )
        }
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.classify() != Category::Data {
            return malformed(inner);
        }
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(field, strip_position(&inner.to_string()))
    })?;
    de.end().map_err(malformed)?;
    Ok(value)
}

/// serde_json appends " at line L column C" to data errors; for a field
/// error the field name says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Query parameters; unknown or ill-typed ones are 422.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::invalid("query", e.body_text()))
    }
}

/// A resource id in the path. Text that is not a UUID names no resource, so
/// it is a 404 like any other id that does not exist.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("resource"))?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The client's address: the peer of the connection, or, when the peer is
/// one of `trusted_proxies`, the client its `X-Forwarded-For` names.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientIp(client_ip(parts, &state.trusted_proxies)))
    }
}

pub fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    trusted.client(peer, forwarded)
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter verified the bearer already on the API routes.
        let principal = match parts.extensions.remove::<Checked>() {
            Some(Checked::Verified(p)) => *p,
            Some(Checked::Rejected) => return Err(AuthError::InvalidToken.into()),
            None => {
                let token = bearer(parts).ok_or(AuthError::MissingToken)?;
                state.auth.authenticate(token).await?
            }
        };
        if let Some(audit) = parts.extensions.get::<AuditContext>() {
            audit.actor(principal.user_id());
        }
        Ok(principal)
    }
}
