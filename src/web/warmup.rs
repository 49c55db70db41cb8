//! Warmup pages: an inbox's warmup (the ramp chart, today's plan, the
//! settings form, pause and resume) and the peer accounts (add, test,
//! remove). They call the same engine functions as the JSON API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::WebError;
use super::session::Viewer;
use super::{Chrome, WebForm, given, html, parse_id};
use crate::http::AppState;
use crate::http::audit_layer::AuditContext;
use crate::http::error::ApiError;
use crate::store::warmup::peers::Peer;
use crate::warmup::peers::NewPeer;
use crate::warmup::service::Overview;
use crate::warmup::settings::Ramp;

#[derive(Template)]
#[template(path = "warmup/show.html")]
pub struct ShowPage {
    pub chrome: Chrome,
    pub o: Overview,
    /// Server-rendered, only numbers and dates in it.
    pub chart: String,
    pub error: Option<String>,
    pub linear: Option<(u32, u32, u32)>,
    pub centres: String,
}

fn page(viewer: &Viewer, o: Overview, error: Option<String>) -> ShowPage {
    let mut days = o.history.clone();
    days.reverse();
    let linear = match o.settings.ramp {
        Ramp::Linear {
            start,
            increment,
            ceiling,
        } => Some((start, increment, ceiling)),
        Ramp::Spec => None,
    };
    let centres = o
        .settings
        .send_centres
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect::<Vec<_>>()
        .join(", ");
    ShowPage {
        chrome: viewer.chrome("inboxes"),
        chart: super::chart::ramp_svg(&days),
        o,
        error,
        linear,
        centres,
    }
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "mailbox")?;
    let o = state.warmup.overview(id, viewer.scope()).await?;
    html(&page(&viewer, o, None))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    enabled: Option<String>,
    preset: String,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    increment: Option<String>,
    #[serde(default)]
    ceiling: Option<String>,
    variation_pct: String,
    reply_rate_pct: String,
    maintenance: String,
    #[serde(default)]
    weekdays_only: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    send_centres: String,
}

fn number(field: &'static str, raw: &str) -> Result<Value, ApiError> {
    raw.trim()
        .parse::<u32>()
        .map(Value::from)
        .map_err(|_| ApiError::invalid(field, "enter a whole number"))
}

/// The form as the JSON merge patch the API takes.
fn patch_of(form: &SettingsForm) -> Result<Value, ApiError> {
    let mut p = Map::new();
    p.insert("enabled".into(), json!(form.enabled.is_some()));
    let ramp = match form.preset.as_str() {
        "spec" => json!({ "preset": "spec" }),
        "linear" => {
            let field = |name: &'static str, v: &Option<String>| {
                number(
                    name,
                    given(v).ok_or_else(|| ApiError::invalid(name, "enter a whole number"))?,
                )
            };
            json!({
                "preset": "linear",
                "start": field("start", &form.start)?,
                "increment": field("increment", &form.increment)?,
                "ceiling": field("ceiling", &form.ceiling)?,
            })
        }
        _ => {
            return Err(ApiError::invalid(
                "preset",
                "choose the spec schedule or a linear ramp",
            ));
        }
    };
    p.insert("ramp".into(), ramp);
    p.insert(
        "variation_pct".into(),
        number("variation_pct", &form.variation_pct)?,
    );
    p.insert(
        "reply_rate_pct".into(),
        number("reply_rate_pct", &form.reply_rate_pct)?,
    );
    p.insert(
        "maintenance".into(),
        number("maintenance", &form.maintenance)?,
    );
    p.insert("weekdays_only".into(), json!(form.weekdays_only.is_some()));
    p.insert(
        "timezone".into(),
        given(&form.timezone).map_or(Value::Null, |t| json!(t)),
    );
    let mut centres = Vec::new();
    for t in form
        .send_centres
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let time = chrono::NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| {
            ApiError::invalid("send_centres", format!("{t:?} is not a time like 09:00"))
        })?;
        centres.push(json!(time));
    }
    p.insert("send_centres".into(), Value::Array(centres));
    Ok(Value::Object(p))
}

pub async fn update(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
    WebForm(form): WebForm<SettingsForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "mailbox")?;
    audit.resource("mailbox", id);
    let outcome = match patch_of(&form) {
        Ok(patch) => state
            .warmup
            .update(id, viewer.scope(), patch)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/inboxes/{id}/warmup")).into_response()),
        Err(e) => {
            let o = state.warmup.overview(id, viewer.scope()).await?;
            let body = html(&page(&viewer, o, Some(e.message().to_owned())))?;
            Ok((e.status(), body).into_response())
        }
    }
}

