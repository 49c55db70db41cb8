//! Let's Encrypt's test CA, Debian's `pebble`, as a real ACME server on
//! loopback: started on free ports with its own TLS certificate (made
//! here: the package ships none), validating through the loopback DNS
//! server (`-dnsserver`) and connecting for HTTP-01 to the port the
//! appliance's responder listens on. Killed when dropped.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Pebble {
    child: Child,
    dir: TempDir,
    acme: SocketAddr,
    management: SocketAddr,
    client: reqwest::Client,
}

/// A port nothing listens on now (the OS picks it; it stays free unless
/// someone else takes it in the moment before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Pebble {
    /// Starts pebble; it resolves names through `dns` and validates
    /// HTTP-01 on `http_port`. Certificates live 90 days, as Let's
    /// Encrypt's do, so renewal times are the real ones.
    pub async fn start(dns: SocketAddr, http_port: u16) -> Pebble {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_pem, cert_pem, key_pem) = tls_files();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).expect("write ca");
        std::fs::write(dir.path().join("cert.pem"), cert_pem).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), key_pem).expect("write key");
        let acme: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let management: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let config = serde_json::json!({ "pebble": {
            "listenAddress": acme.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": 90 * 86_400,
        }});
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write config");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("log file");
        let child = Command::new(binary())
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.to_string())
            // No random 0–15 s sleep before each validation.
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble refuses 5 % of good nonces by default to exercise
            // clients' badNonce retry; off, so a test's outcome does not
            // depend on chance.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // A fresh authorization for every order, so each renewal
            // really validates again.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start pebble (apt-get install pebble; see scripts/test-packages.txt)");
        let root = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca pem");
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .build()
            .expect("https client");
        let pebble = Pebble {
            child,
            dir,
            acme,
            management,
            client,
        };
        pebble.wait_for_directory().await;
        pebble
    }

    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.acme)
    }

    /// The root the appliance trusts for pebble's own HTTPS
    /// (`acme_ca_file`).
    pub fn https_root(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root pebble signs certificates under (made anew at each start).
    pub async fn issuing_root(&self) -> String {
        let url = format!("https://{}/roots/0", self.management);
        let res = self.client.get(url).send().await.expect("pebble roots");
        assert!(res.status().is_success(), "{}", res.status());
        res.text().await.expect("roots body")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    async fn wait_for_directory(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = self.client.get(self.directory_url()).send().await
                && res.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not serve its directory: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> &'static Path {
    Path::new("/usr/bin/pebble")
}

/// A root (what minica makes for pebble's own tests) and a certificate it
/// signs for 127.0.0.1 and localhost, as PEM: root, leaf, leaf key.
fn tls_files() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pebble test root");
    let ca = ca.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf cert");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}
