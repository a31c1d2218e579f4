//! pcq's sandbox controls (`/_pcq/admin`, role `Pcq.Admin`).
//!
//! These routes answer pcq's own documents (clock, faults, journal, reset and load outcomes);
//! the client hands them over as [`serde_json::Value`] as pcq sent them. Their schemas are in
//! pcq's OpenAPI document (`/_pcq/openapi.json`).

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use pcq_core::NewValidationCode;
use pcq_core::wire::ValidationCode;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Decoder, Operation, RequestBody, no_body};
use crate::error::CallIds;
use crate::{Error, PartnerClient};

/// A byte stream (a state document being downloaded).
pub type ByteStream = BoxStream<'static, Result<Bytes, Error>>;

/// The sandbox controls: `client.admin()`.
#[derive(Debug, Clone)]
pub struct Admin {
    client: PartnerClient,
}

impl Admin {
    pub(crate) fn new(client: PartnerClient) -> Self {
        Admin { client }
    }

    /// The sandbox clock.
    pub fn clock(&self) -> Clock {
        Clock {
            client: self.client.clone(),
        }
    }

    /// The vetting policy in force.
    pub fn vetting_policy(&self) -> VettingPolicy {
        VettingPolicy {
            client: self.client.clone(),
        }
    }

    /// Dumps and loads of the whole state (or one partner's).
    pub fn state(&self) -> State {
        State {
            client: self.client.clone(),
        }
    }

    /// Injected faults.
    pub fn faults(&self) -> Faults {
        Faults {
            client: self.client.clone(),
        }
    }

    /// `POST /_pcq/admin/reset`: removes everything, or one partner's data; answers what was
    /// removed (`{"removed": {...}, "partner", "seeded"}`).
    pub fn reset(&self, partner: Option<&str>) -> Operation<Value> {
        let call = self.client.call(Method::POST, &["_pcq", "admin", "reset"]);
        match partner {
            Some(p) => call.query("partner", p),
            None => call,
        }
    }

    /// `GET /_pcq/admin/requests`: the node's request journal, newest first
    /// (`{"node", "items": [...], "truncated", "nextSince"}`).
    pub fn requests(&self, filter: RequestFilter) -> Operation<Value> {
        let mut call = self
            .client
            .call(Method::GET, &["_pcq", "admin", "requests"]);
        for (key, value) in [
            ("partner", filter.partner),
            ("method", filter.method),
            ("path", filter.path),
            ("status", filter.status),
            ("since", filter.since.map(|s| s.to_string())),
            ("limit", filter.limit.map(|l| l.to_string())),
        ] {
            if let Some(value) = value {
                call = call.query(key, &value);
            }
        }
        call
    }

    /// `DELETE /_pcq/admin/requests`: empties the node's journal (`{"removed": n}`).
    pub fn clear_requests(&self) -> Operation<Value> {
        self.client
            .call(Method::DELETE, &["_pcq", "admin", "requests"])
    }

    /// `POST /_pcq/admin/worker/drain`: runs the vetting and webhook work that is due, to the
    /// end, pruning what outlived its retention first (`{"vettingDecisions", "webhookAttempts",
    /// "webhooksDelivered", "rowsPruned", "incomplete"}`).
    pub fn drain_worker(&self) -> Operation<Value> {
        self.client
            .call(Method::POST, &["_pcq", "admin", "worker", "drain"])
    }

    /// `POST /_pcq/admin/partners/{partner}/validation-codes`: issues a GCC validation code to
    /// a partner.
    pub fn issue_validation_code(
        &self,
        partner: impl Display,
        code: &NewValidationCode,
    ) -> Operation<ValidationCode> {
        let partner = partner.to_string();
        self.client
            .call(
                Method::POST,
                &["_pcq", "admin", "partners", &partner, "validation-codes"],
            )
            .json_body(&code.to_json())
    }

    /// `GET /_pcq/customers/{id}/qualifications/history`: every step of the customer's
    /// qualifications (`qualification`, `round`, `fromStatus`, `toStatus`, `reason`, `actor`,
    /// `at`, `requestId`).
    pub fn qualification_history(&self, customer: impl Display) -> Operation<Vec<Value>> {
        let customer = customer.to_string();
        self.client.call(
            Method::GET,
            &["_pcq", "customers", &customer, "qualifications", "history"],
        )
    }
}

