//! # pcq-server
//!
//! The pcq service: the Partner Center customer-qualification API over HTTP, its storage and
//! authentication, and the sandbox controls. The `pcq` binary wraps [`Application`]; tests
//! build one on port 0.

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod faults;
pub mod http;
pub mod journal;
pub mod serve;
pub mod service;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod webhook_signing;
pub mod webhook_targets;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::auth::{Authenticator, DevIssuer, JwksIssuer};
use crate::clock::Clock;
use crate::config::{AuthConfig, Config};
pub use crate::error::Error;
use crate::service::keys;
use crate::service::seed::{ApplySeed, Seed, SeedSummary};
use crate::service::{DevPartner, Links, Pipeline};
use crate::settings::PolicyCell;
use crate::store::Store;
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::webhook_signing::WebhookSigner;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "pcq.db";

/// What every request handler can reach.
pub struct AppInner {
    /// The configuration the node runs with.
    pub config: Config,
    /// The store, the clock and the policy, and the one way to change state.
    pub pipeline: Pipeline,
    /// Token verification.
    pub auth: Authenticator,
    /// The development issuer, when enabled.
    pub dev_issuer: Option<Arc<DevIssuer>>,
    /// The development partner tenant of this store.
    pub dev_partner: Uuid,
    /// This node's name in leases.
    pub node_id: String,
    /// The client webhook deliveries use.
    pub http: reqwest::Client,
    /// Whether webhook events may go to private addresses.
    pub allow_private_targets: bool,
    /// Per-partner request throttling.
    pub throttle: http::throttle::Throttle,
    /// Continuation tokens and page cutting, with the store's key.
    pub pager: http::paging::Pager,
    /// The requests this node served.
    pub journal: journal::Journal,
    /// This node's Prometheus metrics.
    pub metrics: telemetry::metrics::Metrics,
    /// The seed the node was started with, loaded again by a sandbox reset.
    pub seed: std::sync::OnceLock<Seed>,
    /// The state document the node was started with (`--seed` with a `pcq admin dump`), loaded
    /// again by a sandbox reset of the whole store.
    pub seed_state: std::sync::OnceLock<std::path::PathBuf>,
    signer: OnceCell<Arc<WebhookSigner>>,
}

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// The webhook signer, loaded (or created) on first use: from the store when nodes share
    /// it, else from the data directory. Creating a key takes a second or so of CPU: it runs on
    /// the worker's background threads, at the lowest priority, like signing.
    pub async fn webhook_signer(&self) -> anyhow::Result<Arc<WebhookSigner>> {
        let config = &self.config;
        self.signer
            .get_or_try_init(|| async {
                if self.pipeline.store.is_shared() {
                    let store = &self.pipeline.store;
                    let name = keys::WEBHOOK_SIGNING_KEY;
                    let pem = match store.read(keys::StoredKey(name)).await? {
                        Some(pem) => pem,
                        None => {
                            let pem = worker::at_low_priority(webhook_signing::generate_key_pem)
                                .await
                                .context("generating the webhook signing key")??;
                            store.write(keys::KeepKey { name, pem }).await?.output
                        }
                    };
                    let signer = worker::at_low_priority(move || WebhookSigner::from_key_pem(&pem))
                        .await
                        .context("loading the webhook signing key")??;
                    return Ok(Arc::new(signer));
                }
                let dir = (!config.in_memory || config.data_dir_explicit)
                    .then(|| config.data_dir.clone());
                let signer = worker::at_low_priority(move || match dir {
                    Some(dir) => WebhookSigner::load_or_create(&dir),
                    None => WebhookSigner::ephemeral(),
                })
                .await
                .context("creating the webhook signing key")??;
                Ok(Arc::new(signer))
            })
            .await
            .cloned()
    }
}

