//! Settings: this server's configuration (the run-time server settings
//! editable by admins, the rest read-only, see README "Configuration"), the
//! person's own password, API tokens, and user management for admins.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::WebError;
use super::session::{self, Viewer};
use super::{Chrome, WebForm, given, html, parse_id};
use crate::auth::users::UserPatch;
use crate::http::AppState;
use crate::http::ServerInfo;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::settings::{Patch, View};
use crate::store::api_tokens::ApiToken;
use crate::store::tiers::Tier;
use crate::store::users::User;
use crate::tiers;
use crate::types::{EmailAddress, Password, Role, SubscriptionTier, TokenName};

#[derive(Template)]
#[template(path = "settings/show.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub info: ServerInfo,
    /// The run-time server settings in force.
    pub server: View,
    /// The server settings form's outcome: saved, or what was wrong.
    pub saved: bool,
    pub server_error: Option<String>,
    /// What was wrong with the password form.
    pub error: Option<String>,
}

impl SettingsPage {
    fn new(state: &AppState, viewer: &Viewer) -> Self {
        Self {
            chrome: viewer.chrome("settings"),
            info: (*state.info).clone(),
            server: state.settings.view(),
            saved: false,
            server_error: None,
            error: None,
        }
    }
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    html(&SettingsPage::new(&state, &viewer))
}

/// Saves the server settings form: every field or, on an error, none.
pub async fn save_server(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let outcome = match Patch::from_form(&form, &state.settings.view()) {
        Ok(patch) => {
            audit.settings_change(&patch);
            state.settings.update(patch).await
        }
        Err(e) => Err(e),
    };
    let mut page = SettingsPage::new(&state, &viewer);
    match outcome {
        Ok(_) => {
            page.saved = true;
            html(&page)
        }
        Err(e) => {
            let e = ApiError::from(e);
            page.server_error = Some(e.message().to_owned());
            Ok((e.status(), html(&page)?).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
    /// The checkbox: present when ticked.
    #[serde(default)]
    revoke_api_tokens: Option<String>,
}

/// Changing one's password ends every session of the account, this one
/// included, so the person signs in again with the new password.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<PasswordForm>,
) -> Result<Response, WebError> {
    audit.resource("user", viewer.principal.user_id());
    audit.meta("password", "changed");
    let outcome = match Password::parse(form.new_password) {
        Ok(new) => state
            .auth
            .change_own_password(
                &viewer.principal.user,
                form.current_password,
                new,
                form.revoke_api_tokens.is_some(),
                ip,
            )
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::invalid("new_password", e.0)),
    };
    match outcome {
        Ok(_) => {
            let mut res = Redirect::to("/login").into_response();
            if let Some(c) = session::clear_cookie(state.info.secure_cookies) {
                res.headers_mut().insert(header::SET_COOKIE, c);
            }
            Ok(res)
        }
        Err(e) => {
            let page = html(&SettingsPage {
                error: Some(e.message().to_owned()),
                ..SettingsPage::new(&state, &viewer)
            })?;
            Ok((e.status(), page).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "settings/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<ApiToken>,
    /// A token just created: its secret, shown this once.
    pub created: Option<String>,
}

pub async fn tokens(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let tokens = state.auth.list_api_tokens(&viewer.principal).await?;
    html(&TokensPage {
        chrome: viewer.chrome("settings"),
        tokens,
        created: None,
    })
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    #[serde(default)]
    expires_in_days: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<TokenForm>,
) -> Result<Response, WebError> {
    let name = TokenName::parse(&form.name).map_err(|e| ApiError::invalid("name", e.0))?;
    let days = given(&form.expires_in_days)
        .map(|d| {
            d.parse::<u32>()
                .map_err(|_| ApiError::invalid("expires_in_days", "enter a whole number of days"))
        })
        .transpose()?;
    let created = state
        .auth
        .create_api_token(&viewer.principal, name, days)
        .await?;
    audit.resource("api_token", created.token.id);
    audit.meta("name", created.token.name.as_str());
    let tokens = state.auth.list_api_tokens(&viewer.principal).await?;
    html(&TokensPage {
        chrome: viewer.chrome("settings"),
        tokens,
        created: Some(created.secret.expose_secret().to_owned()),
    })
}

pub async fn revoke_token(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "api token")?;
    audit.resource("api_token", id);
    state.auth.delete_api_token(&viewer.principal, id).await?;
    Ok(Redirect::to("/tokens").into_response())
}

#[derive(Template)]
#[template(path = "settings/users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<User>,
    /// Each plan's limits, which the page edits.
    pub tiers: Vec<Tier>,
    /// What was wrong with a plan's form, and which plan it was.
    pub tier_error: Option<(SubscriptionTier, String)>,
}

impl UsersPage {
    pub async fn load(state: &AppState, viewer: &Viewer) -> Result<Self, WebError> {
        Ok(Self {
            chrome: viewer.chrome("settings"),
            users: state.auth.accounts.list().await?,
            tiers: tiers::list(&state.store).await?,
            tier_error: None,
        })
    }
}

pub async fn users(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    html(&UsersPage::load(&state, &viewer).await?)
}

#[derive(Deserialize)]
pub struct NewUserForm {
    email: String,
    password: SecretString,
    role: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<NewUserForm>,
) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let email =
        EmailAddress::parse(form.email.trim()).map_err(|e| ApiError::invalid("email", e.0))?;
    let password =
        Password::parse(form.password).map_err(|e| ApiError::invalid("password", e.0))?;
    let role = Role::parse(&form.role).map_err(|e| ApiError::invalid("role", e.0))?;
    audit.meta("email", email.as_str());
    let user = state
        .auth
        .accounts
        .create(email, password, role, SubscriptionTier::Free)
        .await?;
    audit.resource("user", user.id);
    Ok(Redirect::to("/users").into_response())
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
    #[serde(default)]
    may_use_server_token: Option<String>,
    #[serde(default)]
    subscription_tier: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
    WebForm(form): WebForm<UserForm>,
) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let id = parse_id(&id, "user")?;
    audit.resource("user", id);
    let role = given(&form.role)
        .map(Role::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("role", e.0))?;
    let disabled = given(&form.disabled).map(|d| d == "true");
    let may_use_server_token = given(&form.may_use_server_token).map(|d| d == "true");
    let subscription_tier = given(&form.subscription_tier)
        .map(SubscriptionTier::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("subscription_tier", e.0))?;
    for (field, changed) in [
        ("role", role.is_some()),
        ("disabled", disabled.is_some()),
        ("may_use_server_token", may_use_server_token.is_some()),
        ("subscription_tier", subscription_tier.is_some()),
    ] {
        if changed {
            audit.meta(field, "changed");
        }
    }
    let patch = UserPatch {
        role,
        disabled,
        may_use_server_token,
        subscription_tier,
        ..Default::default()
    };
    state.auth.accounts.update(id, patch).await?;
    Ok(Redirect::to("/users").into_response())
}

