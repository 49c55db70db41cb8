//! The control plane KumoMTA calls over loopback HTTP: its policy in
//! `kumo-policy/` asks InboxGrove to authenticate, sign, limit and route.
//! It answers only on the control listener, never on the public one, and
//! every request must carry one client's credential as a bearer token; each
//! route names the clients that may call it ([`credentials`]).

pub mod credentials;
pub mod epoch;
pub mod events;
pub mod identity;
pub mod logins;
pub mod policy_config;
pub mod send;
pub mod smtp_auth;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit;
use crate::clock::SharedClock;
use crate::config::MailSettings;
use crate::domains::egress;
use crate::dovecot::quota;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, bearer};
use crate::http::with_common_layers;
use crate::inboxes::datasource::{Datasource, Entry};
use crate::inboxes::sync::{MailboxSync, Refresh};
use crate::settings::LiveSettings;
use crate::store::{self, Store};
use crate::vault::{Slot, Vault};
use credentials::{Client, Credentials};
use logins::{LoginCounters, LoginResult, Service};
use smtp_auth::{Outcome, SmtpAuth};

const EVENTS_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub struct Control {
    pub store: Store,
    pub clock: SharedClock,
    pub vault: Arc<Vault>,
    pub datasource: Datasource,
    pub auth: SmtpAuth,
    /// Password checks per asking service (SMTP, IMAP) and outcome.
    pub logins: LoginCounters,
    /// Resyncs the datasource when a console command asks.
    pub mailboxes: Arc<MailboxSync>,
    /// The credentials each client sends, read again when they rotate.
    pub credentials: Credentials,
    /// Where unsubscribe links in outgoing mail point.
    pub public_url: String,
    /// Whose midnight starts each mailbox's sending day (read at use
    /// time: an admin may change it while the server runs).
    pub settings: Arc<LiveSettings>,
    /// The maildirs, whose Maildir++ usage says whether a mailbox is full.
    pub mail: MailSettings,
}

impl Control {
    /// Today, for daily sending limits.
    fn today(&self) -> chrono::NaiveDate {
        self.settings.today()
    }

    /// Counts a password check for the service that asked, and audits it
    /// if it was refused. A fault is neither: it is logged by the handler.
    async fn record_login(
        &self,
        service: Service,
        username: &str,
        source: Option<IpAddr>,
        outcome: &Outcome,
    ) {
        let result = match outcome {
            Outcome::Ok(_) => LoginResult::Ok,
            Outcome::Refused => LoginResult::Refused,
            Outcome::Throttled(_) => LoginResult::Throttled,
            Outcome::Unavailable(_) => return,
        };
        self.logins.count(service, result);
        if result == LoginResult::Ok {
            return;
        }
        // A datasource fault counts the try under "no such mailbox": the
        // row is still written, and the answer was a refusal either way.
        let known = matches!(self.entry(username), Ok(Some(_)));
        let now = self.clock.now();
        let (key, entry) = logins::refused_entry(service, username, result, source, known, now);
        // The answer stays a refusal whether or not the row is written.
        if let Err(e) = audit::record_aggregate(&self.store, now, key, entry).await {
            tracing::warn!(error = %e, "could not audit a refused mailbox login");
        }
    }

    /// Whether the mailbox is at its quota, from Dovecot's `maildirsize`
    /// and the messages on disk (blocking I/O, so off the async workers),
    /// as [`quota::is_full`] explains. A check that could not run is a
    /// fault, not "not full".
    async fn is_full(&self, domain: &str, local: &str) -> Result<bool, ApiError> {
        let path = quota::maildir_path(&self.mail.root, domain, local);
        let limit = self.mail.quota.clone();
        tokio::task::spawn_blocking(move || quota::is_full(&path, &limit))
            .await
            .map_err(|e| ApiError::unavailable(&e))
    }

    /// Messages `mailbox` has sent today. A store that does not answer is
    /// a fault (503), not a count of 0: the policy would show the wrong
    /// figure and the next send-check would fail anyway.
    async fn sent_today(&self, mailbox: uuid::Uuid) -> Result<u32, ApiError> {
        let today = self.today();
        self.store
            .read(move |conn| store::mailboxes::sent_today(conn, mailbox, today))
            .await
            .map_err(|e| ApiError::unavailable(&e))
    }