async fn set_paused(
    state: &AppState,
    audit: &AuditContext,
    viewer: &Viewer,
    id: &str,
    paused: bool,
) -> Result<Response, WebError> {
    let id = parse_id(id, "mailbox")?;
    audit.resource("mailbox", id);
    state.warmup.set_paused(id, viewer.scope(), paused).await?;
    Ok(Redirect::to(&format!("/inboxes/{id}/warmup")).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    set_paused(&state, &audit, &viewer, &id, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    set_paused(&state, &audit, &viewer, &id, false).await
}

#[derive(Template)]
#[template(path = "warmup/peers.html")]
pub struct PeersPage {
    pub chrome: Chrome,
    /// Members may test and remove only their own peers.
    pub me: uuid::Uuid,
    pub peers: Vec<Peer>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub form: PeerForm,
}

#[derive(Deserialize, Default)]
pub struct PeerForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub imap_host: String,
    #[serde(default)]
    pub imap_port: String,
    #[serde(default)]
    pub smtp_host: String,
    #[serde(default)]
    pub smtp_port: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    pub shared: Option<String>,
    #[serde(default)]
    pub receive_only: Option<String>,
}

async fn peers_page(
    state: &AppState,
    viewer: &Viewer,
    form: PeerForm,
    error: Option<String>,
    notice: Option<String>,
) -> Result<PeersPage, WebError> {
    Ok(PeersPage {
        chrome: viewer.chrome("peers"),
        me: viewer.principal.user_id(),
        peers: state.warmup.peers(viewer.scope()).await?,
        error,
        notice,
        form,
    })
}

pub async fn peers(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    html(&peers_page(&state, &viewer, PeerForm::default(), None, None).await?)
}

fn port(field: &'static str, raw: &str, default: u16) -> Result<u16, ApiError> {
    match raw.trim() {
        "" => Ok(default),
        p => p
            .parse()
            .map_err(|_| ApiError::invalid(field, "enter a port number such as 993")),
    }
}

fn parse_peer(form: &PeerForm) -> Result<NewPeer, ApiError> {
    Ok(NewPeer {
        email: form.email.clone(),
        display_name: form.display_name.clone(),
        imap_host: form.imap_host.clone(),
        imap_port: port("imap_port", &form.imap_port, 993)?,
        smtp_host: form.smtp_host.clone(),
        smtp_port: port("smtp_port", &form.smtp_port, 587)?,
        imap_implicit_tls: None,
        smtp_implicit_tls: None,
        username: Some(form.username.clone()).filter(|u| !u.trim().is_empty()),
        password: SecretString::from(form.password.clone()),
        shared: form.shared.is_some(),
        receive_only: form.receive_only.is_some(),
    })
}

pub async fn add_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    WebForm(form): WebForm<PeerForm>,
) -> Result<Response, WebError> {
    let outcome = match parse_peer(&form) {
        Ok(req) => state
            .warmup
            .add_peer(viewer.principal.user_id(), viewer.is_admin(), req)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(peer) => {
            audit.resource("warmup_peer", peer.id);
            let notice = Some(format!(
                "{} logged in over IMAP and SMTP and joined the pool.",
                peer.email
            ));
            html(&peers_page(&state, &viewer, PeerForm::default(), None, notice).await?)
        }
        Err(e) => {
            // The password is never sent back to the browser.
            let form = PeerForm {
                password: String::new(),
                ..form
            };
            let body = html(
                &peers_page(&state, &viewer, form, Some(e.message().to_owned()), None).await?,
            )?;
            Ok((e.status(), body).into_response())
        }
    }
}

pub async fn test_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "warmup peer")?;
    audit.resource("warmup_peer", id);
    let (error, notice) = match state.warmup.test_peer(id, viewer.scope()).await {
        Ok(p) => (None, Some(format!("{} logs in: it is active.", p.email))),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status() == StatusCode::NOT_FOUND {
                return Err(WebError(e));
            }
            (Some(e.message().to_owned()), None)
        }
    };
    html(&peers_page(&state, &viewer, PeerForm::default(), error, notice).await?)
}