/// A pcq node, bound to its address and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// Selects rustls with ring for every HTTPS client of the process (webhook deliveries, the CLI).
/// Safe to call more than once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The key stored under `name`, storing one made by `generate` (off the async threads) if none
/// is stored yet. Nodes that start together agree on the first one stored.
pub async fn shared_key(
    store: &Store,
    name: &'static str,
    generate: impl FnOnce() -> anyhow::Result<String> + Send + 'static,
) -> anyhow::Result<String> {
    if let Some(pem) = store.read(keys::StoredKey(name)).await? {
        return Ok(pem);
    }
    let pem = tokio::task::spawn_blocking(generate)
        .await
        .context("generating a key")??;
    Ok(store.write(keys::KeepKey { name, pem }).await?.output)
}

/// How to reach PostgreSQL, from the configuration.
pub fn pg_options(config: &Config) -> PgOptions {
    let store = &config.store;
    PgOptions {
        url: config.database_url.clone(),
        max_connections: store.pg_max_connections,
        min_connections: store.pg_min_connections,
        acquire_timeout: std::time::Duration::from_millis(store.pg_acquire_timeout_ms),
        statement_timeout: std::time::Duration::from_millis(store.pg_statement_timeout_ms),
        conflict_retries: store.pg_conflict_retries,
    }
}

/// Opens the store the configuration names (migrating it to this version's schema), creating
/// the data directory when needed.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if !config.database_url.is_empty() {
        let store = PgStore::open(&pg_options(config)).await.with_context(|| {
            format!(
                "opening the PostgreSQL database {}",
                store::postgres::redact_url(&config.database_url)
            )
        })?;
        return Ok(Store::postgres(store));
    }
    let path = if config.in_memory {
        None
    } else {
        auth::dev_issuer::ensure_private_dir(&config.data_dir)?;
        Some(config.data_dir.join(DATABASE_FILE))
    };
    let store = SqliteStore::open(SqliteOptions {
        path: path.clone(),
        readers: config.store.sqlite_readers,
        max_batch: config.store.sqlite_max_batch,
        cache_mib: config.store.sqlite_cache_mib,
    })
    .await
    .with_context(|| match &path {
        Some(p) => format!("opening the database {}", p.display()),
        None => "opening the in-memory database".to_owned(),
    })?;
    Ok(Store::sqlite(store))
}

/// Applies the migrations the configured database needs, without serving; says what it did.
pub async fn migrate(config: &Config) -> anyhow::Result<String> {
    if config.database_url.is_empty() {
        let store = open_store(config).await?;
        store.close().await;
        return Ok(if config.in_memory {
            "the in-memory database needs no migrations".to_owned()
        } else {
            format!(
                "the SQLite database {} is up to date",
                config.data_dir.join(DATABASE_FILE).display()
            )
        });
    }
    let url = store::postgres::redact_url(&config.database_url);
    let store = PgStore::connect(&pg_options(config))
        .await
        .with_context(|| format!("connecting to the PostgreSQL database {url}"))?;
    let applied = store
        .migrate()
        .await
        .with_context(|| format!("migrating the PostgreSQL database {url}"))?;
    store.close().await;
    Ok(match applied {
        0 => format!("the PostgreSQL database {url} is up to date"),
        1 => format!("applied 1 migration to the PostgreSQL database {url}"),
        n => format!("applied {n} migrations to the PostgreSQL database {url}"),
    })
}

/// The development issuer for command-line tools that mint tokens (`pcq token`, `pcq review`):
/// the key in the PostgreSQL database when one is configured, else the key in the data
/// directory (created on first use).
pub async fn tool_dev_issuer(config: &Config) -> anyhow::Result<Arc<DevIssuer>> {
    if config.database_url.is_empty() {
        return load_dev_issuer(config, None).await;
    }
    let url = store::postgres::redact_url(&config.database_url);
    let mut options = pg_options(config);
    options.max_connections = 1;
    options.min_connections = 0;
    let store = Store::postgres(
        PgStore::connect(&options)
            .await
            .with_context(|| format!("connecting to the PostgreSQL database {url}"))?,
    );
    let issuer = load_dev_issuer(config, Some(&store))
        .await
        .with_context(|| {
            format!(
                "reading the development signing key from {url} (has `pcq migrate` or `pcq serve` \
             run against it?)"
            )
        });
    store.close().await;
    issuer
}

