//! The client, its builder, and the one place where requests are sent and retried.

use std::future::{Future, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::auth::{StaticToken, TokenProvider};
use crate::error::CallIds;
use crate::retry::{AttemptOutcome, RetryPolicy, jitter};
use crate::{
    Admin, AuditRecords, Customers, Error, Review, ValidationCodes, Webhooks,
    install_crypto_provider,
};

/// The header carrying the idempotency key of a call.
pub const REQUEST_ID_HEADER: &str = "MS-RequestId";
/// The header carrying the correlation id of a logical operation.
pub const CORRELATION_ID_HEADER: &str = "MS-CorrelationId";
/// The header carrying a continuation token of a paged list.
pub const CONTINUATION_HEADER: &str = "MS-ContinuationToken";

/// This crate's version, sent as `MS-SdkVersion`.
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A client of the Partner Center customer-qualification API, as pcq serves it.
///
/// Cheap to clone (the connection pool and the token cache are shared), `Send` and `Sync`.
/// Each resource is reached fluently, as with the .NET SDK:
/// `client.customers().by_id(id).qualifications().create(request).await`.
#[derive(Clone)]
pub struct PartnerClient {
    inner: Arc<Inner>,
    correlation_id: Option<Arc<str>>,
}

struct Inner {
    base: Url,
    http: reqwest::Client,
    tokens: Box<dyn TokenProvider>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerClient")
            .field("base_url", &self.inner.base.as_str())
            .field("retry", &self.inner.retry)
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

/// Sets up a [`PartnerClient`]: `PartnerClient::builder(url) … .build()`.
pub struct ClientBuilder {
    base_url: String,
    tokens: Option<Box<dyn TokenProvider>>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    user_agent: String,
    correlation_id: Option<String>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PartnerClient {
    /// A builder for a client of the service at `base_url` (e.g. `http://127.0.0.1:8080` for
    /// `pcq serve`, `https://api.partnercenter.microsoft.com` for Partner Center).
    pub fn builder(base_url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.as_ref().to_owned(),
            tokens: None,
            retry: RetryPolicy::default(),
            timeout: Some(Duration::from_secs(100)),
            connect_timeout: Duration::from_secs(10),
            user_agent: format!("pcq-client/{SDK_VERSION}"),
            correlation_id: None,
        }
    }

    /// The same client, sending `id` as `MS-CorrelationId` on every call: for the calls of one
    /// logical operation. Without it, each call (each paged stream) gets a correlation id of its
    /// own.
    pub fn with_correlation_id(&self, id: impl Into<String>) -> PartnerClient {
        PartnerClient {
            inner: self.inner.clone(),
            correlation_id: Some(id.into().into()),
        }
    }

    /// The correlation id set by [`PartnerClient::with_correlation_id`], if any.
    pub(crate) fn fixed_correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The retry policy of the client's calls.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Customers: create, get, list, and their qualifications.
    pub fn customers(&self) -> Customers {
        Customers::new(self.clone())
    }

    /// The calling partner's GCC validation codes.
    pub fn validation_codes(&self) -> ValidationCodes {
        ValidationCodes::new(self.clone())
    }

    /// Audit records.
    pub fn audit_records(&self) -> AuditRecords {
        AuditRecords::new(self.clone())
    }

    /// The partner's webhook registration, its events and deliveries.
    pub fn webhooks(&self) -> Webhooks {
        Webhooks::new(self.clone())
    }

    /// pcq's reviewer workflow (role `Pcq.Reviewer`).
    pub fn review(&self) -> Review {
        Review::new(self.clone())
    }

    /// pcq's sandbox controls (role `Pcq.Admin`).
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }

    /// The URL of `segments` under the base URL (each segment percent-encoded as needed).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            // A base URL that can be a base was checked by `build`.
            let mut path = url
                .path_segments_mut()
                .expect("the base URL was checked to be a base");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// A call of `method` on `segments`, answering `T` decoded from JSON.
    pub(crate) fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Operation<T> {
        Operation::new(
            self.clone(),
            method,
            self.url(segments),
            Decoder::Json(json_body::<T>),
        )
    }
}

impl ClientBuilder {
    /// Where tokens come from (see [`crate::ClientCredentials`], [`crate::RefreshToken`]).
    #[must_use]
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.tokens = Some(Box::new(provider));
        self
    }

    /// A fixed bearer token (e.g. from `pcq token`).
    #[must_use]
    pub fn token(self, token: impl Into<String>) -> Self {
        self.token_provider(StaticToken::new(token))
    }

    /// The retry policy ([`RetryPolicy::default`] unless set).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long one attempt may take, from sending to the last byte of the answer (100 s, as
    /// the .NET SDK, unless set).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long connecting may take (10 s unless set).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` sent (`pcq-client/VERSION` unless set).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// One `MS-CorrelationId` for every call of the client (see
    /// [`PartnerClient::with_correlation_id`]).
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The client. Fails when the base URL is not an absolute http(s) URL, no token provider
    /// was set, or the HTTP client cannot be set up.
    ///
    /// Installs ring as the process's rustls provider when none is installed yet.
    pub fn build(self) -> Result<PartnerClient, Error> {
        let base = Url::parse(self.base_url.trim())
            .map_err(|e| Error::Config(format!("the base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "the base URL {:?} is not an http or https URL",
                self.base_url
            )));
        }
        let tokens = self.tokens.ok_or_else(|| {
            Error::Config("no token provider: call .token(..) or .token_provider(..)".into())
        })?;
        install_crypto_provider();
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent);
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(PartnerClient {
            inner: Arc::new(Inner {
                base,
                http,
                tokens,
                retry: self.retry,
            }),
            correlation_id: self.correlation_id.map(Into::into),
        })
    }
}

