//! The sequencers' account APIs, as far as adding a mailbox goes
//! (`shared/reference/exports_and_peers.md` §1.1–1.3):
//!
//! - Instantly API v2: `GET /api/v2/accounts/{email}` tells whether the
//!   account exists (as the n8n workflow does), `POST /api/v2/accounts`
//!   with `provider_code: 1` (generic IMAP/SMTP) adds it; bearer key.
//! - Smartlead: `GET /api/v1/email-accounts/` pages through the accounts,
//!   `POST /api/v1/email-accounts/save` with `id: null` adds one; the key
//!   goes in the `api_key` query parameter, as Smartlead requires.
//! - Reply.io v3: `POST /v3/email-accounts`; key in `X-Api-Key`. How it
//!   answers a duplicate is not documented: 409, or any refusal saying
//!   "already exists", is read as one.
//!
//! Every call waits out 429s (honouring `Retry-After`) and retries 5xx and
//! network failures within a [`RetryPolicy`].

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{PushOptions, Tool};
use crate::config::SequencerUrls;
use crate::exports::formats::{Row, WARMUP_INCREMENT, WARMUP_LIMIT};
use crate::remote::{Failure, RetryPolicy, http_client, network_error, retry_after};

/// Instantly's `provider_code` for a generic IMAP/SMTP account.
const INSTANTLY_IMAP: u8 = 1;
/// Smartlead's page size when listing accounts.
const SMARTLEAD_PAGE: usize = 100;
/// Reply rate Smartlead's warmup aims at, as in the CSV (fact sheet §1.2).
const SMARTLEAD_REPLY_RATE: u32 = 30;
/// The longest tool message passed on.
const MAX_MESSAGE: usize = 300;

/// What a tool said about one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Created,
    Exists,
    /// The tool refused this mailbox; its own words.
    Refused(String),
    /// The tool refused the key: every other call would fail the same way.
    KeyRefused(String),
}

/// A tool's answer: its status and JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

pub struct Sequencers {
    http: reqwest::Client,
    urls: SequencerUrls,
    retry: RetryPolicy,
}

impl Sequencers {
    pub fn new(urls: SequencerUrls, retry: RetryPolicy) -> reqwest::Result<Self> {
        Ok(Self {
            http: http_client()?,
            urls,
            retry,
        })
    }

    fn url(&self, tool: Tool, segments: &[&str]) -> Url {
        let mut url = match tool {
            Tool::Instantly => self.urls.instantly.clone(),
            Tool::Smartlead => self.urls.smartlead.clone(),
            Tool::ReplyIo => self.urls.replyio.clone(),
        };
        // Only fails for cannot-be-a-base URLs, which the settings refuse.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, tool: Tool, method: Method, url: Url, key: &SecretString) -> RequestBuilder {
        let req = self.http.request(method, url);
        match tool {
            Tool::Instantly => req.bearer_auth(key.expose_secret()),
            Tool::Smartlead => req.query(&[("api_key", key.expose_secret())]),
            Tool::ReplyIo => req.header("X-Api-Key", key.expose_secret()),
        }
    }

