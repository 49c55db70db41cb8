//! The sweep's samples: for each route of the table, the request it is
//! called with and what another member should get.

use inboxgrove::http::routes::{RouteInfo, Surface};
use serde_json::{Value, json};

use super::Iso;
use crate::helpers::MEMBER_PASSWORD;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Other {
    /// The owner's resource: 404.
    NotFound,
    /// The caller's own data (a list, their own key): served, without the
    /// owner's.
    OwnData,
}

pub(super) struct Sample {
    pub(super) path: String,
    /// JSON for the API, form fields for the UI.
    pub(super) body: Option<Value>,
    pub(super) other: Other,
    /// The handler may refuse the owner's sample with a 4xx of its own
    /// (a wrong current password) — it was reached, which is the point.
    pub(super) owner_refusable: bool,
    /// Signs in afresh for this call (the route ends the session).
    pub(super) fresh: bool,
    /// The caller's own audit rows: they name the ids the caller itself
    /// sent (another member's, refused), so only whose rows they are is
    /// checked.
    pub(super) audit: bool,
}

fn sample(path: String, body: Option<Value>) -> Sample {
    Sample {
        path,
        body,
        other: Other::NotFound,
        owner_refusable: false,
        fresh: false,
        audit: false,
    }
}

impl Sample {
    fn own(mut self) -> Self {
        self.other = Other::OwnData;
        self
    }
    fn refusable(mut self) -> Self {
        self.owner_refusable = true;
        self
    }
    fn audit(mut self) -> Self {
        self.audit = true;
        self
    }
    fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }
}

