//! Tells KumoMTA to drop what it memoized about mailboxes and keys when one
//! changes: `POST /api/admin/bump-config-epoch` on its HTTP listener (since
//! 2024.11.08; fact sheet §1). The policy memoizes with
//! `invalidate_with_epoch = true`, so the next SMTP session asks again.
//! Best effort: a KumoMTA that is down is logged, never an error for the
//! change that caused the bump.

#[derive(Clone)]
pub struct EpochBumper {
    url: Option<String>,
    http: reqwest::Client,
}

impl EpochBumper {
    /// `kumo_http_url` is KumoMTA's HTTP listener, e.g.
    /// `http://127.0.0.1:8000`; `None` does nothing.
    pub fn new(kumo_http_url: Option<&str>) -> Self {
        Self {
            url: kumo_http_url
                .map(|u| format!("{}/api/admin/bump-config-epoch", u.trim_end_matches('/'))),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn bump(&self) {
        let Some(url) = self.url.clone() else { return };
        let http = self.http.clone();
        tokio::spawn(async move {
            match http.post(&url).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "KumoMTA refused the config epoch bump")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not reach KumoMTA to bump its config epoch")
                }
            }
        });
    }
}
