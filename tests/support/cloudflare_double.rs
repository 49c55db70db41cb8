//! A local Cloudflare API v4 double: an axum server on 127.0.0.1:0 that
//! speaks the real JSON envelope (fact sheet `cloudflare_oauth_dns.md` §1)
//! and keeps its records in the shared [`Zones`], so what the API
//! publishes is what the loopback DNS server answers.
//!
//! Behaviour copied from the docs: user and account tokens verify at
//! different endpoints (§1.2); TXT content is stored quoted and split into
//! 255-byte strings (§1.8); the batch runs deletes, patches, puts, posts
//! and applies nothing when any item fails, answering the first error
//! (§1.5); duplicates get 81057 (§1.4); unknown routes get 7000.
//! Knobs make it fail (5xx, 429), slow down, or refuse a permission, and
//! it logs every request so tests can count calls.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use self::records::{Batch, Input, run_batch};
use super::zones::{Record, Zone, Zones};

// Beside this file, whichever test crate includes it.
#[path = "cloudflare_double/records.rs"]
mod records;

const PREFIX: &str = "/client/v4";
const TIMESTAMP: &str = "2026-01-01T00:00:00.000000Z";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    User,
    Account(String),
}

#[derive(Debug, Clone)]
struct Token {
    owner: Owner,
    status: String,
    dns_edit: bool,
}

impl Token {
    fn sees(&self, zone: &Zone) -> bool {
        match &self.owner {
            Owner::User => true,
            Owner::Account(id) => *id == zone.account_id,
        }
    }
}

#[derive(Default)]
struct Knobs {
    tokens: HashMap<String, Token>,
    /// (calls left to fail, HTTP status)
    fail_next: (u32, u16),
    /// Some(Retry-After seconds, if any) for the next call.
    rate_limit_next: Option<Option<u64>>,
    latency: Duration,
    requests: Vec<String>,
}

struct Shared {
    zones: Zones,
    knobs: Mutex<Knobs>,
}

