//! Test harness: a real pcq node on 127.0.0.1:0 over a fresh data directory, driven over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pcq_server::auth::TokenSpec;
use pcq_server::config::Config;
use pcq_server::{AppState, Application};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a fresh data directory.
    Sqlite,
    /// A fresh schema in the PostgreSQL database named by `PCQ_TEST_DATABASE_URL`.
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The backend of the running test (SQLite outside [`on_backend`]).
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// The PostgreSQL server tests run against, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var("PCQ_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Runs a test on `backend`. On PostgreSQL without `PCQ_TEST_DATABASE_URL`, says that the test
/// was skipped and passes.
pub async fn on_backend(backend: Backend, name: &str, test: impl std::future::Future<Output = ()>) {
    if backend == Backend::Postgres && test_database_url().is_none() {
        // Written past the test harness's output capture, so that it shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped {name} on PostgreSQL: PCQ_TEST_DATABASE_URL is not set"
        );
        return;
    }
    BACKEND.scope(backend, test).await
}

/// Runs `future` with `backend` as the test's backend (for work a test hands to another thread,
/// such as proptest cases driven from a blocking thread).
pub async fn with_backend<F: std::future::Future>(backend: Backend, future: F) -> F::Output {
    BACKEND.scope(backend, future).await
}

/// Turns `async fn`s into tests, one on SQLite and one on PostgreSQL each:
/// `sqlite::name` and `postgres::name`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::common::on_backend(
                        crate::common::Backend::Sqlite,
                        stringify!($name),
                        super::$name(),
                    )
                    .await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::common::on_backend(
                        crate::common::Backend::Postgres,
                        stringify!($name),
                        super::$name(),
                    )
                    .await
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// A schema of its own in the test PostgreSQL database, migrated and holding the fixture
/// webhook signing key; dropped when the last node using it is gone.
pub struct PgSchema {
    pub name: String,
    /// The URL with the schema as search path.
    pub url: String,
    server: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        use sqlx::Connection;
        let server = test_database_url().expect("PCQ_TEST_DATABASE_URL is set");
        let name = format!("pcq_t_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("PCQ_TEST_DATABASE_URL={server} is not reachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        let separator = if server.contains('?') { '&' } else { '?' };
        // The schema's name is also the connections' application name, so that the guard can
        // end the connections of nodes still running when it drops the schema.
        let url = format!("{server}{separator}options[search_path]={name}&application_name={name}");
        let mut config = Config::defaults();
        config.database_url = url.clone();
        let store = pcq_server::open_store(&config)
            .await
            .expect("schema migrates");
        let _ = store
            .write(pcq_server::service::keys::KeepKey {
                name: pcq_server::service::keys::WEBHOOK_SIGNING_KEY,
                pem: fixture_signing_key().to_owned(),
            })
            .await
            .unwrap();
        store.close().await;
        PgSchema { name, url, server }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                    // A node dropped with the test may still be running (its runtime is the
                    // one this drop blocks), holding the schema's locks in a transaction that
                    // cannot finish: end its connections first.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&name)
                    .execute(&mut admin)
                    .await;
                    let _ = sqlx::query("SET lock_timeout = '10s'")
                        .execute(&mut admin)
                        .await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A running node.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    schema: Option<Arc<PgSchema>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A partner with ready tokens.
#[derive(Clone)]
pub struct Partner {
    pub tenant: Uuid,
    pub user: String,
    pub app: String,
}

/// The test configuration: port 0, the given data directory, no background worker (tests
/// drain it through the admin API, so nothing happens behind their back) and no throttling (the
/// throttling tests switch it on).
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config.data_dir_explicit = true;
    config.worker.enabled = false;
    config.throttle.enabled = false;
    config.store.pg_max_connections = 4;
    config
}

/// One webhook signing key per test process (generating RSA keys takes a while).
pub fn fixture_signing_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| pcq_server::webhook_signing::generate_key_pem().unwrap())
}