    /// One call, retried through 429s, 5xx and network failures. `Err`
    /// holds a message for the person when retrying gave up.
    async fn call(
        &self,
        tool: Tool,
        method: Method,
        url: Url,
        key: &SecretString,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut failed = 0;
        loop {
            let mut req = self.request(tool, method.clone(), url.clone(), key);
            if let Some(body) = body {
                req = req.json(body);
            }
            let (failure, message) = match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let after = retry_after(res.headers());
                    let bytes = res.bytes().await.unwrap_or_default();
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = after.unwrap_or_else(|| self.retry.backoff(failed + 1));
                        (
                            Failure::RateLimited(wait),
                            format!("{} is rate limiting us; push again later", tool.label()),
                        )
                    } else if status.is_server_error() {
                        let said = message_of(&body).unwrap_or_default();
                        (
                            Failure::Transient,
                            format!("{} failed (HTTP {}) {said}", tool.label(), status.as_u16())
                                .trim_end()
                                .to_owned(),
                        )
                    } else {
                        return Ok(Reply { status, body });
                    }
                }
                Err(e) => (
                    Failure::Transient,
                    format!("{} is unreachable: {}", tool.label(), network_error(e)),
                ),
            };
            failed += 1;
            let Some(wait) = self.retry.wait(failure, failed) else {
                return Err(message);
            };
            tracing::warn!(
                %tool, attempt = failed, wait_ms = millis(wait), error = %message,
                "sequencer call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// What the tool knows already, where finding out is one listing
    /// (Smartlead); `None` when each add is checked on its own.
    pub async fn existing(
        &self,
        tool: Tool,
        key: &SecretString,
    ) -> Result<Option<HashSet<String>>, Answer> {
        if tool != Tool::Smartlead {
            return Ok(None);
        }
        let mut known = HashSet::new();
        for page in 0.. {
            let mut url = self.url(tool, &["api", "v1", "email-accounts", ""]);
            url.query_pairs_mut()
                .append_pair("offset", &(page * SMARTLEAD_PAGE).to_string())
                .append_pair("limit", &SMARTLEAD_PAGE.to_string());
            let reply = self
                .call(tool, Method::GET, url, key, None)
                .await
                .map_err(Answer::Refused)?;
            if !reply.status.is_success() {
                return Err(refusal(tool, &reply));
            }
            let accounts = reply.body.as_array().cloned().unwrap_or_default();
            known.extend(accounts.iter().filter_map(|a| {
                a.get("from_email")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
            }));
            if accounts.len() < SMARTLEAD_PAGE {
                break;
            }
        }
        Ok(Some(known))
    }

    /// Adds one mailbox to the tool.
    pub async fn add(
        &self,
        tool: Tool,
        key: &SecretString,
        row: &Row,
        options: &PushOptions,
    ) -> Answer {
        match self.try_add(tool, key, row, options).await {
            Ok(answer) => answer,
            Err(message) => Answer::Refused(message),
        }
    }

    async fn try_add(
        &self,
        tool: Tool,
        key: &SecretString,
        row: &Row,
        options: &PushOptions,
    ) -> Result<Answer, String> {
        if tool == Tool::Instantly {
            let url = self.url(tool, &["api", "v2", "accounts", &row.email]);
            let reply = self.call(tool, Method::GET, url, key, None).await?;
            if reply.status.is_success() {
                return Ok(Answer::Exists);
            }
            if reply.status != StatusCode::NOT_FOUND {
                return Ok(refusal(tool, &reply));
            }
        }
        let (segments, body): (&[&str], Value) = match tool {
            Tool::Instantly => (&["api", "v2", "accounts"], instantly_body(row, options)),
            Tool::Smartlead => (
                &["api", "v1", "email-accounts", "save"],
                smartlead_body(row, options),
            ),
            Tool::ReplyIo => (&["v3", "email-accounts"], replyio_body(row, options)),
        };
        let url = self.url(tool, segments);
        let reply = self.call(tool, Method::POST, url, key, Some(&body)).await?;
        // Smartlead answers 200 with `ok: false` for some refusals.
        let refused_in_body = reply.body.get("ok").and_then(Value::as_bool) == Some(false);
        if reply.status.is_success() && !refused_in_body {
            return Ok(Answer::Created);
        }
        Ok(refusal(tool, &reply))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The tool's own words from an error body: Instantly answers
/// `{statusCode, error, message}`, Smartlead `{message}` or `{error}`,
/// Reply.io `{message}` or a problem document (`title`, `detail`).
fn message_of(body: &Value) -> Option<String> {
    let said = ["message", "error", "detail", "title"]
        .iter()
        .find_map(|k| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .or_else(|| body.as_str().filter(|s| !s.is_empty()))?;
    Some(said.chars().take(MAX_MESSAGE).collect())
}

fn refusal(tool: Tool, reply: &Reply) -> Answer {
    let code = reply.status.as_u16();
    let said = message_of(&reply.body).unwrap_or_else(|| format!("HTTP {code}"));
    if matches!(
        reply.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        return Answer::KeyRefused(format!(
            "{} refused the API key ({said}); check the key and its permissions",
            tool.label()
        ));
    }
    if reply.status == StatusCode::CONFLICT || said.to_ascii_lowercase().contains("already exist") {
        return Answer::Exists;
    }
    Answer::Refused(format!("{}: {said}", tool.label()))
}

/// Instantly's create-account fields (API v2 Account schema); ports are
/// integers, the same password serves IMAP and SMTP.
fn instantly_body(row: &Row, options: &PushOptions) -> Value {
    let mut body = json!({
        "email": row.email,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "provider_code": INSTANTLY_IMAP,
        "imap_username": row.email,
        "imap_password": row.password,
        "imap_host": row.imap_host,
        "imap_port": row.imap_port,
        "smtp_username": row.email,
        "smtp_password": row.password,
        "smtp_host": row.smtp_host,
        "smtp_port": row.smtp_port,
        "daily_limit": options.daily_limit.unwrap_or(row.daily_limit),
    });
    if options.warmup.unwrap_or(row.warmup) {
        body["warmup"] = json!({ "limit": WARMUP_LIMIT, "increment": WARMUP_INCREMENT });
    }
    if let Some(t) = &row.tracking_domain {
        body["tracking_domain_name"] = json!(t);
    }
    body
}

/// Smartlead's add-SMTP-account fields; `user_name`/`password` are the SMTP
/// login and IMAP falls back to them.
fn smartlead_body(row: &Row, options: &PushOptions) -> Value {
    json!({
        "id": null,
        "from_name": row.display_name(),
        "from_email": row.email,
        "user_name": row.email,
        "password": row.password,
        "smtp_host": row.smtp_host,
        "smtp_port": row.smtp_port,
        "imap_host": row.imap_host,
        "imap_port": row.imap_port,
        "max_email_per_day": options.daily_limit.unwrap_or(row.daily_limit),
        "custom_tracking_url": row.tracking_domain.clone().unwrap_or_default(),
        "warmup_enabled": options.warmup.unwrap_or(row.warmup),
        "total_warmup_per_day": WARMUP_LIMIT,
        "daily_rampup": WARMUP_INCREMENT,
        "reply_rate_percentage": SMARTLEAD_REPLY_RATE,
    })
}

/// Reply.io's v3 fields. Port 587 is STARTTLS and 993 implicit TLS, both
/// encrypted, so the SSL flags are true (the CSV says the same).
fn replyio_body(row: &Row, options: &PushOptions) -> Value {
    json!({
        "email": row.email,
        "senderName": row.display_name(),
        "smtpHost": row.smtp_host,
        "smtpPort": row.smtp_port,
        "smtpPassword": row.password,
        "smtpSsl": true,
        "imapHost": row.imap_host,
        "imapPort": row.imap_port,
        "imapPassword": row.password,
        "imapSsl": true,
        "dailyLimit": options.daily_limit.unwrap_or(row.daily_limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_messages_are_read_from_each_error_shape() {
        let m = |v: Value| message_of(&v);
        assert_eq!(
            m(json!({"statusCode": 400, "error": "Bad Request", "message": "bad port"})),
            Some("bad port".into())
        );
        assert_eq!(m(json!({"error": "nope"})), Some("nope".into()));
        assert_eq!(m(json!({"title": "Conflict"})), Some("Conflict".into()));
        assert_eq!(m(json!("plain")), Some("plain".into()));
        assert_eq!(m(Value::Null), None);
        let long = "x".repeat(1000);
        assert_eq!(m(json!({"message": long})).unwrap().len(), MAX_MESSAGE);
    }

    #[test]
    fn refusals_are_classified() {
        let r = |code: u16, body: Value| {
            refusal(
                Tool::ReplyIo,
                &Reply {
                    status: StatusCode::from_u16(code).unwrap(),
                    body,
                },
            )
        };
        assert_eq!(r(409, Value::Null), Answer::Exists);
        assert_eq!(
            r(400, json!({"message": "Email account already exists"})),
            Answer::Exists
        );
        assert!(matches!(r(401, Value::Null), Answer::KeyRefused(m) if m.contains("HTTP 401")));
        assert_eq!(
            r(422, json!({"message": "SMTP login failed"})),
            Answer::Refused("Reply.io: SMTP login failed".into())
        );
    }
}
