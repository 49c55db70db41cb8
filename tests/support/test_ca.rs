//! A certificate authority of the tests' own: it signs leaf certificates
//! that are installed as bundles exactly as the ACME client installs them
//! (`Manifest::install`), and a TLS client that trusts it alone checks
//! what a listener serves for a name, as a sequencer or KumoMTA would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use inboxgrove::tls::{Bundle, Manifest};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// One signed leaf: the PEM files of a bundle and the leaf's DER.
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "InboxGrove test CA");
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names`, valid until `not_after`, with its chain.
    pub fn leaf(&self, names: &[&str], not_after: DateTime<Utc>) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(
            not_after.year(),
            not_after.month() as u8,
            not_after.day() as u8,
        );
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// Signs a leaf for `names` and installs it in `tls_dir` as bundle
    /// `id`; returns the leaf's DER.
    pub fn install(
        &self,
        tls_dir: &Path,
        id: &str,
        names: &[&str],
        not_after: DateTime<Utc>,
    ) -> Vec<u8> {
        let leaf = self.leaf(names, not_after);
        let bundle = Bundle {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_after,
            issued_at: DateTime::from_timestamp(1_780_000_000, 0).unwrap(),
        };
        let mut manifest = Manifest::load(tls_dir).unwrap();
        manifest
            .install(tls_dir, bundle, &leaf.chain_pem, &leaf.key_pem)
            .unwrap();
        leaf.der
    }

    /// A TLS client that trusts this CA and nothing else, and checks the
    /// name as any validating client does.
    pub fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem().as_bytes()).unwrap())
            .unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

/// The leaf certificate `addr` serves to a client asking for `name`, or
/// why the handshake failed (a certificate that does not verify).
pub async fn served_leaf(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    Ok(leaf.to_vec())
}
