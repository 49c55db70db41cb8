//! Cloudflare API v4 as a [`DnsProvider`]: a thin typed client over
//! `reqwest` for the few calls publishing needs (token verify, zones, DNS
//! records, batch).
//!
//! Why not the `cloudflare` crate (cloudflare-rs 0.14; fact sheet
//! `cloudflare_oauth_dns.md` §2.3–2.4):
//! - it parses error codes as `u16`, so 81057/81058 ("record already
//!   exists") and the other 5-digit DNS codes fail to parse and every 400
//!   looks alike (cloudflare-rs #218);
//! - its `ListDnsRecords` fails the whole listing on a record type it does
//!   not know (CAA, HTTPS, SVCB …; #219), and Cloudflare adds HTTPS records
//!   by itself;
//! - `Zone.activated_on` is not optional, yet pending zones (every new
//!   one) return `null`;
//! - it has no batch endpoint (§1.5, our all-or-nothing apply) and no
//!   account-token verify (§1.2).
//!
//! So here the envelope is lenient (unknown fields ignored, record type
//! free text, codes `u32`), and every request waits on a process-wide
//! [`CloudflareLimiter`] and retries within a [`RetryPolicy`].

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use self::wire::{ApiMessage, Envelope, ResultInfo, TokenStatus, WireRecord, WireZone};
use super::name::DomainName;
use super::plan::RecordType;
use super::provider::{
    BoxFuture, ChangeSet, DnsProvider, ExistingRecord, MANAGED_COMMENT, NewRecord, ProviderError,
    Zone,
};

use crate::remote::{RetryPolicy, http_client, network_error, retry_after};

mod wire;

/// Records per listing page: Cloudflare's documented default (§1.4); the
/// maximum is not reliably documented, so we page instead.
const PER_PAGE: u32 = 100;
/// Items per batch on the Free plan (§1.5). Paid plans allow 3,500, but
/// the plan is unknown here.
const BATCH_LIMIT: usize = 200;
/// A 429 without Retry-After: going over the limit blocks every call for
/// the next 5 minutes (§1.6).
const RATE_LIMIT_BLOCK: Duration = Duration::from_secs(300);

/// The client-side request budget shared by every Cloudflare call in the
/// process. Cloudflare allows 1,200 requests per 5 minutes per user,
/// counted across the dashboard and all tokens, and going over blocks
/// every call for 5 minutes (§1.6), so we stay well below it.
pub struct CloudflareLimiter(DefaultDirectRateLimiter);

/// 200 a minute is 1,000 per 5 minutes: with the burst, at most 1,010 in
/// any 5-minute window, which leaves room for the person's own dashboard
/// use under the same user.
const DEFAULT_PER_MINUTE: NonZeroU32 = NonZeroU32::new(200).expect("200 is not zero");
const DEFAULT_BURST: NonZeroU32 = NonZeroU32::new(10).expect("10 is not zero");

impl CloudflareLimiter {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self(RateLimiter::direct(
            Quota::per_minute(per_minute).allow_burst(burst),
        ))
    }

    async fn ready(&self) {
        self.0.until_ready().await;
    }
}

impl Default for CloudflareLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_PER_MINUTE, DEFAULT_BURST)
    }
}

impl fmt::Debug for CloudflareLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloudflareLimiter")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloudflareSetupError {
    #[error(
        "'{0}' is not a usable Cloudflare API base URL; use one like https://api.cloudflare.com/client/v4"
    )]
    BaseUrl(String),
    #[error("could not build the HTTP client for Cloudflare: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct CloudflareProvider {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    /// Needed to verify account-owned tokens (§1.2) and used to narrow
    /// zone look-ups, as zone names are not unique across accounts (§1.3).
    account_id: Option<String>,
    limiter: Arc<CloudflareLimiter>,
    retry: RetryPolicy,
}

impl fmt::Debug for CloudflareProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareProvider")
            .field("base", &self.base.as_str())
            .field("account_id", &self.account_id)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What a call touches: names the permission a 403 means is missing, and
