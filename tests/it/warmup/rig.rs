//! The world the warmup engine runs in, in the tests: the appliance with a
//! manual clock; an SMTP receiver in KumoMTA's place on submission (it
//! asks the appliance's control endpoint, as the policy does, to decide
//! and count each message, strips the engine's marker as the policy does,
//! and delivers into the maildirs KumoMTA's maildir queue writes); the
//! appliance's real Dovecot serving those maildirs (reached through a
//! forwarder on a port fixed before it starts); and an external provider:
//! a second real Dovecot with Sieve, fed over LMTP by its own SMTP
//! receiver, whose script files mail from one domain into Junk.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use inboxgrove::clock::ManualClock;
use inboxgrove::config::WarmupArgs;
use inboxgrove::warmup::marker;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};

use crate::domains::{World, world_around};
use crate::helpers::Options;
use crate::inboxes::{bulk, read_secret, with_domain};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::{Envelope, Hooks, SmtpSink, lmtp_deliver};
use crate::support::test_ca::TestCa;

/// The provider's Sieve script: mail from this domain lands in Junk.
pub const JUNKED_DOMAIN: &str = "beta.test";
pub const DOMAINS: [&str; 3] = ["alpha.test", "beta.test", "gamma.test"];
pub const PEERS: [(&str, &str); 2] = [
    ("pat@gmail.com", "pat-app-pw"),
    ("sam@outlook.com", "sam-app-pw"),
];

pub struct Mailbox {
    pub id: String,
    pub email: String,
    pub password: String,
}

pub struct Rig {
    pub w: World,
    pub clock: Arc<ManualClock>,
    pub mailboxes: Vec<Mailbox>,
    pub appliance: Arc<Dovecot>,
    pub provider: Arc<Dovecot>,
    /// In KumoMTA's place on submission.
    pub submission: SmtpSink,
    /// The provider's own submission, for the peers' replies.
    pub provider_smtp: SmtpSink,
    pub held: Held,
    /// The engine's servers, for a restart.
    warmup: WarmupArgs,
    /// Signed the receivers' and the provider's certificate.
    pub ca: TestCa,
    _ca_dir: TempDir,
}

type Shared<T> = Arc<OnceLock<T>>;

fn public_ip() -> inboxgrove::config::DomainArgs {
    inboxgrove::config::DomainArgs {
        public_ipv4: Some(crate::domains::IPV4.parse().unwrap()),
        ..Default::default()
    }
}

/// Where a message for `rcpt` goes: a hosted mailbox's maildir, as
/// KumoMTA's maildir queue writes it, or the provider over LMTP.
/// Domains whose mail the stand-in accepts and never delivers, as KumoMTA
/// queues mail it cannot hand over (a real kumod refused a hosted domain's
/// self-signed certificate and retried until the message expired).
pub type Held = Arc<Mutex<std::collections::HashSet<String>>>;

async fn route(
    appliance: &Shared<Arc<Dovecot>>,
    provider: &Shared<Arc<Dovecot>>,
    held: &Held,
    env: &Envelope,
    data: &[u8],
) -> Result<(), (u16, String)> {
    for rcpt in &env.rcpts {
        let domain = rcpt.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if held.lock().unwrap().contains(domain) {
            continue;
        }
        if DOMAINS.contains(&domain) {
            let d = appliance
                .get()
                .ok_or((451, "no appliance Dovecot yet".to_owned()))?;
            let name = format!(
                "{}.{}.test",
                uuid::Uuid::new_v4().simple(),
                std::process::id()
            );
            d.deliver(rcpt, &name, data);
        } else {
            let p = provider.get().ok_or((451, "no provider yet".to_owned()))?;
            lmtp_deliver(p.lmtp.unwrap(), &env.mail_from, rcpt, data)
                .await
                .map_err(|e| (451, e))?;
        }
    }
    Ok(())
}

fn header(data: &[u8], name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse(data)?;
    parsed.header_raw(name).map(|v| v.trim().to_owned())
}