    /// The datasource entry of `address`; a datasource fault is a 503.
    fn entry(&self, address: &str) -> Result<Option<Entry>, ApiError> {
        let address = address.trim().to_ascii_lowercase();
        let (local, domain) = address.split_once('@').unwrap_or((&address, ""));
        self.datasource
            .get(domain, local)
            .map_err(|e| ApiError::unavailable(&e))
    }
}

/// The routes and who may call each: KumoMTA's policy what it calls
/// (`kumo-policy/init.lua`), Dovecot's checkpassword its logins and its
/// lookups (`src/dovecot/checkpassword.rs`), the console its resync.
pub fn router(control: Arc<Control>) -> Router {
    use Client::{Console, Dovecot, Kumo};
    let v1 = Router::new()
        .route("/auth", scoped(post(auth), &[Kumo, Dovecot]))
        .route("/stats", scoped(get(stats), &[Kumo]))
        .route("/send-check", scoped(post(send_check), &[Kumo]))
        .route("/send-release", scoped(post(send_release), &[Kumo]))
        .route(
            "/mailboxes/{address}",
            scoped(get(mailbox), &[Kumo, Dovecot]),
        )
        .route("/domains/{domain}", scoped(get(domain), &[Kumo]))
        .route("/dkim/{domain}", scoped(get(dkim), &[Kumo]))
        .route("/egress", scoped(get(egress_plan), &[Kumo]))
        .route("/events", scoped(post(events), &[Kumo]))
        .route("/sync", scoped(post(sync), &[Console]))
        // KumoMTA batches log records; a busy minute can exceed the API's
        // 1 MiB.
        .layer(DefaultBodyLimit::max(EVENTS_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            control.clone(),
            require_credential,
        ))
        .with_state(control);
    with_common_layers(
        Router::new()
            .route("/kumo/v1/health", get(health))
            .nest("/kumo/v1", v1),
    )
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "listener": "control" }))
}

/// Finds whose credential the bearer token is and hands it to the route
/// (as an extension) for [`scoped`] to check.
async fn require_credential(State(c): State<Arc<Control>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let found = match bearer(&parts) {
        Some(token) => c.credentials.identify(token),
        None => Ok(None),
    };
    match found {
        Ok(Some(client)) => {
            parts.extensions.insert(client);
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(None) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send a control credential from the data dir as 'Authorization: Bearer <secret>': kumo.secret for KumoMTA, dovecot.secret for Dovecot, console.secret for the console",
        )
        .into_response(),
        Err(e) => ApiError::unavailable(&e).into_response(),
    }
}

/// `route`, callable only with the credentials of `clients`; another
/// client's is a 403 that says which one the route takes.
fn scoped(
    route: MethodRouter<Arc<Control>>,
    clients: &'static [Client],
) -> MethodRouter<Arc<Control>> {
    route.route_layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            match req.extensions().get::<Client>() {
                Some(client) if clients.contains(client) => next.run(req).await,
                used => {
                    let needs: Vec<String> = clients.iter().map(|c| c.describe()).collect();
                    wrong_credential(used.copied(), &needs.join(" or ")).into_response()
                }
            }
        },
    ))
}

