//! What the warmup engine trusts when it connects to a provider's SMTP or
//! IMAP server: the public roots (webpki-roots: the binary is static and
//! reads no system store) plus certificates the operator names, such as
//! the appliance's own self-signed one or a private CA. A certificate is
//! always verified, chain and name; there is no switch to accept an
//! invalid one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0:?} is not a host name or IP address a certificate can be checked for")]
    BadName(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// The roots a connection's certificate must chain to.
#[derive(Clone)]
pub struct Trust {
    /// The operator's certificates, DER, as lettre takes them.
    extra: Arc<Vec<CertificateDer<'static>>>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("extra_certificates", &self.extra.len())
            .finish()
    }
}

impl Trust {
    /// The public roots and every certificate in `extra_pem_files` (each
    /// file one or more PEM certificates).
    pub fn new(extra_pem_files: &[PathBuf]) -> Result<Trust, TlsError> {
        let mut extra = Vec::new();
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in extra_pem_files {
            for cert in read_pem(path)? {
                roots.add(cert.clone()).map_err(|e| TlsError::Invalid {
                    path: path.clone(),
                    message: format!("cannot be trusted: {e}"),
                })?;
                extra.push(cert);
            }
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            extra: Arc::new(extra),
            config: Arc::new(config),
        })
    }

    /// A connector for IMAP (implicit TLS or after STARTTLS).
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }

    /// lettre's TLS settings for a server whose certificate must be valid
    /// for `name`: the same roots as [`Trust::connector`].
    pub fn smtp_parameters(&self, name: &str) -> Result<TlsParameters, TlsError> {
        let mut builder = TlsParameters::builder(name.to_owned())
            .certificate_store(CertificateStore::WebpkiRoots);
        for cert in self.extra.iter() {
            let cert =
                Certificate::from_der(cert.to_vec()).map_err(|e| TlsError::Setup(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| TlsError::BadName(format!("{name}: {e}")))
    }
}

/// The certificates of one PEM file; at least one.
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            message: format!("is not PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            path: path.to_owned(),
            message: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = Trust::new(std::slice::from_ref(&missing)).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Trust::new(std::slice::from_ref(&empty)).unwrap_err();
        assert!(
            err.to_string().contains("empty.pem") && err.to_string().contains("no PEM"),
            "{err}"
        );

        let garbled = dir.path().join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = Trust::new(std::slice::from_ref(&garbled)).unwrap_err();
        assert!(err.to_string().contains("garbled.pem"), "{err}");
    }

    #[test]
    fn a_self_signed_certificate_is_trusted_for_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let pem = dir.path().join("cert.pem");
        std::fs::write(&pem, made.cert.pem()).unwrap();
        let trust = Trust::new(&[pem]).unwrap();
        assert_eq!(trust.extra.len(), 1);
        trust.smtp_parameters("localhost").unwrap();
        assert!(Trust::new(&[]).unwrap().extra.is_empty());
    }
}
