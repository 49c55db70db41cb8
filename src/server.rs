//! Assembling and running the appliance: the data dir, the vault, the
//! store, authentication, the job scheduler and the two listeners.
//!
//! [`Application::build`] binds before it runs, so tests start it on port 0
//! and read the bound addresses.

use std::fs::{self, File};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::acme::{self, Acme};
use crate::api;
use crate::auth::Auth;
use crate::auth::password::Hasher;
use crate::auth::users::Bootstrap;
use crate::clock::SharedClock;
use crate::config::{PublicTls, Settings};
use crate::domains::cloudflare::CloudflareLimiter;
use crate::domains::service::{CloudflareFactory, Orchestrator, ProviderFactory};
use crate::domains::work;
use crate::exports::push::Integrations;
use crate::exports::push::client::Sequencers;
use crate::exports::service::Exports;
use crate::http::routes::RouteInfo;
use crate::http::{self, AppState, MAX_BODY, ServerInfo, Shared, ratelimit};
use crate::inboxes::datasource::Datasource;
use crate::inboxes::service::Inboxes;
use crate::inboxes::sync::{MailboxSync, Refresh, Sink};
use crate::jobs::{Scheduler, Waker, maintenance};
use crate::kumo::credentials::{self, Client, Credentials};
use crate::kumo::epoch::EpochBumper;
use crate::kumo::{self, Control, smtp_auth::SmtpAuth};
use crate::remote::RetryPolicy;
use crate::settings::LiveSettings;
use crate::store::Store;
use crate::tls;
use crate::tls::Reload;
use crate::tls::listener::TlsListener;
use crate::tls::reload::Served;
use crate::tls::resolver::Resolver;
use crate::vault::Vault;
use crate::warmup;
use crate::web;

mod console;
mod public_tls;

pub use console::{open_accounts, open_domains, open_inboxes};
use public_tls::public_resolver;

const LOCK_FILE: &str = "serve.lock";
const WORKERS: usize = 2;

/// Creates the data dir (mode 0700) if needed.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))
}

fn hasher() -> Hasher {
    Hasher::new(std::thread::available_parallelism().map_or(2, usize::from))
}

fn inboxes(core: &Core, clock: SharedClock) -> Inboxes {
    Inboxes::new(
        core.store.clone(),
        core.vault.clone(),
        clock,
        core.mailboxes.clone(),
        core.hasher.clone(),
        core.live.clone(),
    )
}

/// Who opens the data dir: the server, which must hold the mailbox
/// datasource, or a console command, which holds it only when no server
/// runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Serve,
    Console,
}

/// Where mailbox changes go. sled lets one process hold the datasource, so
/// while `serve` runs (it holds `serve.lock`) a console command's changes
/// reach it through the server's control listener, at `control_listen`
/// from the flags or the config file.
fn mailbox_sync(
    settings: &Settings,
    store: &Store,
    holder: Holder,
) -> anyhow::Result<Arc<MailboxSync>> {
    let served = holder == Holder::Console
        && File::open(settings.data_dir.join(LOCK_FILE)).is_ok_and(|f| f.try_lock().is_err());
    let sink = if served {
        Sink::Server {
            control_url: settings.control_url(),
            secret: credentials::load(&settings.data_dir, Client::Console)?,
            data_dir: settings.data_dir.clone(),
        }
    } else {
        Sink::Local(Datasource::open(&settings.data_dir)?)
    };
    let epoch = EpochBumper::new(settings.kumo_http_url.as_deref());
    Ok(Arc::new(MailboxSync::new(store.clone(), sink, epoch)))
}

/// Everything `init` and `serve` share: the data dir, master key, store,
/// signing key, the server settings in force and the first admin.
pub struct Core {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub hasher: Hasher,
    pub auth: Arc<Auth>,
    /// The configured server settings with those saved at run time.
    pub live: Arc<LiveSettings>,
    /// Where mailbox changes reach the datasource KumoMTA reads.
    pub mailboxes: Arc<MailboxSync>,
    pub key_created: bool,
    pub bootstrap: Bootstrap,
}