/// The message without the engine's marker, as the policy sends it on.
fn strip_marker(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let prefix = format!("{}:", marker::HEADER.to_ascii_lowercase());
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with(&prefix))
        .collect();
    format!("{}\r\n\r\n{body}", kept.join("\r\n")).into_bytes()
}

/// What the policy sends to /send-check for a submitted message.
fn send_check_body(env: &Envelope) -> Value {
    let from = header(&env.data, "From")
        .map(|f| vec![f])
        .unwrap_or_default();
    json!({
        "authn_id": env.authn.clone().unwrap_or_default(),
        "envelope_from": env.mail_from,
        "from_headers": from,
        "sender_headers": [],
        "recipients": env.rcpts,
        "warmup_marker": header(&env.data, marker::HEADER),
        "message_id": header(&env.data, "Message-ID"),
    })
}

impl Rig {
    pub async fn start(clock: Arc<ManualClock>, control_listen: Option<SocketAddr>) -> Self {
        let ca = TestCa::new();
        let ca_dir = tempfile::tempdir().unwrap();
        let leaf = ca.leaf(
            &["localhost", "127.0.0.1"],
            "2099-01-01T00:00:00Z".parse().unwrap(),
        );
        let (ca_pem, cert, key) = (
            ca_dir.path().join("ca.pem"),
            ca_dir.path().join("chain.pem"),
            ca_dir.path().join("key.pem"),
        );
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        std::fs::write(&cert, &leaf.chain_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [&cert, &key] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(ca_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

        let appliance: Shared<Arc<Dovecot>> = Arc::default();
        let provider: Shared<Arc<Dovecot>> = Arc::default();
        let control: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let logins: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let held: Held = Arc::default();

        let submission = {
            let (appliance, provider, control, logins, held) = (
                appliance.clone(),
                provider.clone(),
                control.clone(),
                logins.clone(),
                held.clone(),
            );
            SmtpSink::start(
                &cert,
                &key,
                Hooks {
                    auth: Arc::new(move |u, p| {
                        logins
                            .lock()
                            .unwrap()
                            .get(&u.to_ascii_lowercase())
                            .is_some_and(|x| x == p)
                    }),
                    deliver: Arc::new(move |env| {
                        let (appliance, provider, control, held) = (
                            appliance.clone(),
                            provider.clone(),
                            control.clone(),
                            held.clone(),
                        );
                        Box::pin(async move {
                            let (url, secret) = control
                                .lock()
                                .unwrap()
                                .clone()
                                .ok_or((451, "no appliance".to_owned()))?;
                            let decision: Value = reqwest::Client::new()
                                .post(format!("{url}/kumo/v1/send-check"))
                                .bearer_auth(secret)
                                .json(&send_check_body(&env))
                                .send()
                                .await
                                .map_err(|e| (451, e.to_string()))?
                                .json()
                                .await
                                .map_err(|e| (451, e.to_string()))?;
                            if decision["allow"] != json!(true) {
                                let code = decision["code"].as_u64().unwrap_or(451) as u16;
                                return Err((
                                    code,
                                    decision["reason"].as_str().unwrap_or("refused").to_owned(),
                                ));
                            }
                            route(&appliance, &provider, &held, &env, &strip_marker(&env.data))
                                .await
                        })
                    }),
                },
            )
            .await
        };
        let provider_smtp = {
            let (appliance, provider, held) = (appliance.clone(), provider.clone(), held.clone());
            SmtpSink::start(
                &cert,
                &key,
                Hooks {
                    auth: Arc::new(|u, p| PEERS.iter().any(|(e, pw)| *e == u && *pw == p)),
                    deliver: Arc::new(move |env| {
                        let (appliance, provider, held) =
                            (appliance.clone(), provider.clone(), held.clone());
                        Box::pin(async move {
                            route(&appliance, &provider, &held, &env, &env.data).await
                        })
                    }),
                },
            )
            .await
        };
        let forward = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let warmup = WarmupArgs {
            warmup_submission: Some(submission.addr.to_string()),
            warmup_imap: Some(forward.local_addr().unwrap().to_string()),
            warmup_tls_name: Some("localhost".into()),
            warmup_ca_file: Some(ca_pem.clone()),
        };
        let w = world_around(Options {
            domains: public_ip(),
            clock: Some(clock.clone()),
            control_listen,
            warmup: warmup.clone(),
            ..Default::default()
        })
        .await;
        *control.lock().unwrap() =
            Some((w.app.control.clone(), read_secret(&w.app, "kumo.secret")));

        let appliance_dovecot = Arc::new(Dovecot::start(&w.app.control, w.app.dir.path()).await);
        let target = appliance_dovecot.imaps;
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = forward.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        let _ = appliance.set(appliance_dovecot.clone());
        let sieve = format!(
            "require [\"fileinto\"];\nif address :domain :is \"from\" \"{JUNKED_DOMAIN}\" {{\n  fileinto \"INBOX.Junk\";\n  stop;\n}}\n"
        );
        let provider_dovecot = Arc::new(Dovecot::provider(&PEERS, &sieve, &cert, &key).await);
        let _ = provider.set(provider_dovecot.clone());

        let mut mailboxes = Vec::new();
        for name in DOMAINS {
            let domain = with_domain(&w, name).await;
            w.app.set_domain_status(name, "active");
            let (status, created) = bulk(
                &w,
                json!({ "domain_id": domain, "quantity": 2, "enable_warmup": true }),
            )
            .await;
            assert!(status.is_success(), "{created}");
            for i in created["inboxes"].as_array().unwrap() {
                let m = Mailbox {
                    id: i["inbox_id"].as_str().unwrap().to_owned(),
                    email: i["email"].as_str().unwrap().to_ascii_lowercase(),
                    password: i["password"].as_str().unwrap().to_owned(),
                };
                logins
                    .lock()
                    .unwrap()
                    .insert(m.email.clone(), m.password.clone());
                mailboxes.push(m);
            }
        }
        Self {
            w,
            clock,
            mailboxes,
            appliance: appliance_dovecot,
            provider: provider_dovecot,
            submission,
            provider_smtp,
            held,
            warmup,
            ca,
            _ca_dir: ca_dir,
        }
    }

    /// Adds both peers as the admin, shared with every user.
    pub async fn add_peers(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (email, password) in PEERS {
            let (status, peer) = self
                .w
                .app
                .post(
                    "/api/v1/warmup/peers",
                    json!({
                        "email": email,
                        "display_name": email.split('@').next().unwrap(),
                        "imap_host": "127.0.0.1",
                        "imap_port": self.provider.imaps.port(),
                        "imap_implicit_tls": true,
                        "smtp_host": "127.0.0.1",
                        "smtp_port": self.provider_smtp.addr.port(),
                        "password": password,
                        "shared": true,
                    }),
                    Some(&self.w.admin),
                )
                .await;
            assert_eq!(status, reqwest::StatusCode::CREATED, "{peer}");
            out.push(peer);
        }
        out
    }

    /// Moves the clock to `to` in steps of `step`, running what is due at
    /// each, as the workers would.
    pub async fn run_until(&self, to: DateTime<Utc>, step: chrono::Duration) {
        loop {
            self.w.app.scheduler.run_due().await.unwrap();
            let now = inboxgrove::clock::Clock::now(&*self.clock);
            if now >= to {
                return;
            }
            self.clock.advance(step.min(to - now));
        }
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c =
            rusqlite::Connection::open(inboxgrove::store::Store::path_in(self.w.app.dir.path()))
                .unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c
    }
}

impl Rig {
    /// Stops the server and starts it again on the same data dir, control
    /// listener and clock (a restart in the middle of a day).
    pub async fn restart(&mut self, control_listen: SocketAddr) {
        let mut opts = Options {
            clock: Some(self.clock.clone()),
            control_listen: Some(control_listen),
            warmup: self.warmup.clone(),
            ..crate::domains::options_for(&self.w)
        };
        opts.domains.public_ipv4 = public_ip().public_ipv4;
        let old = std::mem::replace(&mut self.w.app, crate::helpers::spawn_app().await);
        let dir = old.stop().await;
        let scratch = std::mem::replace(
            &mut self.w.app,
            crate::helpers::spawn_app_in(dir, opts).await,
        );
        scratch.stop().await;
    }
}
