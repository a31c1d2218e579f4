//! A real pcq node on 127.0.0.1:0 over a fresh data directory, driven over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use pcq_core::{Qualification, VettingStatus, wire};
use pcq_server::auth::TokenSpec;
use pcq_server::config::Config;
use pcq_server::{AppState, Application};
use pcq_test_support::{PgSchema, json};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{backend_schema, ok, status_json};

pub const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";

/// A running node.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    schema: Option<PgSchema>,
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
        let schema = backend_schema().await;
        if let Some(schema) = &schema {
            config.database_url = schema.url.clone();
        }
        change(&mut config);
        let mut app = Self::start(config).await;
        app._dir = Some(dir);
        app.schema = schema;
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
            client: pcq_test_support::client(),
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
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops this node and starts a new one on the same data directory (and, on PostgreSQL,
    /// schema), with configuration changes; the new node keeps both alive.
    pub async fn restart_with(mut self, change: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let dir = self._dir.take();
        let schema = self.schema.take();
        let mut config = self.state.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        change(&mut config);
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
        self.partner_of(Uuid::new_v4())
    }

    /// The development partner with tokens.
    pub fn dev_partner(&self) -> Partner {
        self.partner_of(self.state.dev_partner)
    }

    /// Partner `tenant` with tokens.
    fn partner_of(&self, tenant: Uuid) -> Partner {
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
            .send_post(
                "/v1/customers",
                &partner.user,
                &json!({"companyProfile": {"domain": domain, "companyName": "Test Co"}}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "creating {domain}");
        json::<wire::Customer>(resp).await.id
    }

    /// Creates a customer for `partner` at `domain` and requests Education for it; returns the
    /// customer.
    pub async fn request_education(&self, partner: &Partner, domain: &str) -> Uuid {
        self.request_education_with(partner, domain, &json!({"qualification": "Education"}))
            .await
    }

    /// Creates a customer for `partner` at `domain` and posts `body` (an Education request) for
    /// it, which is created and InReview; returns the customer.
    pub async fn request_education_with(
        &self,
        partner: &Partner,
        domain: &str,
        body: &Value,
    ) -> Uuid {
        let customer = self.create_customer(partner, domain).await;
        let resp = self.post_qualification(partner, customer, body).await;
        let (status, answer) = status_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(
            answer["vettingStatus"], "InReview",
            "a request always answers InReview"
        );
        customer
    }

    /// Issues a validation code to `partner` and returns its id.
    pub async fn issue_code(&self, partner: &Partner, max_creates: i64) -> String {
        let resp = self
            .send_post(
                &format!("/_pcq/admin/partners/{}/validation-codes", partner.tenant),
                &self.admin_token(),
                &json!({"organizationName": "Contoso Government", "maxCreates": max_creates}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        json::<wire::ValidationCode>(resp).await.validation_id
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

    /// The customer's qualifications.
    pub async fn qualifications(
        &self,
        partner: &Partner,
        customer: Uuid,
    ) -> Vec<wire::CustomerQualification> {
        serde_json::from_value(self.qualifications_json(partner, customer).await).unwrap()
    }

    /// Asserts the vetting status of the customer's Education qualification (which the
    /// customer must have).
    pub async fn assert_education_status(
        &self,
        partner: &Partner,
        customer: Uuid,
        expected: VettingStatus,
    ) {
        self.assert_vetting_status(partner, customer, Qualification::Education, expected)
            .await;
    }

    /// Asserts the vetting status of the customer's `qualification` (which the customer must
    /// have).
    pub async fn assert_vetting_status(
        &self,
        partner: &Partner,
        customer: Uuid,
        qualification: Qualification,
        expected: VettingStatus,
    ) {
        let held = self
            .qualifications(partner, customer)
            .await
            .into_iter()
            .find(|q| q.qualification == qualification)
            .unwrap_or_else(|| panic!("customer {customer} has no {qualification:?}"));
        assert_eq!(
            held.vetting_status,
            Some(expected),
            "the {qualification:?} qualification of {customer}"
        );
    }

    /// The customer's qualifications exactly as the API returns them.
    pub async fn qualifications_json(&self, partner: &Partner, customer: Uuid) -> Value {
        let path = format!("/v1/customers/{customer}/qualifications");
        ok(self.fetch(&path, &partner.user).await).await
    }

    /// How many customers the partner's first page of `GET /v1/customers` lists.
    pub async fn customer_count(&self, partner: &Partner) -> u64 {
        self.customer_count_with(&partner.user).await
    }

    /// How many customers the first page of `GET /v1/customers` shows to `token`.
    pub async fn customer_count_with(&self, token: &str) -> u64 {
        ok::<wire::Collection<wire::Customer>>(self.fetch("/v1/customers", token).await)
            .await
            .total_count
    }

    /// The partner's validation codes.
    pub async fn codes(&self, partner: &Partner) -> Vec<wire::ValidationCode> {
        serde_json::from_value(self.codes_json(partner).await).unwrap()
    }

    /// The partner's validation codes exactly as the API returns them.
    pub async fn codes_json(&self, partner: &Partner) -> Value {
        let resp = self
            .fetch("/v1/customers/all/validations", &partner.app)
            .await;
        ok(resp).await
    }

    /// Runs the worker until nothing is due (through the admin API); returns what it did.
    pub async fn drain(&self) -> Value {
        let token = self.admin_token();
        ok(self
            .send(Method::POST, "/_pcq/admin/worker/drain", &token, None)
            .await)
        .await
    }

    /// Moves pcq's clock forward (through the admin API).
    pub async fn advance(&self, by: &str) {
        let resp = self
            .send_post(
                "/_pcq/admin/clock",
                &self.admin_token(),
                &json!({"advance": by}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "advancing the clock by {by}");
    }

    /// Sets the vetting policy at run time (through the admin API).
    pub async fn set_policy(&self, changes: Value) {
        let token = self.admin_token();
        let resp = self
            .send(
                Method::PUT,
                "/_pcq/admin/vetting-policy",
                &token,
                Some(&changes),
            )
            .await;
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

    /// Asks to register `partner` for webhook `events` at `url`.
    pub async fn post_registration(
        &self,
        partner: &Partner,
        url: &str,
        events: &[&str],
    ) -> Response {
        let body = json!({"WebhookUrl": url, "WebhookEvents": events});
        self.send_post("/webhooks/v1/registration", &partner.app, &body)
            .await
    }

    /// Registers `partner` for webhook `events` at `url`.
    pub async fn register_webhook(&self, partner: &Partner, url: &str, events: &[&str]) {
        let resp = self.post_registration(partner, url, events).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// The partner's webhook delivery log, newest first.
    pub async fn deliveries(&self, partner: &Partner) -> Vec<Value> {
        let resp = self
            .fetch("/webhooks/v1/registration/deliveries", &partner.app)
            .await;
        ok(resp).await
    }

    /// The partner's audit records (all of them, first page of 1000).
    pub async fn audit(&self, partner: &Partner, query: &str) -> Vec<Value> {
        let resp = self
            .fetch(&format!("/v1/auditrecords?size=1000&{query}"), &partner.app)
            .await;
        let page: Value = ok(resp).await;
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

    /// Loads seed JSON as `pcq serve --seed` does: a reset loads it again.
    pub async fn seed_as_started(&self, json: &str) {
        let seed = pcq_server::service::seed::Seed::from_json(json).expect("valid seed");
        assert!(self.state.seed.set(seed).is_ok(), "one seed per node");
        self.seed(json).await;
    }

    /// GETs `path` with a bearer token.
    pub async fn fetch(&self, path: &str, token: &str) -> Response {
        self.get(path, token).send().await.unwrap()
    }

    /// Sends `method` to `path` with a bearer token and, when given, `body` as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.req(method, path, token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// POSTs `body` as JSON to `path` with a bearer token.
    pub async fn send_post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.post(path, token, body).send().await.unwrap()
    }

    /// POSTs `body` exactly as given (raw bytes, labelled JSON) to `path` with a bearer token.
    pub async fn send_raw(
        &self,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.req(Method::POST, path, token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a qualification request with App+User credentials.
    pub async fn post_qualification(
        &self,
        partner: &Partner,
        customer: Uuid,
        body: &Value,
    ) -> Response {
        self.send_post(
            &format!("/v1/customers/{customer}/qualifications"),
            &partner.user,
            body,
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