/// The filters of a journal read; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only this partner tenant's requests.
    pub partner: Option<String>,
    /// Only this method.
    pub method: Option<String>,
    /// Only paths starting with this.
    pub path: Option<String>,
    /// Only this status (`404`) or class (`4xx`).
    pub status: Option<String>,
    /// Only entries after this id.
    pub since: Option<u64>,
    /// At most this many entries (1 to 1000; 100 by default).
    pub limit: Option<u32>,
}

impl RequestFilter {
    /// No filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this partner tenant's requests.
    #[must_use]
    pub fn partner(mut self, partner: impl Display) -> Self {
        self.partner = Some(partner.to_string());
        self
    }

    /// Only this method.
    #[must_use]
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Only paths starting with `prefix`.
    #[must_use]
    pub fn path(mut self, prefix: impl Into<String>) -> Self {
        self.path = Some(prefix.into());
        self
    }

    /// Only this status or class.
    #[must_use]
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Only entries after `id`.
    #[must_use]
    pub fn since(mut self, id: u64) -> Self {
        self.since = Some(id);
        self
    }

    /// At most `n` entries.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
}

/// The sandbox clock: `client.admin().clock()`.
#[derive(Debug, Clone)]
pub struct Clock {
    client: PartnerClient,
}

impl Clock {
    /// `GET /_pcq/admin/clock`: `{"now", "offset", "offsetSeconds"}`.
    pub fn get(&self) -> Operation<Value> {
        self.client.call(Method::GET, &["_pcq", "admin", "clock"])
    }

    /// `POST /_pcq/admin/clock`: moves pcq's clock forward by `by` (`72h`, `30m`, `1d12h`).
    pub fn advance(&self, by: &str) -> Operation<Value> {
        self.client
            .call(Method::POST, &["_pcq", "admin", "clock"])
            .json_body(&json!({ "advance": by }))
    }
}

/// The vetting policy: `client.admin().vetting_policy()`.
#[derive(Debug, Clone)]
pub struct VettingPolicy {
    client: PartnerClient,
}

impl VettingPolicy {
    /// `GET /_pcq/admin/vetting-policy`: the policy in force.
    pub fn get(&self) -> Operation<Value> {
        self.client
            .call(Method::GET, &["_pcq", "admin", "vetting-policy"])
    }

    /// `PUT /_pcq/admin/vetting-policy`: changes the given settings, e.g.
    /// `json!({"policy": "immediate", "outcome": "approve"})` (keys: `policy`, `outcome`,
    /// `after`, `after_reads`, `deny_reason`, `academic_suffixes`, `gcc_review`).
    pub fn set(&self, changes: Value) -> Operation<Value> {
        self.client
            .call(Method::PUT, &["_pcq", "admin", "vetting-policy"])
            .json_body(&changes)
    }

    /// `DELETE /_pcq/admin/vetting-policy`: back to the configured policy.
    pub fn reset(&self) -> Operation<Value> {
        self.client
            .call(Method::DELETE, &["_pcq", "admin", "vetting-policy"])
    }
}

/// State documents: `client.admin().state()`.
#[derive(Debug, Clone)]
pub struct State {
    client: PartnerClient,
}

impl State {
    fn url(&self, partner: Option<&str>) -> reqwest::Url {
        let mut url = self.client.url(&["_pcq", "admin", "state"]);
        if let Some(p) = partner {
            url.query_pairs_mut().append_pair("partner", p);
        }
        url
    }

    /// `GET /_pcq/admin/state`: the whole state (or one partner's) as a JSON document, streamed
    /// as it comes (it may be larger than memory): write it to a file, or collect it.
    pub fn dump(&self, partner: Option<&str>) -> Operation<ByteStream> {
        fn stream(answer: reqwest::Response, ids: CallIds) -> ByteStream {
            answer
                .bytes_stream()
                .map_err(move |source| Error::Transport {
                    source,
                    ids: ids.clone(),
                })
                .boxed()
        }
        Operation::new(
            self.client.clone(),
            Method::GET,
            self.url(partner),
            Decoder::Streaming(stream),
        )
    }

    /// `PUT /_pcq/admin/state` from a file, read as it is sent (and read again on a retry):
    /// replaces the state (or one partner's); answers what was loaded and removed.
    pub fn load_file(&self, partner: Option<&str>, path: impl Into<PathBuf>) -> Operation<Value> {
        self.loader(partner).body(RequestBody::File(path.into()))
    }

    /// `PUT /_pcq/admin/state` from a document in memory.
    pub fn load_bytes(
        &self,
        partner: Option<&str>,
        document: impl Into<Bytes>,
    ) -> Operation<Value> {
        self.loader(partner)
            .body(RequestBody::Json(document.into()))
    }

