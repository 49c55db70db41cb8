//! Local doubles of the sequencers' account APIs (fact sheet
//! `exports_and_peers.md` §1.1–1.3): an axum server on 127.0.0.1:0 per
//! tool, speaking its wire format:
//!
//! - Instantly v2: bearer key; `GET /api/v2/accounts/{email}` (404 when
//!   absent), `POST /api/v2/accounts`; errors `{statusCode, error,
//!   message}` as its Fastify server sends them.
//! - Smartlead: `api_key` query parameter; `GET /api/v1/email-accounts/`
//!   paged by offset/limit, `POST /api/v1/email-accounts/save` answering
//!   `{ok, message, emailAccountId}`.
//! - Reply.io v3: `X-Api-Key`; `POST /v3/email-accounts`, 201 or a 409
//!   problem document for a duplicate.
//!
//! Each checks the request's field names and JSON types strictly and
//! answers 400 naming the bad field, so a test sees a wrong shape. Knobs
//! queue 429s and 500s and make one address fail the tool's own checks;
//! every request is logged.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instantly,
    Smartlead,
    ReplyIo,
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The key as this tool carries it (header or query), if any.
    pub key: Option<String>,
    pub body: Value,
}

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    RateLimited,
    ServerError,
}

#[derive(Default)]
struct Knobs {
    key: String,
    /// Lower-cased email → the account as stored.
    accounts: BTreeMap<String, Value>,
    faults: VecDeque<Fault>,
    /// Lower-cased email → the message the tool refuses it with.
    refuse: BTreeMap<String, String>,
    /// Lower-cased email → how many more adds of it answer 500.
    outage: BTreeMap<String, u32>,
    seen: Vec<Seen>,
}

struct Shared {
    kind: Kind,
    knobs: Mutex<Knobs>,
}

impl Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct SequencerDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SequencerDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SequencerDouble {
    pub async fn start(kind: Kind, key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            kind,
            knobs: Mutex::new(Knobs {
                key: key.to_owned(),
                ..Default::default()
            }),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An account the tool already has.
    pub fn existing(&self, email: &str) {
        self.shared.knobs().accounts.insert(
            email.to_ascii_lowercase(),
            json!({ "id": 1, "email": email, "from_email": email }),
        );
    }

    /// The tool will refuse to add `email`, saying `message`.
    pub fn refuse(&self, email: &str, message: &str) {
        self.shared
            .knobs()
            .refuse
            .insert(email.to_ascii_lowercase(), message.to_owned());
    }

    /// The next `times` adds of `email` answer 500.
    pub fn down_for(&self, email: &str, times: u32) {
        self.shared
            .knobs()
            .outage
            .insert(email.to_ascii_lowercase(), times);
    }

    /// The next requests fail in this order before any succeeds.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.shared.knobs().faults.extend(faults.iter().copied());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.knobs().seen.clone()
    }

    pub fn accounts(&self) -> BTreeMap<String, Value> {
        self.shared.knobs().accounts.clone()
    }
}

fn error(kind: Kind, status: StatusCode, message: &str) -> Response {
    let body = match kind {
        Kind::Instantly => json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": message,
        }),
        Kind::Smartlead => json!({ "ok": false, "message": message }),
        Kind::ReplyIo => json!({
            "title": status.canonical_reason().unwrap_or(""),
            "status": status.as_u16(),
            "detail": message,
        }),
    };
    (status, axum::Json(body)).into_response()
}

fn key_of(kind: Kind, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match kind {
        Kind::Instantly => header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        Kind::Smartlead => query(uri).remove("api_key"),
        Kind::ReplyIo => header("x-api-key").map(str::to_owned),
    }
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://double/?{}", uri.query().unwrap_or("")));
    url.map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Type {
    Str,
    Int,
    Bool,
    Null,
    Object,
}

impl Type {
    fn fits(self, v: &Value) -> bool {
        match self {
            Type::Str => v.is_string(),
            Type::Int => v.is_u64(),
            Type::Bool => v.is_boolean(),
            Type::Null => v.is_null(),
            Type::Object => v.is_object(),
        }
    }
}

/// Field name → (type, required) for each tool's create call.
fn schema(kind: Kind) -> &'static [(&'static str, Type, bool)] {
    use Type::*;
    match kind {
        Kind::Instantly => &[
            ("email", Str, true),
            ("first_name", Str, true),
            ("last_name", Str, true),
            ("provider_code", Int, true),
            ("imap_username", Str, true),
            ("imap_password", Str, true),
            ("imap_host", Str, true),
            ("imap_port", Int, true),
            ("smtp_username", Str, true),
            ("smtp_password", Str, true),
            ("smtp_host", Str, true),
            ("smtp_port", Int, true),
            ("daily_limit", Int, false),
            ("warmup", Object, false),
            ("tracking_domain_name", Str, false),
        ],
        Kind::Smartlead => &[
            ("id", Null, false),
            ("from_name", Str, true),
            ("from_email", Str, true),
            ("user_name", Str, true),
            ("password", Str, true),
            ("smtp_host", Str, true),
            ("smtp_port", Int, true),
            ("imap_host", Str, true),
            ("imap_port", Int, true),
            ("warmup_enabled", Bool, true),
            ("max_email_per_day", Int, false),
            ("custom_tracking_url", Str, false),
            ("total_warmup_per_day", Int, false),
            ("daily_rampup", Int, false),
            ("reply_rate_percentage", Int, false),
        ],
        Kind::ReplyIo => &[
            ("email", Str, true),
            ("senderName", Str, true),
            ("smtpHost", Str, true),
            ("smtpPort", Int, true),
            ("smtpPassword", Str, true),
            ("smtpSsl", Bool, false),
            ("imapHost", Str, true),
            ("imapPort", Int, true),
            ("imapPassword", Str, true),
            ("imapSsl", Bool, false),
            ("dailyLimit", Int, true),
        ],
    }
}

