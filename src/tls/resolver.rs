//! The certificate the public listener presents, chosen per connection by
//! the name the client asks for (SNI, RFC 6066 §3) among every bundle of
//! `tls_dir`, and swapped in place when the bundles change, so renewing
//! never drops the listener or a connection in progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::crypto::ring::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::{Bundle, Manifest, TlsError};

/// What is served when no bundle covers the name asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The bundle covering the admin host.
    Bundle(String),
    /// The self-signed pair at this path (no bundle covers the admin host).
    SelfSigned(PathBuf),
}

#[derive(Debug)]
struct Loaded {
    bundle: Bundle,
    key: Arc<CertifiedKey>,
}

#[derive(Debug)]
struct Served {
    /// In manifest order: the first bundle covering a name wins, as in
    /// [`Manifest::for_host`].
    bundles: Vec<Loaded>,
    fallback: Arc<CertifiedKey>,
    fallback_from: Fallback,
}

/// Chooses among the bundles of one `tls_dir`.
#[derive(Debug)]
pub struct Resolver {
    dir: PathBuf,
    /// The name served when the client names none the bundles cover (a
    /// connection by IP address sends no SNI).
    admin_host: Option<String>,
    self_signed: (PathBuf, PathBuf),
    served: RwLock<Arc<Served>>,
}

/// What one [`Resolver::reload`] did.
#[derive(Debug)]
pub struct Reloaded {
    /// Ids of the bundles now served.
    pub serving: Vec<String>,
    pub fallback: Fallback,
    /// Bundles that could not be loaded, with why (never key material);
    /// an older copy of the same id, if one was served, still is.
    pub failed: Vec<(String, String)>,
}

impl Resolver {
    /// Serves `self_signed` (certificate, key) to every name until
    /// [`Resolver::reload`] loads the bundles of `dir`, and afterwards
    /// until a bundle covers `admin_host`.
    pub fn new(
        dir: &Path,
        admin_host: Option<String>,
        self_signed: (PathBuf, PathBuf),
    ) -> Result<Self, TlsError> {
        let fallback = load_pair(&self_signed.0, &self_signed.1)?;
        Ok(Self {
            dir: dir.to_owned(),
            admin_host,
            served: RwLock::new(Arc::new(Served {
                bundles: Vec::new(),
                fallback_from: Fallback::SelfSigned(self_signed.0.clone()),
                fallback,
            })),
            self_signed,
        })
    }

    /// Reads the manifest again and serves what it lists. A bundle that
    /// does not load (a missing file, a key that is not its certificate's)
    /// keeps its previous version, so a bad write never takes a working
    /// certificate away.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let manifest = Manifest::load(&self.dir)?;
        let before = self.current();
        let mut previous: HashMap<&str, &Loaded> = before
            .bundles
            .iter()
            .map(|l| (l.bundle.id.as_str(), l))
            .collect();
        let mut bundles = Vec::new();
        let mut failed = Vec::new();
        for bundle in manifest.bundles {
            match load_pair(&bundle.chain_path(&self.dir), &bundle.key_path(&self.dir)) {
                Ok(key) => bundles.push(Loaded { bundle, key }),
                Err(e) => {
                    failed.push((bundle.id.clone(), e.to_string()));
                    if let Some(old) = previous.remove(bundle.id.as_str()) {
                        bundles.push(Loaded {
                            bundle: old.bundle.clone(),
                            key: old.key.clone(),
                        });
                    }
                }
            }
        }
        let admin = self
            .admin_host
            .as_deref()
            .and_then(|host| bundles.iter().find(|l| l.bundle.covers(host)));
        let (fallback, fallback_from) = match admin {
            Some(l) => (l.key.clone(), Fallback::Bundle(l.bundle.id.clone())),
            None => {
                let from = Fallback::SelfSigned(self.self_signed.0.clone());
                match &before.fallback_from {
                    // The self-signed pair never changes while serving.
                    Fallback::SelfSigned(_) => (before.fallback.clone(), from),
                    Fallback::Bundle(_) => {
                        (load_pair(&self.self_signed.0, &self.self_signed.1)?, from)
                    }
                }
            }
        };
        let reloaded = Reloaded {
            serving: bundles.iter().map(|l| l.bundle.id.clone()).collect(),
            fallback: fallback_from.clone(),
            failed,
        };
        let next = Arc::new(Served {
            bundles,
            fallback,
            fallback_from,
        });
        *self.served.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(reloaded)
    }

    fn current(&self) -> Arc<Served> {
        self.served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let served = self.current();
        let named = hello.server_name().and_then(|name| {
            served
                .bundles
                .iter()
                .find(|l| l.bundle.covers(name))
                .map(|l| l.key.clone())
        });
        Some(named.unwrap_or_else(|| served.fallback.clone()))
    }
}

/// A PEM chain and its key, checked to belong together.
fn load_pair(chain: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    let bad = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let chain_pem = std::fs::read(chain).map_err(io(chain))?;
    let certs = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(chain, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(chain, "holds no certificate".into()));
    }
    let key_pem = std::fs::read(key).map_err(io(key))?;
    // Fixed messages: a parser's error could quote a line of the key.
    let der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad(key, "holds no PEM private key".into()))?;
    let signer = any_supported_type(&der)
        .map_err(|_| bad(key, "is not an RSA, ECDSA or Ed25519 key".into()))?;
    let certified = CertifiedKey::new(certs, signer);
    certified
        .keys_match()
        .map_err(|e| bad(key, format!("is not the key of {}: {e}", chain.display())))?;
    Ok(Arc::new(certified))
}