/// the zone a 404 means is missing.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Token,
    Zone(&'a str),
    Records(&'a str),
}

impl Scope<'_> {
    fn permission(self) -> &'static str {
        match self {
            Self::Token => "API Tokens:Read",
            Self::Zone(_) => "Zone:Read",
            // Listing needs only DNS:Read, but publishing needs Edit anyway.
            Self::Records(_) => "DNS:Edit",
        }
    }
}

struct Page<T> {
    result: T,
    info: Option<ResultInfo>,
}

// --- Pure helpers.

fn parse_base(raw: &str) -> Result<Url, CloudflareSetupError> {
    let bad = || CloudflareSetupError::BaseUrl(raw.to_owned());
    let url = Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.query().is_some()
    {
        return Err(bad());
    }
    Ok(url)
}

/// `base` with `segments` appended, each encoded as one path segment, so a
/// base with a path keeps it (the crate's `Url::join` drops `/v4` from a
/// base without a trailing slash, §2.2) and an id cannot leave its segment.
fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // Only fails for cannot-be-a-base URLs, which `parse_base` refuses.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// TXT content as one double-quoted character-string with `"` and `\`
/// escaped: Cloudflare splits strings over 255 bytes itself, and content
/// we split would carry quotes Cloudflare takes literally (§1.8,
/// dnscontrol #1265).
fn quote_txt(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The provider error for a failed call (§1.4 error table, §1.6).
fn classify(
    status: u16,
    first: Option<&ApiMessage>,
    retry_after: Option<Duration>,
    scope: Scope<'_>,
) -> ProviderError {
    let code = first.map(|e| e.code);
    let message = first.map_or_else(|| format!("HTTP {status}"), ApiMessage::describe);
    let with_code = || match code {
        Some(c) => format!("{message} (Cloudflare code {c})"),
        None => message.clone(),
    };
    if status == 429 {
        return ProviderError::RateLimited(retry_after.unwrap_or(RATE_LIMIT_BLOCK));
    }
    if status >= 500 {
        return ProviderError::Transient(format!("HTTP {status}: {}", with_code()));
    }
    // 9109: invalid access token; 6003: malformed Authorization header.
    if status == 401 || matches!(code, Some(9109 | 6003)) {
        return ProviderError::Unauthorized(with_code());
    }
    // 10000 "Authentication error": the token works but lacks a permission.
    if status == 403 || code == Some(10000) {
        return ProviderError::MissingPermission {
            permission: scope.permission(),
            message: with_code(),
        };
    }
    // 7003/7000: no such object or route, e.g. an unknown zone id. A 404
    // carrying a record-level code (81xxx, "record does not exist") is
    // about a record, not the zone.
    let record_level = code.is_some_and(|c| (81000..82000).contains(&c));
    if let Scope::Zone(zone) | Scope::Records(zone) = scope
        && (matches!(code, Some(7000 | 7003)) || (status == 404 && !record_level))
    {
        return ProviderError::ZoneNotFound(zone.to_owned());
    }
    ProviderError::Rejected {
        code: code.unwrap_or(u32::from(status)),
        message,
    }
}

fn record_body(r: &NewRecord) -> Value {
    let content = match r.record_type {
        RecordType::TXT => quote_txt(&r.content),
        _ => r.content.clone(),
    };
    // ttl 1 is "Auto" (§1.7). Mail records are never proxied: Cloudflare
    // proxies only A/AAAA/CNAME and never SMTP, and the mail host must
    // resolve to the server itself.
    let mut body = json!({
        "type": r.record_type.as_str(),
        "name": r.name,
        "content": content,
        "ttl": 1,
        "proxied": false,
    });
    // MX priority is a top-level field, not part of content (§1.7).
    if let Some(p) = r.priority {
        body["priority"] = json!(p);
    }
    body
}

/// The batch request bodies for `changes`, at most [`BATCH_LIMIT`] items
/// each. Items keep Cloudflare's order (deletes, patches, posts) across
/// chunks, but each chunk is its own transaction: only a change set of up
/// to 200 items is applied all or nothing.
fn batch_bodies(changes: &ChangeSet) -> Vec<Value> {
    enum Op<'c> {
        Delete(&'c str),
        Patch(&'c str, &'c NewRecord),
        Post(&'c NewRecord),
    }
    let ops: Vec<Op<'_>> = changes
        .deletes
        .iter()
        .map(|id| Op::Delete(id))
        .chain(changes.patches.iter().map(|(id, r)| Op::Patch(id, r)))
        .chain(changes.posts.iter().map(Op::Post))
        .collect();
    ops.chunks(BATCH_LIMIT)
        .map(|chunk| {
            let (mut deletes, mut patches, mut posts) = (Vec::new(), Vec::new(), Vec::new());
            for op in chunk {
                match op {
                    Op::Delete(id) => deletes.push(json!({ "id": id })),
                    Op::Patch(id, r) => {
                        let mut body = record_body(r);
                        body["id"] = json!(id);
                        patches.push(body);
                    }
                    Op::Post(r) => {
                        let mut body = record_body(r);
                        body["comment"] = json!(MANAGED_COMMENT);
                        posts.push(body);
                    }
                }
            }
            let mut body = json!({});
            for (key, items) in [("deletes", deletes), ("patches", patches), ("posts", posts)] {
                if !items.is_empty() {
                    body[key] = Value::Array(items);
                }
            }
            body
        })
        .collect()
}

// --- The client.

impl CloudflareProvider {
    /// `base_url` is the API root, e.g. `https://api.cloudflare.com/client/v4`.
    pub fn new(
        base_url: &str,
        token: SecretString,
        account_id: Option<String>,
        limiter: Arc<CloudflareLimiter>,
        retry: RetryPolicy,
    ) -> Result<Self, CloudflareSetupError> {
        let base = parse_base(base_url)?;
        let http = http_client()?;
        Ok(Self {
            http,
            base,
            token,
            account_id: account_id.filter(|a| !a.trim().is_empty()),
            limiter,
            retry,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        endpoint(&self.base, segments)
    }

    /// One API call with rate limiting and retries.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        scope: Scope<'_>,
    ) -> Result<Page<T>, ProviderError> {
        let mut failed = 0;
        loop {
            self.limiter.ready().await;
            let err = match self.send(method.clone(), url.clone(), body, scope).await {
                Ok(page) => return Ok(page),
                Err(err) => err,
            };
            failed += 1;
            let Some(wait) = self.retry.wait(err.failure(), failed) else {
                return Err(err);
            };
            tracing::warn!(
                %method, path = url.path(), error = %err, attempt = failed,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "Cloudflare call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        scope: Scope<'_>,
    ) -> Result<Page<T>, ProviderError> {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            req = req.json(body);
        }
        let transient = |e: reqwest::Error| ProviderError::Transient(network_error(e));
        let res = req.send().await.map_err(transient)?;
        let status = res.status();
        let wait = retry_after(res.headers());
        let bytes = res.bytes().await.map_err(transient)?;
        let parsed = serde_json::from_slice::<Envelope>(&bytes);
        if !status.is_success() {
            let envelope = parsed.unwrap_or_default();
            let first = envelope.errors.as_deref().and_then(<[_]>::first);
            return Err(classify(status.as_u16(), first, wait, scope));
        }
        let unreadable = |e: serde_json::Error| ProviderError::Rejected {
            code: 0,
            message: format!(
                "Cloudflare answered {status} with a body InboxGrove cannot read: {e}"
            ),
        };
        let envelope = parsed.map_err(unreadable)?;
        if !envelope.success {
            let first = envelope.errors.as_deref().and_then(<[_]>::first);
            return Err(classify(status.as_u16(), first, wait, scope));
        }
        Ok(Page {
            result: serde_json::from_value(envelope.result).map_err(unreadable)?,
            info: envelope.result_info,
        })
    }

    async fn token_status(&self, segments: &[&str]) -> Result<String, ProviderError> {
        let page: Page<TokenStatus> = self
            .call(Method::GET, self.url(segments), None, Scope::Token)
            .await?;
        Ok(page.result.status)
    }

    async fn verify(&self) -> Result<(), ProviderError> {
        let user = self.token_status(&["user", "tokens", "verify"]).await;
        // Account-owned tokens (often `cfat_…`) get 401 at the user
        // endpoint and verify at the account one (§1.2).
        let status = match (user, self.account_id.as_deref()) {
            (Err(ProviderError::Unauthorized(_)), Some(account)) => {
                self.token_status(&["accounts", account, "tokens", "verify"])
                    .await?
            }
            (other, _) => other?,
        };
        if status == "active" {
            Ok(())
        } else {
            Err(ProviderError::Unauthorized(format!(
                "Cloudflare says the token is {status}"
            )))
        }
    }

    /// The closest zone enclosing `name`: `name` itself, else its parent,
    /// and so on. With `example.com` and `a.example.com` both in the
    /// account, `mail.a.example.com` is `a.example.com`'s, as the child
    /// zone is the one that answers for it. `?name=` is an exact match
    /// (§1.3), so this asks once per candidate, closest first.
    async fn find(&self, name: &DomainName) -> Result<Zone, ProviderError> {
        for candidate in name.and_parents() {
            if let Some(zone) = self.zone_named(candidate).await? {
                return Ok(zone);
            }
        }
        Err(ProviderError::ZoneNotFound(name.to_string()))
    }

    async fn zone_named(&self, name: &str) -> Result<Option<Zone>, ProviderError> {
        let mut url = self.url(&["zones"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("name", name);
            if let Some(account) = &self.account_id {
                query.append_pair("account.id", account);
            }
        }
        let page: Page<Vec<WireZone>> =
            self.call(Method::GET, url, None, Scope::Zone(name)).await?;
        Ok(page
            .result
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(name))
            .map(Zone::from))
    }

    async fn zone_by_id(&self, zone_id: &str) -> Result<Zone, ProviderError> {
        let page: Page<WireZone> = self
            .call(
                Method::GET,
                self.url(&["zones", zone_id]),
                None,
                Scope::Zone(zone_id),
            )
            .await?;
        Ok(page.result.into())
    }

    async fn records(&self, zone_id: &str) -> Result<Vec<ExistingRecord>, ProviderError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut url = self.url(&["zones", zone_id, "dns_records"]);
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let got: Page<Vec<WireRecord>> = self
                .call(Method::GET, url, None, Scope::Records(zone_id))
                .await?;
            let count = got.result.len();
            out.extend(got.result.into_iter().map(ExistingRecord::from));
            let total = got.info.map_or(page, |i| i.total_pages);
            if count == 0 || page >= total {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// One batch call per [`batch_bodies`] chunk. A batch retried after a
    /// 5xx that had in fact committed fails with 81057 on its posts; the
    /// zone is then already right and the next reconcile finds nothing to do.
    async fn apply_changes(&self, zone_id: &str, changes: &ChangeSet) -> Result<(), ProviderError> {
        for body in batch_bodies(changes) {
            let url = self.url(&["zones", zone_id, "dns_records", "batch"]);
            let _: Page<Value> = self
                .call(Method::POST, url, Some(&body), Scope::Records(zone_id))
                .await?;
        }
        Ok(())
    }
}

impl DnsProvider for CloudflareProvider {
    fn verify_token(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(self.verify())
    }

    fn find_zone<'a>(&'a self, name: &'a DomainName) -> BoxFuture<'a, Result<Zone, ProviderError>> {
        Box::pin(self.find(name))
    }

    fn zone<'a>(&'a self, zone_id: &'a str) -> BoxFuture<'a, Result<Zone, ProviderError>> {
        Box::pin(self.zone_by_id(zone_id))
    }

    fn list_records<'a>(
        &'a self,
        zone_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ExistingRecord>, ProviderError>> {
        Box::pin(self.records(zone_id))
    }

    fn apply<'a>(
        &'a self,
        zone_id: &'a str,
        changes: &'a ChangeSet,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.apply_changes(zone_id, changes))
    }
}

#[cfg(test)]
mod tests;
