use std::sync::Arc;

use chrono::DateTime;
use inboxgrove::auth::password::Hasher;
use inboxgrove::clock::{ManualClock, SharedClock, SystemClock};
use inboxgrove::config::{
    AcmeArgs, BootstrapArgs, CertArgs, DoctorArgs, DomainArgs, FileConfig, Global, MailArgs,
    PublicTls, SequencerArgs, ServeArgs, Settings, WarmupArgs,
};
use inboxgrove::domains::service::ProviderFactory;
use inboxgrove::http::routes::RouteInfo;
use inboxgrove::inboxes::datasource::Datasource;
use inboxgrove::jobs::Scheduler;
use inboxgrove::remote::RetryPolicy;
use inboxgrove::server::{Application, Remotes};
use inboxgrove::store::Store;
use inboxgrove::tls::Reload;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 123";
pub const MEMBER_PASSWORD: &str = "member password 456";

pub struct Options {
    pub per_minute: u32,
    pub burst: u32,
    pub clock: Option<Arc<ManualClock>>,
    /// The domain orchestrator's settings (public IP, Cloudflare URL, DNS
    /// servers …).
    pub domains: DomainArgs,
    /// A DNS-provider factory to use instead of the configured Cloudflare.
    pub providers: Option<Arc<dyn ProviderFactory>>,
    /// KumoMTA's HTTP listener, for config-epoch bumps.
    pub kumo_http_url: Option<String>,
    /// The time zone of the sending day.
    pub timezone: Option<String>,
    /// Where the sequencers' APIs are (their doubles).
    pub sequencers: SequencerArgs,
    /// `trusted_proxies`, as the flag takes it.
    pub trusted_proxies: Option<&'static str>,
    /// `tls_dir` and `public_tls`.
    pub certs: CertArgs,
    /// `public_url`, when a test needs one.
    pub public_url: Option<String>,
    /// The certificate settings (`certificates = acme` …).
    pub acme: AcmeArgs,
    /// What is told of new certificates in place of the services (a
    /// recorder).
    pub reload: Option<Arc<dyn inboxgrove::tls::Reload>>,
    /// Where the warmup engine submits and reads (a test's SMTP receiver
    /// and Dovecot).
    pub warmup: WarmupArgs,
    /// A fixed control listener, for a test that restarts the server under
    /// a Dovecot configured with its address.
    pub control_listen: Option<std::net::SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            per_minute: 100_000,
            burst: 100_000,
            clock: None,
            domains: DomainArgs::default(),
            providers: None,
            kumo_http_url: None,
            timezone: None,
            sequencers: SequencerArgs::default(),
            trusted_proxies: None,
            certs: CertArgs::default(),
            public_url: None,
            acme: AcmeArgs::default(),
            reload: None,
            warmup: WarmupArgs::default(),
            control_listen: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub control: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    pub scheduler: Arc<Scheduler>,
    /// The mailbox datasource the server holds (fault tests damage it).
    pub datasource: Datasource,
    /// The password hasher of every login (tests count verifications).
    pub hasher: Hasher,
    /// Every route of the public listener, as the router declares it.
    pub routes: Vec<RouteInfo>,
    /// What the ACME client calls after installing certificates.
    pub tls_reload: Arc<dyn Reload>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn settings(dir: &std::path::Path, opts: &Options) -> Settings {
    let serve = ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        control_listen: Some(
            opts.control_listen
                .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
        ),
        rate_limit_per_minute: std::num::NonZeroU32::new(opts.per_minute),
        rate_limit_burst: std::num::NonZeroU32::new(opts.burst),
        bootstrap: BootstrapArgs {
            admin_email: Some(ADMIN_EMAIL.into()),
        },
        domains: opts.domains.clone(),
        // Off unless a test runs a KumoMTA double: the default port may be
        // another process's on a shared machine.
        kumo_http_url: Some(opts.kumo_http_url.clone().unwrap_or_default()),
        timezone: opts.timezone.clone(),
        sequencers: opts.sequencers.clone(),
        trusted_proxies: opts.trusted_proxies.map(|t| t.parse().unwrap()),
        // Inside the data dir, so each test has its own maildirs.
        mail: MailArgs {
            mail_root: Some(dir.join("mail")),
            mailbox_quota: None,
        },
        doctor: closed_doctor(dir),
        certs: opts.certs.clone(),
        public_url: opts.public_url.clone(),
        acme: opts.acme.clone(),
        // Nothing listens on port 1: a test that runs no warmup never
        // reaches the machine's own mail services.
        warmup: WarmupArgs {
            warmup_submission: Some(
                opts.warmup
                    .warmup_submission
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:1".into()),
            ),
            warmup_imap: Some(
                opts.warmup
                    .warmup_imap
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:1".into()),
            ),
            ..opts.warmup.clone()
        },
        ..Default::default()
    };
    let global = Global {
        data_dir: Some(dir),
        log: None,
        log_format: None,
    };
    Settings::resolve(global, &serve, FileConfig::default(), &|k| {
        (k == "INBOXGROVE_ADMIN_PASSWORD").then(|| ADMIN_PASSWORD.to_owned())
    })
    .unwrap()
}