pub async fn delete_peer(
    State(state): State<AppState>,
    audit: AuditContext,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id, "warmup peer")?;
    audit.resource("warmup_peer", id);
    state.warmup.delete_peer(id, viewer.scope()).await?;
    Ok(Redirect::to("/warmup/peers").into_response())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate};

    use super::*;
    use crate::store::warmup::Day;
    use crate::warmup::Provider;
    use crate::warmup::settings::Settings;

    const EVIL: &str = "<script>alert(1)</script>";

    fn chrome() -> Chrome {
        Chrome {
            signed_in: true,
            email: "ann@example.com".into(),
            is_admin: false,
            csrf: "ab12".into(),
            nav: "inboxes",
            change_password: false,
            links: super::super::assets::links(),
        }
    }

    fn overview() -> Overview {
        let day = NaiveDate::from_ymd_opt(2030, 3, 18).unwrap();
        Overview {
            mailbox_id: uuid::Uuid::nil(),
            email: format!("{EVIL}@example.com"),
            status: "warming".into(),
            enabled: true,
            paused: false,
            settings: Settings {
                ramp: Ramp::Linear {
                    start: 3,
                    increment: 2,
                    ceiling: 21,
                },
                ..Settings::default()
            },
            started_on: day,
            ramp_step: 2,
            ramp_days: 10,
            frozen_until: Some(DateTime::UNIX_EPOCH),
            ready_at: None,
            ready_date: day,
            placement_pct: Some(87.5),
            campaign_allowance_today: Some(0),
            today: None,
            history: vec![Day {
                day,
                campaign_day: 1,
                ramp_step: 1,
                scheduled_sends: 3,
                actual_sends: 3,
                opens: 3,
                replies: 1,
                bounces: 0,
                complaints: 0,
                landed_inbox: 2,
                landed_spam: 1,
                landed_other: 0,
                missing: 0,
                rescued: 1,
                failed: 0,
                status: "completed".into(),
                note: Some(EVIL.into()),
            }],
        }
    }

    #[test]
    fn the_warmup_page_shows_the_ramp_its_chart_and_settings_escaped() {
        let o = overview();
        let chart = super::super::chart::ramp_svg(&o.history);
        let html = ShowPage {
            chrome: chrome(),
            chart,
            linear: Some((3, 2, 21)),
            centres: "09:00, 14:00, 17:00".into(),
            error: Some(format!("reply_rate_pct: {EVIL}")),
            o,
        }
        .render()
        .unwrap();
        assert!(!html.contains(EVIL), "unescaped");
        assert!(html.contains("Day 2 of 10"));
        assert!(html.contains("87.5%"));
        assert!(html.contains("<svg class=\"chart\""));
        assert!(html.contains("3 of 3 sent, 67% in the inbox"));
        assert!(html.contains(r#"name="ceiling" inputmode="numeric" value="21""#));
        assert!(html.contains("froze the ramp"));
        assert!(html.contains(r#"id="form-error""#));
    }

    #[test]
    fn the_peers_page_escapes_errors_and_never_echoes_a_password() {
        let now = DateTime::UNIX_EPOCH;
        let peer = Peer {
            id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::max(),
            kind: "imap".into(),
            email: "pat@gmail.com".into(),
            display_name: "Pat".into(),
            provider: Provider::Gmail,
            imap_host: "imap.gmail.com".into(),
            imap_port: 993,
            smtp_host: "smtp.gmail.com".into(),
            smtp_port: 587,
            imap_implicit_tls: true,
            smtp_implicit_tls: false,
            username: "pat@gmail.com".into(),
            shared: true,
            receive_only: false,
            status: "failing".into(),
            last_error: Some(EVIL.into()),
            checked_at: Some(now),
            created_at: now,
        };
        let form = PeerForm {
            email: "x@y.test".into(),
            password: "s3cret-app-password".into(),
            ..PeerForm::default()
        };
        let html = PeersPage {
            chrome: chrome(),
            me: uuid::Uuid::nil(),
            peers: vec![peer],
            error: None,
            notice: None,
            form,
        }
        .render()
        .unwrap();
        assert!(!html.contains(EVIL));
        assert!(!html.contains("s3cret-app-password"));
        assert!(html.contains("shared") && html.contains("gmail"));
        // A member may not share; the shared peer is another user's: no
        // test or remove buttons for it.
        assert!(!html.contains(r#"name="shared""#));
        assert!(!html.contains("/warmup/peers/00000000-0000-0000-0000-000000000000/delete"));
    }
}