pub async fn open_core(
    settings: &Settings,
    clock: SharedClock,
    holder: Holder,
) -> anyhow::Result<Core> {
    prepare_data_dir(&settings.data_dir)?;
    // A new key beside an existing database would make every sealed
    // secret unreadable; refuse instead of creating one.
    if Store::path_in(&settings.data_dir).exists() && !Vault::key_path(&settings.data_dir).exists()
    {
        bail!(
            "{} is missing but the database exists; restore master.key from your backup",
            Vault::key_path(&settings.data_dir).display()
        );
    }
    let (vault, key_created) = Vault::load_or_create(&settings.data_dir)?;
    let store = Store::open(&settings.data_dir)?;
    let vault = Arc::new(vault);
    credentials::create_missing(&settings.data_dir)?;
    let mailboxes = mailbox_sync(settings, &store, holder)?;
    let live = LiveSettings::new(
        store.clone(),
        vault.clone(),
        clock.clone(),
        settings.domains.clone(),
        settings.timezone,
        settings.origins,
    )
    .with_retention(settings.retention);
    live.load().await?;
    let hasher = hasher();
    let auth = Auth::load(
        store.clone(),
        clock,
        vault.clone(),
        hasher.clone(),
        mailboxes.clone(),
        settings.data_dir.clone(),
    )
    .await?;
    let bootstrap = auth
        .accounts
        .bootstrap(
            settings.admin_email.clone(),
            settings.admin_password.clone(),
        )
        .await?;
    Ok(Core {
        store,
        vault,
        hasher,
        auth: Arc::new(auth),
        live: Arc::new(live),
        mailboxes,
        key_created,
        bootstrap,
    })
}

/// The remote services' clients that tests swap: the DNS provider, how
/// calls to the sequencers retry, and what is told of new certificates.
pub struct Remotes {
    pub dns: Arc<dyn ProviderFactory>,
    pub sequencer_retry: RetryPolicy,
    /// `None`: the services that serve `tls_dir` ([`Served`]).
    pub reload: Option<Arc<dyn tls::Reload>>,
}

impl Remotes {
    /// Cloudflare at the configured URL; retries as in production.
    pub fn real(settings: &Settings) -> Self {
        Self {
            dns: Arc::new(CloudflareFactory {
                base_url: settings.domains.cloudflare_api_url.clone(),
                limiter: Arc::new(CloudflareLimiter::default()),
                retry: RetryPolicy::default(),
            }),
            sequencer_retry: RetryPolicy {
                attempts: 4,
                base: std::time::Duration::from_secs(1),
                max: std::time::Duration::from_secs(30),
            },
            reload: None,
        }
    }
}

fn orchestrator(
    core: &Core,
    clock: SharedClock,
    providers: Arc<dyn ProviderFactory>,
    waker: Waker,
    settings: &Settings,
) -> Orchestrator {
    let o = Orchestrator::new(
        core.store.clone(),
        core.vault.clone(),
        clock,
        core.live.clone(),
        providers,
        waker,
        core.mailboxes.clone(),
    );
    // Also from the console: a `domain verify` that activates a domain
    // queues its certificate for the server's workers.
    match settings.certificates.acme() {
        Some(_) => o.with_on_active(Arc::new(acme::jobs::IssueOnActive)),
        None => o,
    }
}