/// What a request sends as its body.
pub(crate) enum RequestBody {
    /// Nothing.
    Empty,
    /// JSON, sent again as it is on every attempt.
    Json(Bytes),
    /// A file, opened again for every attempt.
    File(PathBuf),
    /// A stream, which can be sent once: a call with it is never retried.
    Once(Mutex<Option<reqwest::Body>>),
}

/// How an answer becomes the operation's output.
pub(crate) enum Decoder<T> {
    /// From the whole body.
    Json(fn(&[u8]) -> serde_json::Result<T>),
    /// From the answer itself, its body not read yet (streams).
    Streaming(fn(reqwest::Response, CallIds) -> T),
}

fn json_body<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(body)
}

/// For operations that answer no body (204) or one the client has no use for.
pub(crate) fn no_body(_: &[u8]) -> serde_json::Result<()> {
    Ok(())
}

/// One call of the API, not sent yet: `.await` it (or call [`Operation::send`]).
///
/// Before that, [`Operation::with_request_id`] fixes its `MS-RequestId` — the idempotency key
/// of POST and PUT: a call repeated with the same id (in this process or a later one, e.g. an
/// import run again) is answered with the stored answer and changes nothing.
#[must_use = "an operation does nothing until it is awaited"]
pub struct Operation<T> {
    client: PartnerClient,
    method: Method,
    url: Url,
    body: RequestBody,
    continuation: Option<String>,
    request_id: Option<String>,
    correlation_id: Option<String>,
    retry: Option<RetryPolicy>,
    decoder: Decoder<T>,
}

impl<T> std::fmt::Debug for Operation<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Operation<T> {
    pub(crate) fn new(
        client: PartnerClient,
        method: Method,
        url: Url,
        decoder: Decoder<T>,
    ) -> Self {
        Operation {
            client,
            method,
            url,
            body: RequestBody::Empty,
            continuation: None,
            request_id: None,
            correlation_id: None,
            retry: None,
            decoder,
        }
    }

