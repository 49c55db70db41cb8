//! What the appliance itself does when certificates change: the public
//! listener takes the new bundles at once. KumoMTA and Dovecot are told by
//! root, not by this process (it runs without privileges, see
//! `packaging/inboxgrove.service`): `packaging/inboxgrove-tls-reload.path`
//! watches `certificates.json`, which [`super::Manifest::install`] renames
//! into place last, and starts `inboxgrove-tls-reload.service`.
//!
//! KumoMTA's epoch is not bumped: an ESMTP listener keeps its rustls config
//! in an LRU cache with a 300 s TTL keyed by the certificate's *path*
//! (`TLS_CONFIG` in `crates/kumod/src/smtp_server.rs`,
//! `ConcreteEsmtpListenerParams::build_tls_acceptor`), rebuilt by
//! `make_server_config` (`crates/kumo-server-common/src/tls_helpers.rs`),
//! which reads the file again (`KeySource::get`,
//! `crates/data-loader/src/lib.rs`). `bump-config-epoch` only advances the
//! epoch (`crates/config/src/epoch.rs`); lruttl caches expire by TTL or
//! memory pressure alone (`crates/lruttl/src/lib.rs`). So a renewed bundle
//! at the same path is served by kumod within five minutes, and a new path
//! needs the restart the reload service does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::resolver::{Fallback, Resolver};
use super::{Bundle, Reload};

/// The [`Reload`] the server hands the ACME client.
pub struct Served {
    /// The public listener's certificates, when it serves HTTPS.
    public: Option<Arc<Resolver>>,
}

impl Served {
    pub fn new(public: Option<Arc<Resolver>>) -> Self {
        Self { public }
    }
}

impl Reload for Served {
    fn reload<'a>(
        &'a self,
        changed: &'a [Bundle],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            for b in changed {
                tracing::info!(
                    bundle = %b.id,
                    names = %b.names.join(","),
                    not_after = %b.not_after,
                    "certificate installed; KumoMTA and Dovecot take it through inboxgrove-tls-reload.service"
                );
            }
            let Some(resolver) = &self.public else {
                return Ok(());
            };
            let reloaded = resolver.reload().map_err(|e| e.to_string())?;
            log_public(&reloaded.serving, &reloaded.fallback);
            if reloaded.failed.is_empty() {
                return Ok(());
            }
            let failed: Vec<String> = reloaded
                .failed
                .iter()
                .map(|(id, why)| format!("bundle {id}: {why}"))
                .collect();
            Err(format!(
                "the public listener kept its previous certificates for {}",
                failed.join("; ")
            ))
        })
    }
}

/// Says what the public listener serves now.
pub fn log_public(serving: &[String], fallback: &Fallback) {
    match fallback {
        Fallback::Bundle(id) => tracing::info!(
            bundles = %serving.join(","),
            default = %id,
            "the public listener serves HTTPS with the ACME certificates"
        ),
        Fallback::SelfSigned(path) => tracing::warn!(
            bundles = %serving.join(","),
            self_signed = %path.display(),
            "no certificate covers the admin host yet: the public listener serves a self-signed one, which browsers warn about"
        ),
    }
}