/// The external identity providers of the configuration, with their keys loaded (before pcq
/// serves; [`Application::run_until_stopped`] keeps them fresh).
pub async fn external_issuers(auth: &AuthConfig) -> anyhow::Result<Vec<Arc<JwksIssuer>>> {
    let mut issuers = Vec::with_capacity(auth.issuers.len());
    for (n, config) in auth.issuers.iter().enumerate() {
        let issuer = JwksIssuer::new(
            config,
            &auth.audience,
            std::time::Duration::from_secs(auth.jwks_min_refresh_seconds),
            std::time::Duration::from_secs(auth.jwks_max_age_seconds),
        )
        .with_context(|| format!("auth.issuers[{n}] ({})", config.issuer))?;
        issuer
            .load()
            .await
            .with_context(|| format!("auth.issuers[{n}] ({})", config.issuer))?;
        issuers.push(Arc::new(issuer));
    }
    Ok(issuers)
}

/// Loads the development issuer's key (whether a node trusts it is decided by
/// [`config::AuthConfig::dev_issuer_on`]): the key in `shared` (a store that several nodes
/// share), else the key in the data directory, or a key for this run only when the database is
/// in memory and no data directory was given.
pub async fn load_dev_issuer(
    config: &Config,
    shared: Option<&Store>,
) -> anyhow::Result<Arc<DevIssuer>> {
    if let Some(store) = shared {
        let pem = shared_key(store, keys::DEV_ISSUER_KEY, DevIssuer::generate_pem).await?;
        return Ok(Arc::new(DevIssuer::from_pem(&pem, "the database")?));
    }
    let issuer = if config.in_memory && !config.data_dir_explicit {
        DevIssuer::ephemeral()?
    } else {
        DevIssuer::load_or_create(&config.data_dir)?
    };
    Ok(Arc::new(issuer))
}