    /// Sends `id` as the call's `MS-RequestId` (on every attempt) rather than a new random one.
    /// Derive it from what identifies the write (an import row, a job) to make a rerun
    /// idempotent.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sends `id` as the call's `MS-CorrelationId`.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// This call's retry policy, instead of the client's.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The URL the call goes to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn json_body(mut self, body: &serde_json::Value) -> Self {
        // Serialising a `Value` cannot fail.
        self.body = RequestBody::Json(Bytes::from(serde_json::to_vec(body).unwrap_or_default()));
        self
    }

    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    pub(crate) fn query(mut self, key: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(key, value);
        self
    }

    pub(crate) fn continuation(mut self, token: Option<String>) -> Self {
        self.continuation = token;
        self
    }

    /// Sends the call, with its retries; the same as `.await`.
    pub async fn send(self) -> Result<T, Error> {
        self.into_future().await
    }

    async fn run(self) -> Result<T, Error> {
        let Operation {
            client,
            method,
            url,
            body,
            continuation,
            request_id,
            correlation_id,
            retry,
            decoder,
        } = self;
        let inner = &client.inner;
        let policy = retry.unwrap_or(inner.retry);
        let ids = CallIds {
            request_id: Some(request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
            correlation_id: Some(
                correlation_id
                    .or_else(|| client.correlation_id.as_deref().map(str::to_owned))
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
        };
        let request_id = header_value(ids.request_id.as_deref().unwrap_or_default())?;
        let correlation_id = header_value(ids.correlation_id.as_deref().unwrap_or_default())?;
        let continuation = continuation.as_deref().map(header_value).transpose()?;

        let started = Instant::now();
        let mut retries = 0;
        let mut force_refresh = false;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.token(force_refresh).await?;
            force_refresh = false;
            let mut request = inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, header_value(&format!("Bearer {token}"))?)
                .header(ACCEPT, "application/json")
                .header(REQUEST_ID_HEADER, request_id.clone())
                .header(CORRELATION_ID_HEADER, correlation_id.clone())
                .header("MS-PartnerCenter-Client", "pcq-client")
                .header("MS-SdkVersion", SDK_VERSION);
            if let Some(token) = &continuation {
                request = request.header(CONTINUATION_HEADER, token.clone());
            }
            let replayable = match &body {
                RequestBody::Empty => true,
                RequestBody::Json(bytes) => {
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(bytes.clone());
                    true
                }
                RequestBody::File(path) => {
                    let file = tokio::fs::File::open(path)
                        .await
                        .map_err(|source| Error::Io {
                            path: path.display().to_string(),
                            source,
                        })?;
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(reqwest::Body::from(file));
                    true
                }
                RequestBody::Once(slot) => {
                    let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let Some(stream) = taken else {
                        return Err(Error::Config("a streamed body can be sent once".into()));
                    };
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(stream);
                    false
                }
            };

            let outcome = match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    if status.is_success() {
                        match &decoder {
                            Decoder::Streaming(finish) => return Ok(finish(answer, ids)),
                            Decoder::Json(decode) => match answer.bytes().await {
                                Ok(bytes) => {
                                    return decode(&bytes).map_err(|source| Error::Decode {
                                        status,
                                        source,
                                        ids,
                                    });
                                }
                                // The answer was lost half-way: as if it never came.
                                Err(source) => Err(Error::Transport {
                                    source,
                                    ids: ids.clone(),
                                }),
                            },
                        }
                    } else if status == StatusCode::UNAUTHORIZED && !refreshed && replayable {
                        // The token may have been revoked or have expired early: one more try
                        // with a fresh one, which is no retry of the policy's.
                        refreshed = true;
                        force_refresh = true;
                        let _ = answer.bytes().await;
                        continue;
                    } else {
                        let retry_after = retry_after(answer.headers());
                        let body = answer.bytes().await.unwrap_or_default();
                        Ok(Error::from_answer(status, &body, retry_after, ids.clone()))
                    }
                }
                Err(source) => Err(Error::Transport {
                    source,
                    ids: ids.clone(),
                }),
            };
            let (error, attempt) = match outcome {
                Ok(error) => {
                    let status = error.status().map_or(0, |s| s.as_u16());
                    let attempt = AttemptOutcome::Status(status, error.retry_after());
                    (error, attempt)
                }
                Err(error) => (error, AttemptOutcome::Transport),
            };
            if let Error::Transport { source, .. } = &error {
                if source.is_builder() {
                    return Err(error);
                }
            }
            if !replayable {
                return Err(error);
            }
            match policy.delay_after(attempt, retries, started.elapsed(), jitter()) {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                None => return Err(error),
            }
        }
    }
}

impl<T: Send + 'static> IntoFuture for Operation<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A header value, or a configuration error naming what was wrong.
fn header_value(value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::Config("a header value (token, request id, correlation id or continuation token) holds characters HTTP headers cannot carry".into())
    })
}

/// The `Retry-After` of an answer, in its delta-seconds form (what Partner Center and pcq send).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> PartnerClient {
        PartnerClient::builder(base).token("t").build().unwrap()
    }

    #[test]
    fn the_client_and_its_calls_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<PartnerClient>();
        send::<Operation<crate::Customer>>();
        send::<<Operation<crate::Customer> as IntoFuture>::IntoFuture>();
    }

    #[test]
    fn paths_are_joined_to_the_base_and_segments_encoded() {
        let c = client("http://127.0.0.1:8080");
        assert_eq!(
            c.url(&["v1", "customers"]).as_str(),
            "http://127.0.0.1:8080/v1/customers"
        );
        let c = client("https://gateway.example/partner/");
        assert_eq!(
            c.url(&["v1", "customers", "{a b}/../x", "qualifications"])
                .as_str(),
            "https://gateway.example/partner/v1/customers/%7Ba%20b%7D%2F..%2Fx/qualifications"
        );
    }

    #[test]
    fn a_client_needs_an_http_base_url_and_credentials() {
        for bad in ["not a url", "ftp://example.com", "mailto:a@example.com"] {
            let err = PartnerClient::builder(bad).token("t").build().unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad}: {err}");
        }
        let err = PartnerClient::builder("http://127.0.0.1:1")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