fn check(kind: Kind, body: &Value) -> Result<String, String> {
    let Some(obj) = body.as_object() else {
        return Err("body must be a JSON object".into());
    };
    let fields = schema(kind);
    for key in obj.keys() {
        if !fields.iter().any(|(name, _, _)| name == key) {
            return Err(format!("body must NOT have additional property '{key}'"));
        }
    }
    for (name, ty, required) in fields {
        match obj.get(*name) {
            Some(v) if !ty.fits(v) => return Err(format!("body/{name} has the wrong type")),
            None if *required => return Err(format!("body must have required property '{name}'")),
            _ => {}
        }
    }
    if kind == Kind::Instantly && obj["provider_code"] != json!(1) {
        return Err("provider_code must be 1 for an IMAP/SMTP account".into());
    }
    let email = match kind {
        Kind::Smartlead => &obj["from_email"],
        _ => &obj["email"],
    };
    Ok(email.as_str().unwrap_or_default().to_ascii_lowercase())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = shared.kind;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let key = key_of(kind, &headers, &uri);
    let mut k = shared.knobs();
    k.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        key: key.clone(),
        body: body.clone(),
    });
    if let Some(fault) = k.faults.pop_front() {
        return match fault {
            Fault::RateLimited => {
                let mut res = error(kind, StatusCode::TOO_MANY_REQUESTS, "Too many requests");
                res.headers_mut()
                    .insert("retry-after", "0".parse().unwrap());
                res
            }
            Fault::ServerError => error(
                kind,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
            ),
        };
    }
    if key.as_deref() != Some(k.key.as_str()) {
        return error(kind, StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let path = uri.path();
    match (kind, method.as_str()) {
        (Kind::Instantly, "GET") => {
            let email = path.strip_prefix("/api/v2/accounts/").unwrap_or_default();
            match k.accounts.get(&email.to_ascii_lowercase()) {
                Some(acc) => axum::Json(acc.clone()).into_response(),
                None => error(kind, StatusCode::NOT_FOUND, "Account not found"),
            }
        }
        (Kind::Smartlead, "GET") if path == "/api/v1/email-accounts/" => {
            let q = query(&uri);
            let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
            let page: Vec<Value> = k
                .accounts
                .values()
                .skip(offset)
                .take(limit)
                .cloned()
                .collect();
            axum::Json(Value::Array(page)).into_response()
        }
        (_, "POST") if create_path(kind) == path => {
            let email = match check(kind, &body) {
                Ok(email) => email,
                Err(message) => return error(kind, StatusCode::BAD_REQUEST, &message),
            };
            if let Some(left) = k.outage.get_mut(&email).filter(|n| **n > 0) {
                *left -= 1;
                return error(
                    kind,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                );
            }
            if let Some(message) = k.refuse.get(&email) {
                return error(kind, StatusCode::BAD_REQUEST, &message.clone());
            }
            if k.accounts.contains_key(&email) {
                return match kind {
                    Kind::ReplyIo => {
                        error(kind, StatusCode::CONFLICT, "Email account already exists")
                    }
                    _ => error(kind, StatusCode::BAD_REQUEST, "Account already exists"),
                };
            }
            let id = k.accounts.len() + 100;
            k.accounts.insert(email.clone(), body.clone());
            match kind {
                Kind::Instantly => axum::Json(body).into_response(),
                Kind::Smartlead => axum::Json(json!({
                    "ok": true,
                    "message": "Email account added successfully!",
                    "emailAccountId": id,
                    "warmupKey": format!("wk{id}"),
                }))
                .into_response(),
                Kind::ReplyIo => (
                    StatusCode::CREATED,
                    axum::Json(json!({ "id": id, "email": email })),
                )
                    .into_response(),
            }
        }
        _ => error(kind, StatusCode::NOT_FOUND, "Route not found"),
    }
}

fn create_path(kind: Kind) -> &'static str {
    match kind {
        Kind::Instantly => "/api/v2/accounts",
        Kind::Smartlead => "/api/v1/email-accounts/save",
        Kind::ReplyIo => "/v3/email-accounts",
    }
}