/// A plan's form: each limit a whole number, or empty for unlimited.
#[derive(Deserialize)]
pub struct TierForm {
    domains: String,
    mailboxes: String,
    daily_volume: String,
}

/// Saves one plan's limits, all or none; a bad one is shown in its form.
pub async fn save_tier(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(tier): Path<String>,
    WebForm(form): WebForm<TierForm>,
) -> Result<Response, WebError> {
    viewer.principal.require_admin()?;
    let tier = tiers::parse_tier(&tier)?;
    audit.resource("tier", tier);
    // The same parse as the API: text that is not a number is refused
    // naming its field.
    let body = [
        ("domains", &form.domains),
        ("mailboxes", &form.mailboxes),
        ("daily_volume", &form.daily_volume),
    ]
    .into_iter()
    .map(|(field, text)| {
        let text = text.trim();
        let value = match text.parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) if text.is_empty() => serde_json::Value::Null,
            Err(_) => text.into(),
        };
        (field.to_owned(), value)
    })
    .collect();
    let outcome = match tiers::parse_changes(body) {
        Ok(changes) => {
            audit.tier_change(&changes);
            tiers::update(&state.store, &state.clock, tier, changes).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/users#plans").into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            let mut page = UsersPage::load(&state, &viewer).await?;
            page.tier_error = Some((tier, e.message().to_owned()));
            Ok((e.status(), html(&page)?).into_response())
        }
    }
}