/// The diagnostics aimed at a loopback port nothing listens on (port 1,
/// tcpmux, never served here), so the page's checks answer at once and no
/// test touches the machine's own mail services or the internet.
pub fn closed_doctor(dir: &std::path::Path) -> DoctorArgs {
    let closed: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    DoctorArgs {
        hostname: Some("mail.test".into()),
        smtp_addr: Some(closed),
        submission_addr: Some(closed),
        imaps_addr: Some(closed),
        kumo_spool: Some(dir.join("spool")),
        outbound_host: Some(closed.to_string()),
        clock_url: Some(format!("http://{closed}/")),
        doctor_timeout: Some(1),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), opts).await
}

/// Starts the server on an existing data dir (a restart).
pub async fn spawn_app_in(dir: TempDir, opts: Options) -> TestApp {
    let clock: SharedClock = match &opts.clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let settings = settings(dir.path(), &opts);
    let mut remotes = Remotes::real(&settings);
    if let Some(providers) = opts.providers.clone() {
        remotes.dns = providers;
    }
    if let Some(reload) = opts.reload.clone() {
        remotes.reload = Some(reload);
    }
    // Retries wait milliseconds here, so a 429 or a 500 costs no time.
    remotes.sequencer_retry = RetryPolicy {
        attempts: 4,
        base: std::time::Duration::from_millis(5),
        max: std::time::Duration::from_secs(2),
    };
    let app = Application::build_with(&settings, clock, remotes)
        .await
        .unwrap();
    let scheduler = app.scheduler();
    let datasource = app.datasource();
    let hasher = app.hasher();
    let routes = app.routes().to_vec();
    let tls_reload = app.tls_reload();
    let scheme = match settings.public_tls {
        PublicTls::None => "http",
        PublicTls::Acme => "https",
    };
    let base = format!("{scheme}://{}", app.public_addr());
    let control = format!("http://{}", app.control_addr());
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        control,
        client: reqwest::Client::new(),
        dir,
        scheduler,
        datasource,
        hasher,
        routes,
        tls_reload,
        stop: Some(tx),
        handle: Some(handle),
    }
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
    ))
}

impl TestApp {
    /// Writes the Maildir++ `maildirsize` Dovecot would keep for `email`
    /// in this server's mail root.
    pub fn write_maildirsize(&self, email: &str, text: &str) {
        let (local, domain) = email.split_once('@').unwrap();
        let maildir = self
            .dir
            .path()
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir");
        std::fs::create_dir_all(&maildir).unwrap();
        std::fs::write(maildir.join("maildirsize"), text).unwrap();
    }

    /// Sets a domain's status in SQLite, as the verification job would
    /// (tests of sending need a verified domain without waiting for DNS).
    pub fn set_domain_status(&self, domain: &str, status: &str) {
        let conn = rusqlite::Connection::open(Store::path_in(self.dir.path())).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let n = conn
            .execute(
                "UPDATE domains SET status = ?2 WHERE domain_name = ?1",
                [domain, status],
            )
            .unwrap();
        assert_eq!(n, 1, "no domain {domain}");
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, Some(token)).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), token).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {email}: {body}");
        body
    }

    pub async fn admin_token(&self) -> String {
        access(&self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)
    }

    /// Creates a member through the admin API; returns (id, access token).
    pub async fn member(&self, admin: &str, email: &str) -> (String, String) {
        let (status, user) = self
            .post(
                "/api/v1/users",
                json!({ "email": email, "password": MEMBER_PASSWORD }),
                Some(admin),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let token = access(&self.login(email, MEMBER_PASSWORD).await);
        (user["id"].as_str().unwrap().to_owned(), token)
    }

    /// Audit rows as the admin sees them, newest first.
    pub async fn audit_rows(&self, admin: &str) -> Vec<Value> {
        let (status, page) = self.get("/api/v1/audit-logs?limit=200", admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }
}

pub fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