/// The public listener: the JSON API and the browser UI side by side, and
/// the table of their routes.
pub fn public_router(state: AppState) -> (Router, Vec<RouteInfo>) {
    let (router, table) = api::routes(&state).merge(web::routes(&state)).into_parts();
    let app = router
        .fallback(web::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    (http::with_common_layers(app), table)
}

pub struct Application {
    public: TcpListener,
    /// The certificates of the public listener when it serves HTTPS.
    public_tls: Option<Arc<Resolver>>,
    /// What the ACME client tells after installing certificates.
    tls_reload: Arc<dyn Reload>,
    control_listener: TcpListener,
    control: Arc<Control>,
    /// The ACME HTTP-01 responder (`certificates = acme` only).
    acme_http: Option<(TcpListener, Router)>,
    app: Router,
    routes: Vec<RouteInfo>,
    /// Its idle keys are forgotten while serving.
    limiter: Arc<ratelimit::Limiter>,
    store: Store,
    scheduler: Arc<Scheduler>,
    pub bootstrap: Bootstrap,
    datasource: Datasource,
    hasher: Hasher,
    /// Held while serving: one server per data dir.
    _lock: File,
}

impl Application {
    pub async fn build(settings: &Settings, clock: SharedClock) -> anyhow::Result<Self> {
        Self::build_with(settings, clock, Remotes::real(settings)).await
    }

    /// As [`Application::build`], with the remote clients given (tests use
    /// ones whose retries wait milliseconds, not seconds).
    pub async fn build_with(
        settings: &Settings,
        clock: SharedClock,
        remotes: Remotes,
    ) -> anyhow::Result<Self> {
        prepare_data_dir(&settings.data_dir)?;
        let lock = File::create(settings.data_dir.join(LOCK_FILE))?;
        if lock.try_lock().is_err() {
            bail!(
                "another `inboxgrove serve` is already using {}; stop it first",
                settings.data_dir.display()
            );
        }
        // Bind first: if a port is taken, nothing has been created yet, so a
        // generated admin password is never lost unprinted.
        let public = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let control_socket = TcpListener::bind(settings.control_listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.control_listen))?;
        let acme_http = match settings.certificates.acme() {
            Some(a) => Some(TcpListener::bind(a.http_listen).await.with_context(|| {
                format!(
                    "cannot listen on {} for ACME HTTP-01 (acme_http_listen)",
                    a.http_listen
                )
            })?),
            None => None,
        };
        let core = open_core(settings, clock.clone(), Holder::Serve).await?;

        let mut scheduler =
            Scheduler::new(core.store.clone(), clock.clone(), StdRng::from_entropy());
        maintenance::register(
            &mut scheduler,
            core.store.clone(),
            clock.clone(),
            core.live.clone(),
        );
        let domains = Arc::new(orchestrator(
            &core,
            clock.clone(),
            remotes.dns,
            scheduler.waker(),
            settings,
        ));
        work::register(&mut scheduler, domains.clone());
        let public_tls = match settings.public_tls {
            PublicTls::None => None,
            PublicTls::Acme => Some(Arc::new(public_resolver(settings)?)),
        };
        let tls_reload: Arc<dyn Reload> = remotes
            .reload
            .unwrap_or_else(|| Arc::new(Served::new(public_tls.clone())));
        let acme = match settings.certificates.acme() {
            Some(a) => {
                let parts = acme::Parts {
                    store: core.store.clone(),
                    vault: core.vault.clone(),
                    clock: clock.clone(),
                    live: core.live.clone(),
                    domains: domains.clone(),
                    reload: tls_reload.clone(),
                    rng: scheduler.rng(),
                    waker: scheduler.waker(),
                };
                Some(Acme::serve(a, settings, parts, &mut scheduler).await)
            }
            None => None,
        };
        let acme_http = acme_http.zip(acme.as_ref().map(|a| a.http01()));
        let (local, trust) = warmup::engine::connections(settings);
        let warmup = Arc::new(warmup::engine::Engine::new(warmup::engine::Parts {
            store: core.store.clone(),
            vault: core.vault.clone(),
            clock: clock.clone(),
            live: core.live.clone(),
            sync: core.mailboxes.clone(),
            local,
            trust,
            helo: settings.doctor.mail_hostname(),
            rng: scheduler.rng(),
            waker: scheduler.waker(),
        })?);
        warmup::engine::register(&mut scheduler, warmup.clone());
        scheduler.recover().await?;

        let Some(datasource) = core.mailboxes.datasource().cloned() else {
            bail!("the server must hold the mailbox datasource itself");
        };
        let inboxes = Arc::new(inboxes(&core, clock.clone()));
        let repaired = core.mailboxes.refresh(Refresh::All).await?;
        if repaired > 0 {
            tracing::warn!(repaired, "mailbox datasource repaired from the database");
        }
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            let scheme = if public_tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!(
                "{scheme}://{}",
                public.local_addr().unwrap_or(settings.listen)
            )
        });
        let exports = Arc::new(Exports::new(
            core.store.clone(),
            core.vault.clone(),
            clock.clone(),
            public_url.clone(),
            core.live.clone(),
            chrono::Duration::hours(settings.export_link_hours.into()),
        ));
        let integrations = Arc::new(Integrations::new(
            exports.clone(),
            core.store.clone(),
            core.vault.clone(),
            clock.clone(),
            Sequencers::new(settings.sequencers.clone(), remotes.sequencer_retry)?,
        ));
        let control = Arc::new(Control {
            store: core.store.clone(),
            clock: clock.clone(),
            vault: core.vault.clone(),
            auth: SmtpAuth::new(datasource.clone(), core.hasher.clone(), clock.clone()),
            logins: Default::default(),
            datasource: datasource.clone(),
            mailboxes: core.mailboxes.clone(),
            credentials: Credentials::open(&settings.data_dir, clock.clone())?,
            settings: core.live.clone(),
            public_url: public_url.clone(),
            mail: settings.mail.clone(),
        });

        let state = AppState::new(Shared {
            store: core.store,
            clock,
            auth: core.auth,
            domains,
            inboxes,
            exports,
            integrations,
            vault: core.vault.clone(),
            settings: core.live,
            limiter: Arc::new(ratelimit::limiter(
                settings.rate_limit_per_minute,
                settings.rate_limit_burst,
            )),
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            info: Arc::new(ServerInfo::new(settings, &public_url)),
            diagnostics: Arc::new(crate::doctor::Target::new(settings)),
            acme,
            warmup,
        });
        let (limiter, store) = (state.limiter.clone(), state.store.clone());
        let (app, routes) = public_router(state);
        Ok(Self {
            public,
            public_tls,
            tls_reload,
            control_listener: control_socket,
            control,
            acme_http,
            app,
            routes,
            limiter,
            store,
            scheduler: Arc::new(scheduler),
            bootstrap: core.bootstrap,
            datasource,
            hasher: core.hasher.clone(),
            _lock: lock,
        })
    }

    /// The mailbox datasource this server holds (tests damage it to show
    /// that a fault answers "try again later").
    pub fn datasource(&self) -> Datasource {
        self.datasource.clone()
    }

    /// The password hasher every login shares (tests count its
    /// verifications).
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().unwrap_or(([0, 0, 0, 0], 0).into())
    }

    pub fn control_addr(&self) -> SocketAddr {
        self.control_listener
            .local_addr()
            .unwrap_or(([0, 0, 0, 0], 0).into())
    }

    /// Every route of the public listener, for the isolation sweep.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    pub fn scheduler(&self) -> Arc<Scheduler> {
        self.scheduler.clone()
    }

    /// Makes the listeners take the certificates of `tls_dir` again; the
    /// ACME client calls it after installing some.
    pub fn tls_reload(&self) -> Arc<dyn Reload> {
        self.tls_reload.clone()
    }

    /// Serves until `shutdown` completes, then lets requests and the job in
    /// progress finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(self.scheduler.clone().work(stop_rx.clone())))
            .collect();
        let (limiter, store) = (self.limiter.clone(), self.store.clone());
        let mut prune_stop = stop_rx.clone();
        let pruner = tokio::spawn(async move {
            // Forget idle rate-limit keys so the map stays small.
            let mut prune = tokio::time::interval(std::time::Duration::from_secs(60));
            // A CLI command's change to users, sessions or tokens reaches
            // the credential cache within a second (the server's own at
            // once, see `auth::cache`).
            let mut poll = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = prune.tick() => limiter.retain_recent(),
                    _ = poll.tick() => {
                        if let Err(e) = store.poll_auth_generation().await {
                            tracing::warn!(error = %e, "cannot read the sign-in change counter");
                        }
                    }
                    _ = prune_stop.changed() => break,
                }
            }
        });

        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let app = self.app.into_make_service_with_connect_info::<SocketAddr>();
        let public: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
            match self.public_tls {
                None => Box::pin(
                    axum::serve(self.public, app)
                        .with_graceful_shutdown(stopped(stop_rx.clone()))
                        .into_future(),
                ),
                Some(resolver) => {
                    let tls = TlsListener::new(self.public, resolver)
                        .context("cannot serve TLS on the public listener")?
                        // axum gives `ConnectInfo<SocketAddr>` to a listener
                        // of its own only through `TapIo`.
                        .tap_io(|_| {});
                    Box::pin(
                        axum::serve(tls, app)
                            .with_graceful_shutdown(stopped(stop_rx.clone()))
                            .into_future(),
                    )
                }
            };
        let control = axum::serve(
            self.control_listener,
            kumo::router(self.control).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()));
        let acme_http = self.acme_http.map(|(listener, router)| {
            let serve =
                axum::serve(listener, router).with_graceful_shutdown(stopped(stop_rx.clone()));
            tokio::spawn(async move {
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "ACME HTTP-01 responder failed");
                }
            })
        });
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let (p, c) = tokio::join!(public, control);
        p.context("public listener failed")?;
        c.context("control listener failed")?;
        for w in workers {
            let _ = w.await;
        }
        if let Some(responder) = acme_http {
            let _ = responder.await;
        }
        let _ = pruner.await;
        Ok(())
    }
}