    /// `PUT /_pcq/admin/state` from a stream of bytes (e.g. another node's dump). A stream can
    /// be sent once: this call is not retried.
    pub fn load<S, E>(&self, partner: Option<&str>, document: S) -> Operation<Value>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let body = reqwest::Body::wrap_stream(document);
        self.loader(partner)
            .body(RequestBody::Once(Mutex::new(Some(body))))
    }

    fn loader(&self, partner: Option<&str>) -> Operation<Value> {
        Operation::new(
            self.client.clone(),
            Method::PUT,
            self.url(partner),
            Decoder::Json(|body| serde_json::from_slice(body)),
        )
    }
}

/// Injected faults: `client.admin().faults()`.
#[derive(Debug, Clone)]
pub struct Faults {
    client: PartnerClient,
}

impl Faults {
    /// `POST /_pcq/admin/faults`: adds a fault; answers it with its id.
    pub fn add(&self, fault: &FaultSpec) -> Operation<Value> {
        self.client
            .call(Method::POST, &["_pcq", "admin", "faults"])
            .json_body(&Value::Object(fault.0.clone()))
    }

    /// `GET /_pcq/admin/faults`: every fault, with how often it fired.
    pub fn list(&self) -> Operation<Vec<Value>> {
        self.client.call(Method::GET, &["_pcq", "admin", "faults"])
    }

    /// `DELETE /_pcq/admin/faults/{id}`.
    pub fn remove(&self, id: impl Display) -> Operation<()> {
        let id = id.to_string();
        let url = self.client.url(&["_pcq", "admin", "faults", &id]);
        Operation::new(
            self.client.clone(),
            Method::DELETE,
            url,
            Decoder::Json(no_body),
        )
    }

    /// `DELETE /_pcq/admin/faults`: removes them all (`{"removed": n}`).
    pub fn clear(&self) -> Operation<Value> {
        self.client
            .call(Method::DELETE, &["_pcq", "admin", "faults"])
    }
}

/// A fault to inject: what it matches and how it answers.
///
/// ```
/// use pcq_client::FaultSpec;
///
/// // The next two qualification requests are committed, then their answers lost as 503s.
/// let lost = FaultSpec::new("/v1/customers/*/qualifications")
///     .method("POST")
///     .status(503)
///     .count(2)
///     .after();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec(Map<String, Value>);

impl FaultSpec {
    /// A fault on the paths matching `path_glob` (`*` within a segment, `**` across them),
    /// for any method; without [`FaultSpec::status`] it only delays (see
    /// [`FaultSpec::delay_ms`]).
    pub fn new(path_glob: impl Into<String>) -> Self {
        let mut map = Map::new();
        map.insert("path".into(), Value::String(path_glob.into()));
        FaultSpec(map)
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    /// Only this method (`GET`, `POST`, …).
    #[must_use]
    pub fn method(self, method: impl Into<String>) -> Self {
        self.set("method", Value::String(method.into()))
    }

    /// The status answered (400 to 599).
    #[must_use]
    pub fn status(self, status: u16) -> Self {
        self.set("status", status.into())
    }

    /// Closes the connection without an answer, instead of a status.
    #[must_use]
    pub fn reset_connection(self) -> Self {
        self.set("status", "reset".into())
    }

    /// The `Retry-After` of a 429, in seconds.
    #[must_use]
    pub fn retry_after_seconds(self, seconds: u64) -> Self {
        self.set("retryAfterSeconds", seconds.into())
    }

    /// Holds the answer back this long.
    #[must_use]
    pub fn delay_ms(self, ms: u64) -> Self {
        self.set("delayMs", ms.into())
    }

    /// Fires this many times, then is gone.
    #[must_use]
    pub fn count(self, n: u32) -> Self {
        self.set("count", n.into())
    }

    /// Faults only this share of the matching requests (0 to 1), repeatably with
    /// [`FaultSpec::seed`].
    #[must_use]
    pub fn probability(self, p: f64) -> Self {
        self.set("probability", json!(p))
    }

    /// The seed of [`FaultSpec::probability`].
    #[must_use]
    pub fn seed(self, seed: u64) -> Self {
        self.set("seed", seed.into())
    }

    /// Only requests authenticated as this partner tenant.
    #[must_use]
    pub fn partner(self, partner: impl Display) -> Self {
        self.set("partner", Value::String(partner.to_string()))
    }

    /// Lets the request take effect and commit, then loses its answer (`"when": "after"`).
    #[must_use]
    pub fn after(self) -> Self {
        self.set("when", "after".into())
    }

    /// The body sent to pcq.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}