impl Iso {
    /// What one route is called with; `None`: the sweep has no sample.
    pub(super) async fn sample(&self, r: &RouteInfo) -> Option<Sample> {
        let (d, i) = (&self.domain, &self.inbox);
        let api = |p: &str| format!("/api/v1{p}");
        let wrong_current = "not the current password 1";
        Some(match (r.surface, r.method.as_str(), r.path.as_str()) {
            (Surface::Api, "GET", "/healthz" | "/readyz") => sample(r.path.clone(), None),
            (Surface::Api, "GET" | "POST", "/u/{token}") => {
                sample("/u/not-a-real-token".into(), None)
            }
            (Surface::Api, "POST", "/api/v1/auth/login") => sample(
                api("/auth/login"),
                Some(json!({ "email": self.owner.email, "password": self.owner.password })),
            ),
            (Surface::Api, "POST", "/api/v1/auth/refresh") => {
                let tokens = self.w.app.login(&self.owner.email, &self.owner.password).await;
                sample(
                    api("/auth/refresh"),
                    Some(json!({ "refresh_token": tokens["refresh_token"] })),
                )
            }
            (Surface::Api, "GET", "/api/v1/exports/{token}") => {
                sample(api(&format!("/exports/{}", self.export_link().await)), None)
            }
            (Surface::Api, "POST", "/api/v1/auth/logout") => {
                sample(api("/auth/logout"), None).own().fresh()
            }
            (Surface::Api, "GET", "/api/v1/me") => sample(api("/me"), None).own(),
            (Surface::Api, "GET", "/api/v1/me/usage") => sample(api("/me/usage"), None).own(),
            (Surface::Api, "GET", "/api/v1/tiers") => sample(api("/tiers"), None),
            (Surface::Api, "PATCH", "/api/v1/tiers/{tier}") => sample(
                api("/tiers/pro"),
                Some(json!({ "domains": 25, "mailboxes": 250, "daily_volume": 10000 })),
            ),
            (Surface::Api, "POST", "/api/v1/me/password") => sample(
                api("/me/password"),
                Some(json!({ "current_password": wrong_current, "new_password": "a new password 12345" })),
            )
            .own()
            .refusable(),
            (Surface::Api, "GET", "/api/v1/tokens") => sample(api("/tokens"), None).own(),
            (Surface::Api, "POST", "/api/v1/tokens") => {
                sample(api("/tokens"), Some(json!({ "name": self.unique("t") }))).own()
            }
            (Surface::Api, "DELETE", "/api/v1/tokens/{id}") => {
                sample(api(&format!("/tokens/{}", self.fresh_token().await)), None)
            }
            (Surface::Api, "GET", "/api/v1/users") => sample(api("/users"), None),
            (Surface::Api, "GET", "/api/v1/diagnostics") => sample(api("/diagnostics"), None),
            (Surface::Api, "GET", "/api/v1/certificates") => sample(api("/certificates"), None),
            // The sweep's server makes self-signed certificates: 409.
            (Surface::Api, "POST", "/api/v1/certificates/renew") => {
                sample(api("/certificates/renew"), Some(json!({}))).refusable()
            }
            (Surface::Api, "POST", "/api/v1/users") => sample(
                api("/users"),
                Some(json!({ "email": format!("{}@iso.test", self.unique("u")), "password": MEMBER_PASSWORD })),
            ),
            (Surface::Api, "PATCH", "/api/v1/users/{id}") => sample(
                api(&format!("/users/{}", self.spare_user().await)),
                Some(json!({ "subscription_tier": "pro" })),
            ),
            (Surface::Api, "GET", "/api/v1/audit-logs") => sample(api("/audit-logs?limit=200"), None).own().audit(),
            (Surface::Api, "GET", "/api/v1/settings") => sample(api("/settings"), None),
            (Surface::Api, "PATCH", "/api/v1/settings") => {
                sample(api("/settings"), Some(json!({ "timezone": "UTC" })))
            }
            (Surface::Api, "GET", "/api/v1/domains") => sample(api("/domains"), None).own(),
            (Surface::Api, "POST", "/api/v1/domains/add") => {
                let name = format!("{}.test", self.unique("added"));
                self.w.zones.add_zone(&name);
                sample(api("/domains/add"), Some(json!({ "domain_name": name }))).own()
            }
            (Surface::Api, "GET", "/api/v1/domains/{id}") => {
                sample(api(&format!("/domains/{d}")), None)
            }
            (Surface::Api, "PATCH", "/api/v1/domains/{id}") => sample(
                api(&format!("/domains/{d}")),
                Some(json!({ "dmarc_policy": "none" })),
            ),
            (Surface::Api, "DELETE", "/api/v1/domains/{id}") => sample(
                api(&format!("/domains/{}?force=true", self.fresh_domain().await)),
                None,
            ),
            (Surface::Api, "POST", "/api/v1/domains/{id}/verify") => {
                sample(api(&format!("/domains/{d}/verify")), Some(json!({})))
            }
            (Surface::Api, "GET", "/api/v1/inboxes") => sample(api("/inboxes"), None).own(),
            (Surface::Api, "POST", "/api/v1/inboxes/bulk") => sample(
                api("/inboxes/bulk"),
                Some(json!({ "domain_id": d, "quantity": 1, "naming_scheme": "random" })),
            ),
            (Surface::Api, "POST", "/api/v1/inboxes/export") => sample(
                api("/inboxes/export"),
                Some(json!({ "mailbox_ids": [i], "format": "generic_csv" })),
            ),
            (Surface::Api, "GET", "/api/v1/integrations") => {
                sample(api("/integrations"), None).own()
            }
            (Surface::Api, "PUT", "/api/v1/integrations/{tool}") => sample(
                api("/integrations/instantly"),
                Some(json!({ "api_key": "an-instantly-key-123" })),
            )
            .own(),
            (Surface::Api, "DELETE", "/api/v1/integrations/{tool}") => {
                self.save_keys().await;
                sample(api("/integrations/instantly"), None).own()
            }
            (Surface::Api, "POST", "/api/v1/integrations/{tool}/push") => sample(
                api("/integrations/instantly/push"),
                Some(json!({ "mailbox_ids": [i], "api_key": "an-instantly-key-123" })),
            ),
            (Surface::Api, "GET", "/api/v1/inboxes/{id}") => {
                sample(api(&format!("/inboxes/{i}")), None)
            }
            (Surface::Api, "PATCH", "/api/v1/inboxes/{id}") => sample(
                api(&format!("/inboxes/{i}")),
                Some(json!({ "daily_limit": 25 })),
            ),
            (Surface::Api, "DELETE", "/api/v1/inboxes/{id}") => {
                sample(api(&format!("/inboxes/{}", self.fresh_inbox().await)), None)
            }
            (Surface::Api, "POST", "/api/v1/inboxes/{id}/reset-password") => {
                sample(api(&format!("/inboxes/{i}/reset-password")), None)
            }
            (Surface::Api, "GET", "/api/v1/inboxes/{id}/warmup") => {
                sample(api(&format!("/inboxes/{i}/warmup")), None)
            }
            (Surface::Api, "PATCH", "/api/v1/inboxes/{id}/warmup") => sample(
                api(&format!("/inboxes/{i}/warmup")),
                Some(json!({ "reply_rate_pct": 35 })),
            ),
            (Surface::Api, "POST", "/api/v1/inboxes/{id}/warmup/pause" | "/api/v1/inboxes/{id}/warmup/resume") => {
                sample(r.path.replace("{id}", i), Some(json!({})))
            }
            (Surface::Api, "POST", "/api/v1/domains/{id}/warmup/pause" | "/api/v1/domains/{id}/warmup/resume") => {
                sample(r.path.replace("{id}", d), Some(json!({})))
            }
            (Surface::Api, "GET", "/api/v1/warmup/peers") => sample(api("/warmup/peers"), None).own(),
            // Nothing listens on port 1: the owner's login check fails (422).
            (Surface::Api, "POST", "/api/v1/warmup/peers") => sample(
                api("/warmup/peers"),
                Some(json!({ "email": format!("{}@peer.test", self.unique("p")), "imap_host": "127.0.0.1", "imap_port": 1, "smtp_host": "127.0.0.1", "smtp_port": 1, "password": "app password" })),
            )
            .own()
            .refusable(),
            (Surface::Api, "POST", "/api/v1/warmup/peers/{id}/test") => {
                sample(api(&format!("/warmup/peers/{}/test", self.fresh_peer())), Some(json!({}))).refusable()
            }
            (Surface::Api, "DELETE", "/api/v1/warmup/peers/{id}") => {
                sample(api(&format!("/warmup/peers/{}", self.fresh_peer())), None)
            }

            (Surface::Web, "GET", "/login" | "/") => sample(r.path.clone(), None),
            (Surface::Web, "POST", "/login") => sample(
                "/login".into(),
                Some(json!({ "email": self.owner.email, "password": self.owner.password })),
            ),
            (Surface::Web, "GET", "/assets/{name}") => sample("/assets/no-such-file.js".into(), None),
            (Surface::Web, "POST", "/logout") => sample("/logout".into(), None).own().fresh(),
            (
                Surface::Web,
                "GET",
                "/dashboard" | "/domains" | "/domains/new" | "/inboxes" | "/inboxes/new"
                | "/exports" | "/settings" | "/tokens",
            ) => sample(r.path.clone(), None).own(),
            (Surface::Web, "GET", "/audit") => sample("/audit".into(), None).own().audit(),
            (Surface::Web, "GET", "/users") => sample("/users".into(), None),
            (Surface::Web, "POST", "/tiers/{tier}") => sample(
                "/tiers/pro".into(),
                Some(json!({ "domains": "25", "mailboxes": "250", "daily_volume": "10000" })),
            ),
            (Surface::Web, "GET", "/diagnostics") => sample("/diagnostics".into(), None),
            (Surface::Web, "POST", "/domains") => {
                let name = format!("{}.test", self.unique("form"));
                self.w.zones.add_zone(&name);
                sample("/domains".into(), Some(json!({ "domain_name": name }))).own()
            }
            (Surface::Web, "GET", "/domains/{id}") => sample(format!("/domains/{d}"), None),
            (Surface::Web, "GET", "/domains/{id}/records") => {
                sample(format!("/domains/{d}/records"), None)
            }
            (Surface::Web, "POST", "/domains/{id}/verify") => {
                sample(format!("/domains/{d}/verify"), Some(json!({})))
            }
            (Surface::Web, "POST", "/domains/{id}/dmarc") => sample(
                format!("/domains/{d}/dmarc"),
                Some(json!({ "dmarc_policy": "none" })),
            ),
            (Surface::Web, "POST", "/domains/{id}/egress") => sample(
                format!("/domains/{d}/egress"),
                Some(json!({ "egress_ip": "" })),
            ),
            (Surface::Web, "POST", "/domains/{id}/remove") => sample(
                format!("/domains/{}/remove", self.fresh_domain().await),
                Some(json!({ "force": "on" })),
            ),
            (Surface::Web, "POST", "/inboxes/new") => sample(
                "/inboxes/new".into(),
                Some(json!({ "domain_id": d, "quantity": "1", "naming_scheme": "random" })),
            ),
            (Surface::Web, "GET", "/inboxes/{id}") => sample(format!("/inboxes/{i}"), None),
            (Surface::Web, "POST", "/inboxes/{id}/pause" | "/inboxes/{id}/resume" | "/inboxes/{id}/reset-password") => {
                sample(r.path.replace("{id}", i), Some(json!({})))
            }
            (Surface::Web, "GET", "/inboxes/{id}/warmup") => sample(format!("/inboxes/{i}/warmup"), None),
            (Surface::Web, "POST", "/inboxes/{id}/warmup") => sample(
                format!("/inboxes/{i}/warmup"),
                Some(json!({ "enabled": "1", "preset": "spec", "variation_pct": "20", "reply_rate_pct": "30", "maintenance": "5", "send_centres": "09:00, 14:00, 17:00" })),
            ),
            (Surface::Web, "POST", "/inboxes/{id}/warmup/pause" | "/inboxes/{id}/warmup/resume") => {
                sample(r.path.replace("{id}", i), Some(json!({})))
            }
            (Surface::Web, "GET", "/warmup/peers") => sample("/warmup/peers".into(), None).own(),
            (Surface::Web, "POST", "/warmup/peers") => sample(
                "/warmup/peers".into(),
                Some(json!({ "email": format!("{}@peer.test", self.unique("wp")), "imap_host": "127.0.0.1", "imap_port": "1", "smtp_host": "127.0.0.1", "smtp_port": "1", "password": "app password" })),
            )
            .own()
            .refusable(),
            (Surface::Web, "POST", "/warmup/peers/{id}/test") => {
                sample(format!("/warmup/peers/{}/test", self.fresh_peer()), Some(json!({})))
            }
            (Surface::Web, "POST", "/warmup/peers/{id}/delete") => {
                sample(format!("/warmup/peers/{}/delete", self.fresh_peer()), Some(json!({})))
            }
            (Surface::Web, "POST", "/exports") => sample(
                "/exports".into(),
                Some(json!({ "format": "generic_csv", "addresses": self.inbox_email })),
            ),
            (Surface::Web, "POST", "/exports/push") => sample(
                "/exports/push".into(),
                Some(json!({ "tool": "instantly", "addresses": self.inbox_email, "api_key": "an-instantly-key-123" })),
            ),
            (Surface::Web, "POST", "/exports/keys/{tool}/forget") => {
                self.save_keys().await;
                sample("/exports/keys/instantly/forget".into(), Some(json!({}))).own()
            }
            (Surface::Web, "POST", "/settings/server") => sample(
                "/settings/server".into(),
                Some(json!({ "timezone": "UTC" })),
            ),
            (Surface::Web, "POST", "/settings/password") => sample(
                "/settings/password".into(),
                Some(json!({ "current_password": wrong_current, "new_password": "a new password 12345" })),
            )
            .own()
            .refusable(),
            (Surface::Web, "POST", "/tokens") => {
                sample("/tokens".into(), Some(json!({ "name": self.unique("w") }))).own()
            }
            (Surface::Web, "POST", "/tokens/{id}/revoke") => sample(
                format!("/tokens/{}/revoke", self.fresh_token().await),
                Some(json!({})),
            ),
            (Surface::Web, "POST", "/users") => sample(
                "/users".into(),
                Some(json!({ "email": format!("{}@iso.test", self.unique("wu")), "password": MEMBER_PASSWORD, "role": "member" })),
            ),
            (Surface::Web, "POST", "/users/{id}") => sample(
                format!("/users/{}", self.spare_user().await),
                Some(json!({ "role": "member" })),
            ),
            _ => return None,
        })
    }
}