impl TestApp {
    /// A node on a fresh SQLite data directory.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A node on a fresh data directory (and, on PostgreSQL, a fresh schema), with
    /// configuration changes.
    pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        let schema = match backend() {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let schema = PgSchema::create().await;
                config.database_url = schema.url.clone();
                Some(Arc::new(schema))
            }
        };
        change(&mut config);
        let mut app = Self::start(config).await;
        app._dir = Some(dir);
        app.schema = schema;
        app
    }

    /// Another node on this node's database (PostgreSQL: the same schema; SQLite: a copy of
    /// the configuration, which only works for one node at a time).
    #[allow(dead_code)] // no test starts a second node today
    pub async fn sibling(&self, change: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.state.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        change(&mut config);
        let mut app = Self::start(config).await;
        app.schema = self.schema.clone();
        app
    }

    /// Starts a node with exactly this configuration.
    pub async fn start(config: Config) -> TestApp {
        let data_dir = config.data_dir.clone();
        let key = data_dir.join(pcq_server::webhook_signing::KEY_FILE);
        if !config.in_memory && config.database_url.is_empty() && !key.exists() {
            std::fs::create_dir_all(&data_dir).unwrap();
            std::fs::write(&key, fixture_signing_key()).unwrap();
        }
        let app = Application::build(config).await.expect("pcq builds");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: {
                pcq_server::install_tls_provider();
                reqwest::Client::builder().no_proxy().build().unwrap()
            },
            state,
            data_dir,
            _dir: None,
            schema: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the node gracefully (in-flight requests finish, the store closes).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve result");
        }
    }

    /// Stops this node and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let dir = self._dir.take();
        let schema = self.schema.take();
        let mut config = self.state.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut next = Self::start(config).await;
        next._dir = dir;
        next.schema = schema;
        next
    }

    pub fn token(&self, spec: TokenSpec) -> String {
        self.state
            .dev_issuer
            .as_ref()
            .expect("dev issuer on")
            .mint(&spec)
            .unwrap()
    }

    pub fn spec(tenant: Uuid) -> TokenSpec {
        TokenSpec {
            tenant,
            user: Some("agent@partner.onmicrosoft.com".into()),
            roles: vec![],
            wids: vec![pcq_server::auth::DIRECTORY_READERS.into()],
            audience: AUDIENCE.into(),
            ttl_seconds: 3600,
        }
    }

    pub fn user_token(&self, tenant: Uuid) -> String {
        self.token(Self::spec(tenant))
    }

    pub fn app_token(&self, tenant: Uuid) -> String {
        self.token(TokenSpec {
            user: None,
            ..Self::spec(tenant)
        })
    }

    pub fn admin_token(&self) -> String {
        self.token(TokenSpec {
            roles: vec!["Pcq.Admin".into()],
            ..Self::spec(Uuid::new_v4())
        })
    }

    /// A new partner tenant with tokens.
    pub fn partner(&self) -> Partner {
        let tenant = Uuid::new_v4();
        Partner {
            tenant,
            user: self.user_token(tenant),
            app: self.app_token(tenant),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with a bearer token.
    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(token)
    }

    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.req(Method::GET, path, token)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.req(Method::POST, path, token).json(body)
    }

    /// Creates a customer for `partner` and returns its id.
    pub async fn create_customer(&self, partner: &Partner, domain: &str) -> Uuid {
        let resp = self
            .post(
                "/v1/customers",
                &partner.user,
                &json!({"companyProfile": {"domain": domain, "companyName": "Test Co"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "creating {domain}");
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Issues a validation code to `partner` and returns its id.
    pub async fn issue_code(&self, partner: &Partner, max_creates: i64) -> String {
        let resp = self
            .post(
                &format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant),
                &self.admin_token(),
                &json!({"organizationName": "Contoso Government", "maxCreates": max_creates}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        body["validationId"].as_str().unwrap().to_owned()
    }

    /// Asks for a test `test-created` event (Partner Center's validation event), with
    /// `correlation` as its `MS-CorrelationId` when given.
    pub async fn send_test_event(&self, partner: &Partner, correlation: Option<&str>) -> Response {
        let mut req = self.req(
            Method::POST,
            "/webhooks/v1/registration/validationEvents",
            &partner.app,
        );
        if let Some(correlation) = correlation {
            req = req.header("MS-CorrelationId", correlation);
        }
        req.send().await.unwrap()
    }

    /// The customer's qualifications as the API returns them.
    pub async fn qualifications(&self, partner: &Partner, customer: Uuid) -> Value {
        let resp = self
            .get(
                &format!("/v1/customers/{customer}/qualifications"),
                &partner.user,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// How many customers the partner's first page of `GET /v1/customers` lists.
    pub async fn customer_count(&self, partner: &Partner) -> u64 {
        self.customer_count_with(&partner.user).await
    }

    /// How many customers the first page of `GET /v1/customers` shows to `token`.
    pub async fn customer_count_with(&self, token: &str) -> u64 {
        let resp = self.get("/v1/customers", token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let list: Value = resp.json().await.unwrap();
        list["totalCount"].as_u64().unwrap()
    }

    /// The partner's validation codes as the API returns them.
    pub async fn codes(&self, partner: &Partner) -> Value {
        let resp = self
            .get("/v1/customers/all/validations", &partner.app)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Runs the worker until nothing is due (through the admin API); returns what it did.
    pub async fn drain(&self) -> Value {
        let resp = self
            .req(
                Method::POST,
                "/_pcq/admin/worker/drain",
                &self.admin_token(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Moves pcq's clock forward (through the admin API).
    pub async fn advance(&self, by: &str) {
        let resp = self
            .post(
                "/_pcq/admin/clock",
                &self.admin_token(),
                &json!({"advance": by}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "advancing the clock by {by}");
    }

    /// Sets the vetting policy at run time (through the admin API).
    pub async fn set_policy(&self, changes: Value) {
        let resp = self
            .req(
                Method::PUT,
                "/_pcq/admin/vetting-policy",
                &self.admin_token(),
            )
            .json(&changes)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "setting the policy {changes}: {body}"
        );
    }

    /// A token with the reviewer role.
    pub fn reviewer_token(&self) -> String {
        self.token(TokenSpec {
            roles: vec!["Pcq.Reviewer".into()],
            ..Self::spec(Uuid::new_v4())
        })
    }

    /// Registers `partner` for webhook events at `url`.
    pub async fn register_webhook(&self, partner: &Partner, url: &str, events: &[&str]) {
        let resp = self
            .post(
                "/webhooks/v1/registration",
                &partner.app,
                &json!({"WebhookUrl": url, "WebhookEvents": events}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// The partner's webhook delivery log, newest first.
    pub async fn deliveries(&self, partner: &Partner) -> Vec<Value> {
        let resp = self
            .get("/webhooks/v1/registration/deliveries", &partner.app)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// The partner's audit records (all of them, first page of 1000).
    pub async fn audit(&self, partner: &Partner, query: &str) -> Vec<Value> {
        let resp = self
            .get(&format!("/v1/auditrecords?size=1000&{query}"), &partner.app)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// Loads seed JSON; `"dev"` stands for this node's development partner.
    pub async fn seed(&self, json: &str) {
        let seed = pcq_server::service::seed::Seed::from_json(json).expect("valid seed");
        self.state
            .pipeline
            .write(pcq_server::service::seed::ApplySeed {
                seed,
                dev_partner: self.state.dev_partner,
                now: self.state.pipeline.now(),
            })
            .await
            .expect("seed loads");
    }

    /// The development partner with tokens.
    pub fn dev_partner(&self) -> Partner {
        let tenant = self.state.dev_partner;
        Partner {
            tenant,
            user: self.user_token(tenant),
            app: self.app_token(tenant),
        }
    }

    /// POSTs a qualification request with App+User credentials.
    pub async fn post_qualification(
        &self,
        partner: &Partner,
        customer: Uuid,
        body: &Value,
    ) -> Response {
        self.post(
            &format!("/v1/customers/{customer}/qualifications"),
            &partner.user,
            body,
        )
        .send()
        .await
        .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads a response as (status, JSON body).
pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body)
}

/// Asserts a response is a Partner Center error envelope with this status and code.
pub async fn assert_fault(resp: Response, status: u16, code: u64) -> Value {
    let (got, body) = status_json(resp).await;
    assert_eq!(got.as_u16(), status, "status; body: {body}");
    assert_eq!(body["code"], code, "code; body: {body}");
    for key in [
        "description",
        "message",
        "errorName",
        "isRetryable",
        "parameters",
        "data",
        "source",
    ] {
        assert!(
            body.get(key).is_some(),
            "envelope key {key} missing: {body}"
        );
    }
    assert!(!body["description"].as_str().unwrap().is_empty());
    body
}

/// Replaces a `vettingCreateDate` with a marker after checking its form.
pub fn redact_dates(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(date)) = map.get("vettingCreateDate") {
                    assert!(
                        date.ends_with('Z')
                            && pcq_core::time::Timestamp::parse_rfc3339(date).is_some(),
                        "vettingCreateDate {date} is RFC 3339 UTC with Z"
                    );
                    map.insert("vettingCreateDate".into(), Value::String("<date>".into()));
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// A request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    count: tokio::sync::watch::Sender<usize>,
    /// While `true`, answers wait (the request is recorded first).
    held: tokio::sync::watch::Sender<bool>,
}

/// A webhook receiver on loopback that records what it gets and answers with a chosen status;
/// it can be taken down (connections are then refused) and brought back on the same port.
pub struct Receiver {
    pub url: String,
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            count: tokio::sync::watch::Sender::new(0),
            held: tokio::sync::watch::Sender::new(false),
        });
        let mut receiver = Receiver {
            url: format!("http://{addr}/hooks/pcq"),
            addr,
            state,
            stop: None,
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let app = axum::Router::new().route(
            "/hooks/pcq",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        let count = {
                            let mut received = state.received.lock().unwrap();
                            received.push(Received {
                                headers,
                                body: body.to_vec(),
                            });
                            received.len()
                        };
                        state.count.send_replace(count);
                        let _ = state.held.subscribe().wait_for(|held| !*held).await;
                        let status = state.status.load(Ordering::SeqCst);
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            "receiver says hi",
                        )
                    }
                },
            ),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    /// Answer every request with `status` from now on.
    pub fn respond_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Hold answers (a slow receiver) until [`Receiver::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Answer held and later requests.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// Waits until `n` requests have arrived (at most `limit`, then fails): for work done in the
    /// background, without sleeping.
    pub async fn wait_for(&self, n: usize, limit: std::time::Duration) {
        let mut count = self.state.count.subscribe();
        tokio::time::timeout(limit, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("no {n} deliveries within {limit:?}"))
            .expect("receiver running");
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Takes the receiver down: connections are refused until [`Receiver::up`].
    pub async fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Brings the receiver back on the same port.
    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}
