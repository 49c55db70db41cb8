//! The certificates of the public listener when `public_tls = "acme"`.

use anyhow::Context;

use crate::config::Settings;
use crate::dovecot::tls as self_signed;
use crate::tls::reload;
use crate::tls::resolver::Resolver;

/// The public listener's certificates: every bundle of `tls_dir`, and the
/// self-signed pair of `<tls_dir>/self-signed/` until one covers the admin host
/// (`public_url`'s).
pub(super) fn public_resolver(settings: &Settings) -> anyhow::Result<Resolver> {
    let admin_host = settings
        .public_url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let pair = self_signed::default_paths(&settings.tls_dir);
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(admin_host.clone());
    self_signed::ensure_self_signed(&pair, &names)?;
    let resolver = Resolver::new(&settings.tls_dir, admin_host, (pair.cert, pair.key))
        .context("cannot load the public listener's self-signed certificate")?;
    // A manifest that cannot be read must not keep the admin UI from
    // starting: the self-signed pair is served and the log says why.
    match resolver.reload() {
        Ok(loaded) => {
            reload::log_public(&loaded.serving, &loaded.fallback);
            for (id, why) in loaded.failed {
                tracing::error!(bundle = %id, error = %why, "a certificate bundle could not be loaded");
            }
        }
        Err(e) => tracing::error!(
            error = %e,
            "cannot read the certificates; the public listener serves a self-signed one"
        ),
    }
    Ok(resolver)
}