impl Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct CloudflareDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CloudflareDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CloudflareDouble {
    pub async fn start(zones: Zones) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            zones,
            knobs: Mutex::new(Knobs::default()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The API root, ending in `/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}{PREFIX}", self.addr)
    }

    pub fn zones(&self) -> &Zones {
        &self.shared.zones
    }

    fn add_token(&self, token: &str, owner: Owner, status: &str, dns_edit: bool) {
        let token_info = Token {
            owner,
            status: status.to_owned(),
            dns_edit,
        };
        self.shared
            .knobs()
            .tokens
            .insert(token.to_owned(), token_info);
    }

    /// A user token with Zone:Read and DNS:Edit on every zone.
    pub fn user_token(&self, token: &str) {
        self.add_token(token, Owner::User, "active", true);
    }

    /// An account-owned token: 401 at `/user/tokens/verify`, valid at
    /// `/accounts/{account_id}/tokens/verify`, sees that account's zones.
    pub fn account_token(&self, token: &str, account_id: &str) {
        self.add_token(token, Owner::Account(account_id.to_owned()), "active", true);
    }

    /// A user token with Zone:Read but not DNS:Edit: record writes get 403
    /// code 10000.
    pub fn read_only_token(&self, token: &str) {
        self.add_token(token, Owner::User, "active", false);
    }

    /// A user token that verifies with `status` ("expired", "disabled").
    pub fn inactive_token(&self, token: &str, status: &str) {
        self.add_token(token, Owner::User, status, true);
    }

    /// The next `n` calls answer `status` (a 5xx) without doing anything.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.knobs().fail_next = (n, status);
    }

    /// The next call answers 429 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, retry_after_secs: u64) {
        self.shared.knobs().rate_limit_next = Some(Some(retry_after_secs));
    }

    /// The next call answers 429 without a Retry-After header.
    pub fn rate_limit_next_without_retry_after(&self) {
        self.shared.knobs().rate_limit_next = Some(None);
    }

    /// Added to every call, e.g. 50 ms to model the real round trip.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.knobs().latency = latency;
    }

    /// Every request so far as `METHOD /path` (below `/client/v4`, no query).
    pub fn requests(&self) -> Vec<String> {
        self.shared.knobs().requests.clone()
    }

    /// How many requests so far were exactly `METHOD /path`.
    pub fn count(&self, request: &str) -> usize {
        self.shared
            .knobs()
            .requests
            .iter()
            .filter(|r| *r == request)
            .count()
    }

    /// How many batch calls (to any zone) were made.
    pub fn batch_calls(&self) -> usize {
        let knobs = self.shared.knobs();
        let batch = |r: &&String| r.starts_with("POST ") && r.ends_with("/dns_records/batch");
        knobs.requests.iter().filter(batch).count()
    }

    pub fn clear_requests(&self) {
        self.shared.knobs().requests.clear();
    }
}

// --- Responses.

#[derive(Debug)]
struct ApiErr {
    status: StatusCode,
    code: u32,
    message: String,
    chain: Option<(u32, &'static str)>,
}

fn err(status: u16, code: u32, message: impl Into<String>) -> ApiErr {
    ApiErr {
        status: StatusCode::from_u16(status).unwrap(),
        code,
        message: message.into(),
        chain: None,
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some((code, message)) = self.chain {
            error["error_chain"] = json!([{ "code": code, "message": message }]);
        }
        let body = json!({ "success": false, "errors": [error], "messages": [], "result": null });
        (self.status, Json(body)).into_response()
    }
}

struct Reply {
    result: Value,
    /// List endpoints only.
    info: Option<Value>,
    messages: Value,
}

impl Reply {
    fn of(result: Value) -> Self {
        Self {
            result,
            info: None,
            messages: json!([]),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut body = json!({
            "success": true, "errors": [], "messages": self.messages, "result": self.result,
        });
        if let Some(info) = self.info {
            body["result_info"] = info;
        }
        Json(body).into_response()
    }
}

fn paged(items: Vec<Value>, query: &HashMap<String, String>, default_per_page: usize) -> Reply {
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page")
        .unwrap_or(default_per_page)
        .clamp(1, 5_000_000);
    let page = number("page").unwrap_or(1).max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Reply {
        info: Some(json!({
            "page": page, "per_page": per_page, "count": slice.len(),
            "total_count": total, "total_pages": total.div_ceil(per_page),
        })),
        ..Reply::of(Value::Array(slice))
    }
}

fn zone_json(z: &Zone) -> Value {
    json!({
        "id": z.id, "name": z.name, "status": "active", "paused": false, "type": "full",
        "development_mode": 0, "name_servers": z.name_servers,
        "original_name_servers": null, "original_registrar": null, "original_dnshost": null,
        "account": { "id": z.account_id, "name": "Test account" },
        "owner": { "id": null, "type": "user", "email": null },
        "permissions": ["#dns_records:edit", "#zone:read"],
        "plan": { "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website" },
        "meta": { "step": 2, "phishing_detected": false },
        "activated_on": TIMESTAMP, "created_on": TIMESTAMP, "modified_on": TIMESTAMP,
    })
}

fn record_json(r: &Record) -> Value {
    let mut v = json!({
        "id": r.id, "name": r.name, "type": r.record_type, "content": r.content,
        "proxiable": matches!(r.record_type.as_str(), "A" | "AAAA" | "CNAME"),
        "proxied": r.proxied, "ttl": r.ttl, "settings": {}, "meta": {},
        "comment": r.comment, "tags": [],
        "created_on": TIMESTAMP, "modified_on": TIMESTAMP,
    });
    if let Some(p) = r.priority {
        v["priority"] = json!(p);
    }
    v
}

// --- Routing.

enum Route<'a> {
    UserVerify,
    AccountVerify(&'a str),
    Zones,
    Zone(&'a str),
    Records(&'a str),
    Create(&'a str),
    Batch(&'a str),
}

fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match (method.as_str(), segments.as_slice()) {
        ("GET", ["user", "tokens", "verify"]) => Route::UserVerify,
        ("GET", ["accounts", account, "tokens", "verify"]) => Route::AccountVerify(account),
        ("GET", ["zones"]) => Route::Zones,
        ("GET", ["zones", id]) => Route::Zone(id),
        ("GET", ["zones", id, "dns_records"]) => Route::Records(id),
        ("POST", ["zones", id, "dns_records"]) => Route::Create(id),
        ("POST", ["zones", id, "dns_records", "batch"]) => Route::Batch(id),
        _ => return None,
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix(PREFIX);
    let (latency, interruption) = {
        let mut knobs = shared.knobs();
        knobs
            .requests
            .push(format!("{method} {}", path.unwrap_or(uri.path())));
        let interruption = if let Some(after) = knobs.rate_limit_next.take() {
            Some((429, after))
        } else if knobs.fail_next.0 > 0 {
            knobs.fail_next.0 -= 1;
            Some((knobs.fail_next.1, None))
        } else {
            None
        };
        (knobs.latency, interruption)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match interruption {
        Some((429, after)) => {
            let message = "Please wait and consider throttling your request speed";
            let mut res = err(429, 971, message).into_response();
            if let Some(secs) = after {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return res;
        }
        Some((status, _)) => return err(status, 10001, "Service unavailable").into_response(),
        None => {}
    }
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let no_route = || err(404, 7000, "No route for that URI");
    let Some(route) = path.and_then(|p| route(&method, p)) else {
        return no_route().into_response();
    };
    match serve(&shared, route, &uri, &headers, &query, &body) {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiErr> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiErr {
            chain: Some((6111, "Invalid format for Authorization header")),
            ..err(400, 6003, "Invalid request headers")
        })
}

fn serve(
    shared: &Shared,
    route: Route<'_>,
    uri: &Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Reply, ApiErr> {
    let secret = bearer(headers)?;
    let token = shared.knobs().tokens.get(secret).cloned();
    let verified = |owner: Owner| -> Result<Reply, ApiErr> {
        let t = token
            .clone()
            .filter(|t| t.owner == owner)
            .ok_or_else(|| err(401, 1000, "Invalid API Token"))?;
        Ok(Reply {
            messages: json!([{ "code": 10000, "message": "This API Token is valid and active" }]),
            ..Reply::of(json!({ "id": "tok0000000000000000000000000001", "status": t.status }))
        })
    };
    match route {
        Route::UserVerify => return verified(Owner::User),
        Route::AccountVerify(account) => return verified(Owner::Account(account.to_owned())),
        _ => {}
    }
    let token = token
        .filter(|t| t.status == "active")
        .ok_or_else(|| err(403, 9109, "Invalid access token"))?;
    let mut zones = shared.zones.lock();
    let zone = |zones: &[Zone], id: &str| -> Result<usize, ApiErr> {
        zones
            .iter()
            .position(|z| z.id == id && token.sees(z))
            .ok_or_else(|| {
                let path = uri.path().strip_prefix(PREFIX).unwrap_or(uri.path());
                let message = format!(
                    "Could not route to {path}, perhaps your object identifier is invalid?"
                );
                err(404, 7003, message)
            })
    };
    let can_edit = || {
        if token.dns_edit {
            Ok(())
        } else {
            Err(err(403, 10000, "Authentication error"))
        }
    };
    match route {
        Route::UserVerify | Route::AccountVerify(_) => unreachable!("answered above"),
        Route::Zones => {
            let name = query.get("name").map(|n| n.to_ascii_lowercase());
            let account = query.get("account.id");
            let found: Vec<Value> = zones
                .iter()
                .filter(|z| token.sees(z))
                .filter(|z| name.as_ref().is_none_or(|n| *n == z.name))
                .filter(|z| account.is_none_or(|a| *a == z.account_id))
                .map(zone_json)
                .collect();
            Ok(paged(found, query, 20))
        }
        Route::Zone(id) => Ok(Reply::of(zone_json(&zones[zone(&zones, id)?]))),
        Route::Records(id) => {
            let z = &zones[zone(&zones, id)?];
            let name = query.get("name").or(query.get("name.exact"));
            let kind = query.get("type");
            let found: Vec<Value> = (z.records.iter())
                .filter(|r| name.is_none_or(|n| n.eq_ignore_ascii_case(&r.name)))
                .filter(|r| kind.is_none_or(|k| *k == r.record_type))
                .map(record_json)
                .collect();
            Ok(paged(found, query, 100))
        }
        Route::Create(id) => {
            let at = zone(&zones, id)?;
            can_edit()?;
            let post: Input = parse_body(body)?;
            let result = run_batch(
                &mut zones[at],
                Batch {
                    posts: vec![post],
                    ..Batch::default()
                },
            )?;
            Ok(Reply::of(result["posts"][0].clone()))
        }
        Route::Batch(id) => {
            let at = zone(&zones, id)?;
            can_edit()?;
            Ok(Reply::of(run_batch(&mut zones[at], parse_body(body)?)?))
        }
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiErr> {
    serde_json::from_slice(body)
        .map_err(|e| err(400, 9207, format!("Request body is invalid: {e}")))
}