impl Application {
    /// Opens the store, loads the issuers and the stored sandbox state (clock offset, vetting
    /// policy) and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        install_tls_provider();
        let store = open_store(&config).await?;
        let metrics = telemetry::metrics::Metrics::new(config.metrics.enabled);
        store.observe(metrics.store.clone());
        let dev_issuer = if config.auth.dev_issuer_on(config.listen) {
            Some(load_dev_issuer(&config, store.is_shared().then_some(&store)).await?)
        } else {
            if config.auth.dev_issuer.explicit().is_none() {
                tracing::info!(
                    listen = %config.listen,
                    "the development issuer is off because pcq listens beyond this machine; \
                     set auth.dev_issuer = true to trust `pcq token` tokens anyway"
                );
            }
            None
        };
        let auth = Authenticator::new(
            config.auth.audience.clone(),
            dev_issuer.clone(),
            external_issuers(&config.auth).await?,
        );
        let dev_partner = store.write(DevPartner).await?.output;
        let token_key = shared_key(
            &store,
            keys::CONTINUATION_TOKEN_KEY,
            http::paging::Pager::generate_key,
        )
        .await?;
        let pager = http::paging::Pager::new(&token_key, &config.paging)
            .context("loading the continuation token key")?;
        let clock = Clock::system();
        let (offset, epoch) = store.read(service::clock::StoredClock).await?;
        clock.observe(offset, epoch);
        let policy = PolicyCell::new(config.vetting.clone());
        policy.observe(store.read(service::vetting::StoredPolicy).await?);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let public_url: Arc<str> = if config.public_url.is_empty() {
            let addr = listener.local_addr()?;
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_owned(),
                ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                std::net::IpAddr::V4(ip) => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port()).into()
        } else {
            config.public_url.clone().into()
        };
        let allow_private_targets = webhook_targets::allow_private(
            config.webhooks.allow_private_targets.explicit(),
            listener.local_addr()?,
        );
        let mut http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                config.webhooks.timeout_seconds,
            ))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pcq-webhooks/", env!("CARGO_PKG_VERSION")))
            // A proxy from the environment would resolve receivers' names itself, past the
            // target filter: only the configured one is used.
            .no_proxy();
        if !config.webhooks.proxy.is_empty() {
            http =
                http.proxy(reqwest::Proxy::all(&config.webhooks.proxy).context("webhooks.proxy")?);
        }
        if !allow_private_targets {
            http = http.dns_resolver(Arc::new(webhook_targets::PublicOnlyResolver));
        }
        let http = http.build().context("building the webhook HTTP client")?;
        let throttle = http::throttle::Throttle::new(&config.throttle, clock.clone());
        let journal = journal::Journal::new(&config.journal, clock.clone());
        let state = AppState(Arc::new(AppInner {
            config,
            pipeline: Pipeline::new(store, clock, policy, Links { public_url }),
            auth,
            dev_issuer,
            dev_partner,
            node_id: format!("pcq-{}", Uuid::new_v4().simple()),
            http,
            allow_private_targets,
            throttle,
            pager,
            journal,
            metrics,
            seed: std::sync::OnceLock::new(),
            seed_state: std::sync::OnceLock::new(),
            signer: OnceCell::new(),
        }));
        state.pipeline.faults.reload(&state.pipeline).await?;
        Ok(Application { listener, state })
    }

    /// The address the node listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (for tests and the binary).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Loads a seed into the store; a sandbox reset loads the first one given again.
    pub async fn seed(&self, seed: Seed) -> anyhow::Result<SeedSummary> {
        let pipeline = &self.state.pipeline;
        let _ = self.state.seed.set(seed.clone());
        let summary = pipeline
            .write(ApplySeed {
                seed,
                dev_partner: self.state.dev_partner,
                now: pipeline.now(),
            })
            .await?;
        Ok(summary)
    }

    /// Loads a state document (`docs/state.md`, as `pcq admin dump` writes it) given at start,
    /// when the store holds no customer yet, so that a restart keeps what changed since; `None`
    /// when the store was left as it was. The document is checked first, and refused with the
    /// JSON path of any problem. A sandbox reset of the whole store loads it again.
    pub async fn load_state_file(
        &self,
        path: &std::path::Path,
    ) -> anyhow::Result<Option<service::state::StateLoaded>> {
        let checked = http::state::check_state_file(path).await?;
        let _ = self.state.seed_state.set(path.to_path_buf());
        if !self
            .state
            .pipeline
            .read(service::state::HoldsNoCustomer)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(
            http::state::load_checked_file(&self.state, path, checked).await?,
        ))
    }

    /// Serves (and runs the worker, unless it is switched off, and refreshes the identity
    /// providers' keys) until `shutdown` resolves, then finishes in-flight requests, stops the
    /// background tasks and closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = http::router(self.state.clone());
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = self.state.config.worker.enabled.then(|| {
            tokio::spawn(worker::Worker::new(self.state.clone()).run(worker_stopped.clone()))
        });
        // A node without a worker still takes up what other nodes change (the worker does this
        // on every step).
        let settings = (self.state.pipeline.store.is_shared() && !self.state.config.worker.enabled)
            .then(|| tokio::spawn(settings::follow(self.state.clone(), worker_stopped)));
        let tidy = tokio::spawn(http::throttle::keep_tidy(
            self.state.clone(),
            stop_worker.subscribe(),
        ));
        let upkeep = self.state.metrics.enabled().then(|| {
            tokio::spawn(http::metrics::keep_up(
                self.state.clone(),
                stop_worker.subscribe(),
            ))
        });
        // Identity providers' keys are refreshed in the background, never inside a request.
        let key_refresh: Vec<_> = self
            .state
            .auth
            .external_issuers()
            .iter()
            .map(|issuer| tokio::spawn(issuer.clone().keep_fresh(stop_worker.subscribe())))
            .collect();
        let served = serve::serve(self.listener, router, &self.state.config.limits, shutdown).await;
        let _ = stop_worker.send(true);
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(settings) = settings {
            let _ = settings.await;
        }
        let _ = tidy.await;
        if let Some(upkeep) = upkeep {
            let _ = upkeep.await;
        }
        for task in key_refresh {
            let _ = task.await;
        }
        self.state.pipeline.store.close().await;
        served.context("serving HTTP")
    }
}