fn wrong_credential(used: Option<Client>, needs: &str) -> ApiError {
    let used = used.map_or_else(|| "no credential".to_owned(), Client::describe);
    ApiError::new(
        StatusCode::FORBIDDEN,
        "wrong_credential",
        format!("this call takes {needs}; it was made with {used}"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthRequest {
    username: String,
    password: SecretString,
    authz: Option<String>,
    /// The mail client's address, for throttling guessing per source.
    source_ip: Option<IpAddr>,
    /// Who asks: KumoMTA (`smtp`, the default) or Dovecot (`imap`). Both
    /// share one throttle per (mailbox, source), so guessing over IMAP and
    /// SMTP from one address adds up.
    #[serde(default)]
    service: Service,
}

async fn auth(
    State(c): State<Arc<Control>>,
    Extension(client): Extension<Client>,
    ApiJson(req): ApiJson<AuthRequest>,
) -> Result<Response, ApiError> {
    if !client.may_check(req.service) {
        let needs = format!(
            "{} for {} logins",
            Client::Kumo.describe(),
            req.service.as_str()
        );
        return Err(wrong_credential(Some(client), &needs));
    }
    let source = req.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let outcome = c
        .auth
        .check(&req.username, &req.password, req.authz.as_deref(), source)
        .await;
    c.record_login(req.service, &req.username, req.source_ip, &outcome)
        .await;
    Ok(match outcome {
        Outcome::Ok(e) => {
            let sent = c.sent_today(e.mailbox_id).await?;
            Json(json!({
                "ok": true,
                "mailbox_id": e.mailbox_id,
                "email": e.email(),
                "daily_limit": e.daily_limit,
                "sent_today": sent,
            }))
            .into_response()
        }
        Outcome::Refused | Outcome::Throttled(_) => {
            (StatusCode::UNAUTHORIZED, Json(json!({ "ok": false }))).into_response()
        }
        Outcome::Unavailable(e) => return Err(ApiError::unavailable(&e)),
    })
}

/// Login counters since start, per service, the log records kept aside
/// because they could not be read, and the reports that matched nothing we
/// sent (all time):
/// `{"logins":{"smtp":{..},"imap":{..}},"events":{"quarantined":n,"unmatched_reports":n}}`.
async fn stats(State(c): State<Arc<Control>>) -> Result<Json<Value>, ApiError> {
    let (quarantined, unmatched) = c
        .store
        .read(|conn| {
            Ok((
                store::events::quarantined_count(conn)?,
                store::events::unmatched_count(conn)?,
            ))
        })
        .await?;
    Ok(Json(json!({
        "logins": c.logins.snapshot(),
        "events": { "quarantined": quarantined, "unmatched_reports": unmatched },
    })))
}

async fn send_check(
    State(c): State<Arc<Control>>,
    ApiJson(req): ApiJson<send::SendCheck>,
) -> Result<Json<send::Decision>, ApiError> {
    let now = c.clock.now();
    let decision = send::decide(
        &c.store,
        &c.datasource,
        send::LinkMaker {
            vault: &c.vault,
            public_url: &c.public_url,
        },
        req,
        c.today(),
        now,
    )
    .await
    .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(decision))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRelease {
    authn_id: String,
    /// The same marker and Message-ID the send-check had, so the count
    /// given back is the one it took (warmup or campaign).
    #[serde(default)]
    warmup_marker: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

/// Gives back the send that send-check counted, when a later step of the
/// policy refused the message (never below zero). Looked up in SQLite, not
/// the datasource: a mailbox revoked since its send was counted still gets
/// it back. Answers both of today's counts after it:
/// `{"sent_today": n, "warmup_sent_today": n}`.
async fn send_release(
    State(c): State<Arc<Control>>,
    ApiJson(req): ApiJson<SendRelease>,
) -> Result<Json<Value>, ApiError> {
    let address = crate::types::EmailAddress::parse(&req.authn_id)
        .map_err(|e| ApiError::invalid("authn_id", e.0))?;
    let warmup = send::is_warmup(
        &c.vault,
        address.as_str(),
        req.message_id.as_deref(),
        req.warmup_marker.as_deref(),
    );
    let today = c.today();
    let counts = c
        .store
        .write(move |tx| {
            let Some(id) = store::mailboxes::by_address(tx, address.as_str())? else {
                return Ok(None);
            };
            if warmup {
                store::mailboxes::release_warmup_send(tx, id, today)?;
            } else {
                store::mailboxes::release_send(tx, id, today)?;
            }
            Ok(Some((
                store::mailboxes::sent_today(tx, id, today)?,
                store::mailboxes::warmup_sent_today(tx, id, today)?,
            )))
        })
        .await
        .map_err(|e: store::StoreError| ApiError::unavailable(&e))?;
    let (sent, warmup_sent) = counts.ok_or_else(|| ApiError::not_found("mailbox"))?;
    Ok(Json(
        json!({ "sent_today": sent, "warmup_sent_today": warmup_sent }),
    ))
}

async fn mailbox(
    State(c): State<Arc<Control>>,
    UrlPath(address): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(e) = c.entry(&address)? else {
        return Ok(Json(json!({ "exists": false, "active": false })));
    };
    let sent = c.sent_today(e.mailbox_id).await?;
    let full = c.is_full(&e.domain, &e.username).await?;
    Ok(Json(json!({
        "exists": true,
        "active": e.is_active(),
        "daily_limit": e.daily_limit,
        "sent_today": sent,
        // At the Maildir++ quota: the policy answers 452 4.2.2.
        "full": full,
        // Relative to the mail root; both parts are validated names, so
        // they cannot climb out of it.
        "maildir": format!("{}/{}", e.domain, e.username),
    })))
}

async fn domain(
    State(c): State<Arc<Control>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let found = c
        .store
        .read(move |conn| {
            let Some(d) = store::domains::by_name(conn, &name, None)? else {
                return Ok(None);
            };
            let selector = store::domains::active_dkim_key(conn, d.id)?.map(|k| k.selector);
            Ok(selector.map(|s| (s, d.egress_ip)))
        })
        .await?;
    Ok(Json(match found {
        Some((selector, egress_ip)) => json!({
            "hosted": true,
            "dkim": { "selector": selector },
            "egress_pool": egress::pool_for(egress_ip),
        }),
        None => json!({ "hosted": false }),
    }))
}

/// The egress sources and pools KumoMTA may be asked for: the default, and
/// one per public address the server has or a domain is bound to.
async fn egress_plan(State(c): State<Arc<Control>>) -> Result<Json<egress::Plan>, ApiError> {
    let bound = c.store.read(store::domains::egress_ips).await?;
    let settings = c.settings.get();
    let s = &settings.domains;
    let configured = [s.public_ipv4.map(IpAddr::V4), s.public_ipv6.map(IpAddr::V6)];
    Ok(Json(egress::plan(
        configured.into_iter().flatten().chain(bound),
    )))
}

async fn dkim(
    State(c): State<Arc<Control>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let lookup = name.clone();
    let key = c
        .store
        .read(move |conn| {
            let Some(d) = store::domains::by_name(conn, &lookup, None)? else {
                return Ok(None);
            };
            store::domains::active_dkim_key(conn, d.id)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("DKIM key for that domain"))?;
    let row = key.id.to_string();
    let pem = c
        .vault
        .open(
            Slot {
                table: "dkim_keys",
                column: "private_key",
                row_id: &row,
            },
            &key.sealed_private_key,
        )
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({
        "domain": name,
        "selector": key.selector,
        "private_key_pem": String::from_utf8_lossy(pem.expose_secret()),
    })))
}

/// Stores a batch of KumoMTA log records. The answer is 2xx once every
/// readable record is stored and every unreadable one is kept aside, both
/// durably: nothing in a batch makes the policy refuse it, so no record is
/// bounced for a neighbour's sake. Only a fault (the store) is an error,
/// which the policy retries.
async fn events(State(c): State<Arc<Control>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let batch = events::parse_batch(&body).map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            e.to_string(),
        )
    })?;
    for q in &batch.quarantined {
        tracing::warn!(index = q.index, error = %q.error, "kept aside a KumoMTA log record it could not read");
    }
    let now = c.clock.now();
    let total = batch.events.len();
    let (stored, quarantined) = c
        .store
        .write(move |tx| {
            let mut stored = 0;
            for ev in &batch.events {
                stored += usize::from(store::events::record(tx, ev, now)?);
            }
            let quarantined = store::events::quarantine(tx, &batch.quarantined, now)?;
            Ok::<_, store::StoreError>((stored, quarantined))
        })
        .await?;
    Ok(Json(json!({
        "stored": stored,
        "duplicates": total - stored,
        "quarantined": quarantined,
    })))
}

/// A CLI command changed mailboxes in SQLite while this server holds the
/// datasource: resync it from SQLite, and tell KumoMTA.
async fn sync(State(c): State<Arc<Control>>) -> Result<Json<Value>, ApiError> {
    let repaired = c
        .mailboxes
        .refresh(Refresh::All)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(json!({ "repaired": repaired })))
}
