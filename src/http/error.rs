//! The one JSON error shape every failure answers with:
//! `{"error":{"code":"snake_case","message":"what happened and what to do"}}`
//! (plus `"field"` when one input field is at fault). Module errors are
//! mapped to HTTP here, once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::domains::provider::ProviderError;
use crate::domains::service::DomainError;
use crate::exports::push::PushError;
use crate::exports::service::ExportError;
use crate::inboxes::naming::NamingError;
use crate::inboxes::service::InboxError;
use crate::settings::SettingsError;
use crate::store::StoreError;
use crate::tiers::TierError;
use crate::warmup::engine::WarmupError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 422 naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        Self {
            field: Some(field),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found; check the id, and that it is yours"),
        )
    }

    pub fn too_many(retry_after: u64, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// Logs the real cause and answers without internals.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle this request; the X-Request-Id of this response finds it in the server log",
        )
    }

    /// A fault that may pass (a store or datasource that failed): logs
    /// the cause and answers 503, which callers take as "try again later",
    /// never as a "no".
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "temporary failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server could not answer for now; try again later (the X-Request-Id of this response finds the cause in the server log)",
        )
    }

    /// The generic error for a bare status produced outside our handlers
    /// (routing, body limits, panics).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => (
                "not_found",
                "no such endpoint; see the API overview in README.md",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this endpoint does not accept that HTTP method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is over 1 MiB; send less per request",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as JSON with 'Content-Type: application/json'",
            ),
            StatusCode::BAD_REQUEST => ("bad_request", "the request could not be read"),
            StatusCode::REQUEST_TIMEOUT => (
                "timeout",
                "the request took too long; try again, or send less per request",
            ),
            s if s.is_server_error() => return Self::internal(&format!("bare {s} response")),
            _ => ("error", "the request failed"),
        };
        Self::new(status, code, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What happened, in the words the JSON body uses (the UI shows it).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let mut res = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(msg) => Self::new(StatusCode::CONFLICT, "conflict", msg),
            other => Self::internal(&other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            AuthError::InvalidCredentials => Self::new(S::UNAUTHORIZED, "invalid_credentials", msg),
            AuthError::Disabled => Self::new(S::FORBIDDEN, "account_disabled", msg),
            AuthError::Throttled(secs) => Self::too_many(secs, "login_throttled", msg),
            AuthError::MissingToken => Self::new(S::UNAUTHORIZED, "unauthenticated", msg),
            AuthError::InvalidToken => Self::new(S::UNAUTHORIZED, "invalid_token", msg),
            AuthError::InvalidRefresh => Self::new(S::UNAUTHORIZED, "invalid_refresh_token", msg),
            AuthError::RefreshReused => Self::new(S::UNAUTHORIZED, "refresh_token_reused", msg),
            AuthError::NotASession => Self::new(S::BAD_REQUEST, "not_a_session", msg),
            AuthError::AdminOnly => Self::new(S::FORBIDDEN, "forbidden", msg),
            AuthError::Invalid { field, message } => Self::invalid(field, message),
            AuthError::LastAdmin => Self::new(S::CONFLICT, "last_admin", msg),
            AuthError::Store(e) => e.into(),
            AuthError::Vault(e) => Self::internal(&e),
            AuthError::Hash(e) => Self::internal(&e),
            AuthError::Sync(e) => Self::unavailable(&e),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            DomainError::Invalid { field, message } => Self::invalid(field, message),
            DomainError::NoPublicIp => Self {
                field: Some("public_ipv4".into()),
                ..Self::new(S::UNPROCESSABLE_ENTITY, "public_ip_missing", msg)
            },
            DomainError::NotFound => Self::not_found("domain"),
            DomainError::HasMailboxes(_) => Self::new(S::CONFLICT, "domain_has_mailboxes", msg),
            DomainError::Token(_) => Self {
                field: Some("cloudflare_api_token".into()),
                ..Self::new(S::UNPROCESSABLE_ENTITY, "dns_provider_token_refused", msg)
            },
            DomainError::Provider(p @ ProviderError::ServerTokenNotAllowed(_)) => {
                Self::new(S::FORBIDDEN, "server_token_not_allowed", p.to_string())
            }
            DomainError::Provider(p) if p.is_transient() => Self::new(
                S::SERVICE_UNAVAILABLE,
                "dns_provider_unavailable",
                p.to_string(),
            ),
            DomainError::Provider(p) => {
                Self::new(S::BAD_GATEWAY, "dns_provider_error", p.to_string())
            }
            DomainError::Store(e) => e.into(),
            DomainError::Tier(e) => e.into(),
            DomainError::Vault(e) => Self::internal(&e),
            DomainError::Key(e) => Self::internal(&e),
            DomainError::Sync(e) => Self::unavailable(&e),
        }
    }
}

