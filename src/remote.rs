//! What every client of a remote HTTP API shares (Cloudflare, the
//! sequencers): how long to wait before trying again, reading
//! `Retry-After`, and describing a transport error.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How a call retries transient failures (network, 5xx) and 429s whose
/// Retry-After fits within `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub base: Duration,
    /// The longest single wait; a 429 asking for longer is returned.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

/// How a failed call failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Network trouble or a 5xx: the same call may work later.
    Transient,
    /// A 429, with how long the service asked us to wait.
    RateLimited(Duration),
    /// Trying again would get the same answer.
    Final,
}

impl RetryPolicy {
    /// `base · 2^(failed-1)`, capped at `max`.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long to wait before trying again after `failed` failed tries,
    /// the last ending in `failure`; `None` when the error goes back to the
    /// caller.
    pub fn wait(&self, failure: Failure, failed: u32) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        match failure {
            Failure::Transient => Some(self.backoff(failed)),
            Failure::RateLimited(after) if after <= self.max => {
                Some(after.max(self.backoff(failed)))
            }
            _ => None,
        }
    }
}

/// A `Retry-After` given in seconds (RFC 9110 §10.2.3; the HTTP-date form
/// is not used by the APIs we call).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A transport error with its causes (reqwest's own text is terse),
/// without the URL, so no key in a query string can leak into a message.
pub fn network_error(e: reqwest::Error) -> String {
    // The URL may carry a key in its query (Smartlead's `api_key`).
    with_causes(&e.without_url())
}

/// An error's text followed by each of its sources' (a TLS failure under
/// "client error (Connect)"); a source whose text the message already
/// ends with (a wrapper that prints its source) is not repeated.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The HTTP client every remote API is called with.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("InboxGrove/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_honour_retry_after_within_the_policy() {
        let p = RetryPolicy::default();
        let secs = |n| p.backoff(n).as_secs();
        assert_eq!(
            [secs(1), secs(2), secs(3), secs(6), secs(40)],
            [2, 4, 8, 60, 60]
        );
        assert_eq!(p.wait(Failure::Transient, 1), Some(Duration::from_secs(2)));
        assert_eq!(p.wait(Failure::Transient, 5), None);
        let soon = Failure::RateLimited(Duration::from_secs(30));
        assert_eq!(p.wait(soon, 1), Some(Duration::from_secs(30)));
        let blocked = Failure::RateLimited(Duration::from_secs(300));
        assert_eq!(p.wait(blocked, 1), None);
        assert_eq!(p.wait(Failure::Final, 1), None);
    }

    #[test]
    fn causes_are_appended_once() {
        #[derive(Debug, thiserror::Error)]
        enum Outer {
            #[error("the CA: {0}")]
            Prints(#[from] Middle),
            #[error("connect failed")]
            Silent(#[source] Middle),
        }
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Middle(#[source] std::io::Error);
        let io = || std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            with_causes(&Outer::Prints(Middle(io()))),
            "the CA: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(
            with_causes(&Outer::Silent(Middle(io()))),
            "connect failed: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