impl From<InboxError> for ApiError {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::Invalid { field, message } => Self::invalid(field, message),
            InboxError::NotFound => Self::not_found("mailbox"),
            InboxError::DomainNotFound => Self::not_found("domain"),
            InboxError::Naming(n) => {
                let field = match &n {
                    NamingError::QuantityMismatch { .. } | NamingError::Exhausted { .. } => {
                        "quantity".to_owned()
                    }
                    NamingError::CustomNotWanted { .. } => "names".to_owned(),
                    NamingError::Invalid { index, .. } => format!("names[{index}]"),
                };
                Self::invalid(field, n.to_string())
            }
            InboxError::Store(e) => e.into(),
            InboxError::Tier(e) => e.into(),
            InboxError::Sync(e) => Self::unavailable(&e),
            InboxError::Hash(e) => Self::internal(&e),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        let msg = e.to_string();
        match e {
            ExportError::Invalid { field, message } => Self::invalid(field, message),
            ExportError::MailboxNotFound => Self::not_found("mailbox"),
            ExportError::DomainNotFound => Self::not_found("domain"),
            ExportError::UnknownLink => Self::new(StatusCode::NOT_FOUND, "not_found", msg),
            ExportError::Expired => Self::new(StatusCode::GONE, "expired", msg),
            ExportError::Store(e) => e.into(),
            ExportError::Csv(e) => Self::internal(&e),
        }
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> Self {
        let msg = e.to_string();
        match e {
            PushError::Invalid { field, message } => Self::invalid(field, message),
            PushError::NoKey(_) => Self {
                field: Some("api_key".into()),
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "api_key_missing", msg)
            },
            PushError::KeyNotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", msg),
            PushError::Export(e) => e.into(),
            PushError::Store(e) => e.into(),
            PushError::Vault(e) => Self::internal(&e),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        let msg = e.to_string();
        match e {
            SettingsError::Invalid { field, message } => Self::invalid(field, message),
            SettingsError::Pinned(key) => Self {
                field: Some(key.name().into()),
                ..Self::new(StatusCode::CONFLICT, "setting_pinned", msg)
            },
            SettingsError::Store(e) => e.into(),
            SettingsError::Vault(e) => Self::internal(&e),
        }
    }
}

impl From<TierError> for ApiError {
    fn from(e: TierError) -> Self {
        let msg = e.to_string();
        match e {
            // 403: the request is well formed, the plan does not allow it.
            TierError::LimitReached { resource, .. } => Self {
                field: Some(resource.as_str().into()),
                ..Self::new(StatusCode::FORBIDDEN, "plan_limit_reached", msg)
            },
            TierError::Invalid { field, message } => Self::invalid(field, message),
            TierError::Store(e) => e.into(),
        }
    }
}

impl From<WarmupError> for ApiError {
    fn from(e: WarmupError) -> Self {
        match e {
            WarmupError::Invalid { field, message } => Self::invalid(field, message),
            WarmupError::NotFound(what) => Self::not_found(what),
            // The server the person named refused or could not be reached:
            // their input to fix, said in the message.
            WarmupError::Unreachable(msg) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "peer_login_failed",
                format!(
                    "{msg}; check the servers, ports, login and password (for Gmail and Outlook, an app password)"
                ),
            ),
            WarmupError::Store(e) => e.into(),
            WarmupError::Tls(e) => Self::unavailable(&e),
            WarmupError::Sealed(e) => Self::unavailable(&e),
        }
    }
}
