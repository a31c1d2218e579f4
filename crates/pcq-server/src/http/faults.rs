//! Injected faults over HTTP: the sandbox controls that add, list and remove them, and where
//! requests meet them.
//!
//! [`InjectLayer`] wraps the router: it looks the request's method and path up in
//! the node's copy of the faults (one atomic load when there are none). A matching fault
//! without a partner fires there, before authentication: `before`, it answers (or resets the
//! connection) without running the handler; `after`, it lets the handler run and commit, then
//! replaces the answer. Faults scoped to a partner are handed to the authenticating extractors
//! ([`after_authentication`]), which fire them only for a request pcq verified as that
//! partner's, after throttling; the middleware then finishes what they started. Every faulted
//! answer carries `x-pcq-fault: <id>`. At most one fault fires per request, the oldest first.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use futures_util::future::{BoxFuture, Either};
use pcq_core::ApiFault;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::ServiceExt;

use super::extract::{AdminCaller, JsonBody};
use super::fault::{Replayed, fault_response};
use super::journal::JournalSlots;
use crate::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::faults::{
    Action, AddFault, ClearFaults, FaultSpec, FaultView, ListFaults, RemoveFault, Rule, When,
};
use crate::serve::ConnectionHandle;
use crate::store::Reply;

/// The header naming the fault that changed an answer.
pub static FAULT_HEADER: HeaderName = HeaderName::from_static("x-pcq-fault");

/// The faults scoped to a partner that matched a request's method and path, for the
/// authenticating extractor, and the one it fired.
#[derive(Clone)]
struct PartnerFaults {
    rules: Arc<Vec<Arc<Rule>>>,
    fired: Arc<Mutex<Option<Arc<Rule>>>>,
}

impl PartnerFaults {
    fn fired(&self) -> Option<Arc<Rule>> {
        match self.fired.lock() {
            Ok(fired) => fired.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_fired(&self, rule: Arc<Rule>) {
        match self.fired.lock() {
            Ok(mut fired) => *fired = Some(rule),
            Err(poisoned) => *poisoned.into_inner() = Some(rule),
        }
    }
}

/// The rest of the stack, called at most once.
struct Next<S>(S);

impl<S> Next<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    async fn run(self, request: Request) -> Response {
        match self.0.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Counts a fault that fired, by what it does.
fn count_fired(state: &AppState, rule: &Rule) {
    state.metrics.fault_fired(match rule.action {
        Some(Action::Status(status)) => status.to_string(),
        Some(Action::Reset) => "reset".to_owned(),
        None => "delay".to_owned(),
    });
}

/// The fault a rule answers with.
fn injected(rule: &Rule, status: u16, carried_out: bool) -> ApiFault {
    ApiFault::injected(
        status,
        &rule.id.to_string(),
        rule.retry_after_seconds,
        carried_out,
    )
}

/// Marks an answer as changed by `rule`, with the `Retry-After` it announces.
fn tag(mut response: Response, rule: &Rule) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&rule.id.to_string()) {
        headers.insert(FAULT_HEADER.clone(), value);
    }
    if let (Some(seconds), Some(Action::Status(_))) = (rule.retry_after_seconds, rule.action) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// What `rule` answers instead of the handler (or instead of its answer, `carried_out`):
/// its status, or nothing at all, the connection being reset.
async fn answer(
    rule: &Rule,
    action: Action,
    carried_out: bool,
    connection: Option<ConnectionHandle>,
    journal: Option<&JournalSlots>,
) -> Response {
    match action {
        Action::Status(status) => tag(fault_response(&injected(rule, status, carried_out)), rule),
        Action::Reset => match connection {
            Some(connection) => {
                if let Some(journal) = journal {
                    journal.note_reset(&rule.id.to_string());
                }
                connection.reset();
                // The connection loop drops this request with its connection.
                std::future::pending().await
            }
            // Not served by pcq's connection loop (a router called directly): the closest
            // answer there is.
            None => tag(fault_response(&injected(rule, 503, carried_out)), rule),
        },
    }
}

/// The layer that applies injected faults to the requests of the service it wraps (see the
/// module's description). A tower layer of its own rather than `middleware::from_fn`: with no
/// fault that can match, a request costs one atomic load and goes straight to the inner
/// service, without the boxed service and future a `from_fn` middleware makes per request.
#[derive(Clone)]
pub struct InjectLayer(pub AppState);

impl<S> tower::Layer<S> for InjectLayer {
    type Service = Inject<S>;

    fn layer(&self, inner: S) -> Inject<S> {
        Inject {
            state: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`InjectLayer`].
#[derive(Clone)]
pub struct Inject<S> {
    state: AppState,
    inner: S,
}

impl<S> tower::Service<Request> for Inject<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let candidates = self
            .state
            .pipeline
            .faults
            .candidates(request.method(), request.uri().path());
        if candidates.is_empty() {
            return Either::Left(self.inner.call(request));
        }
        // The ready service answers this request; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Box::pin(async move {
            Ok(inject(state, candidates, request, inner).await)
        }))
    }
}

/// Applies the faults `candidates` (those matching the request's method and path) to a request
/// that `inner` answers.
async fn inject<S>(
    state: AppState,
    candidates: Vec<Arc<Rule>>,
    mut request: Request,
    inner: S,
) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    let next = Next(inner);
    let connection = request.extensions().get::<ConnectionHandle>().cloned();
    let journal = request.extensions().get::<JournalSlots>().cloned();
    let journal = journal.as_ref();
    let (open, scoped): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|rule| rule.partner.is_none());
    let mut fired = None;
    for rule in open {
        if rule.roll() && rule.spend(&state.pipeline).await {
            count_fired(&state, &rule);
            fired = Some(rule);
            break;
        }
    }
    let pending = (fired.is_none() && !scoped.is_empty()).then(|| PartnerFaults {
        rules: Arc::new(scoped),
        fired: Arc::new(Mutex::new(None)),
    });
    if let Some(pending) = &pending {
        request.extensions_mut().insert(pending.clone());
    }
    if let Some(rule) = &fired {
        if rule.when == When::Before {
            tokio::time::sleep(rule.delay).await;
            return match rule.action {
                Some(action) => answer(rule, action, false, connection, journal).await,
                None => tag(next.run(request).await, rule),
            };
        }
    }
    let response = next.run(request).await;
    let Some(rule) = fired.or_else(|| pending.and_then(|p| p.fired())) else {
        return response;
    };
    match (rule.when, rule.action) {
        (When::After, action) => {
            tokio::time::sleep(rule.delay).await;
            match action {
                Some(action) => {
                    // The journal still says whether the lost answer was a replay.
                    let replayed = response.extensions().get::<Replayed>().copied();
                    let mut answered = answer(&rule, action, true, connection, journal).await;
                    if let Some(replayed) = replayed {
                        answered.extensions_mut().insert(replayed);
                    }
                    answered
                }
                None => tag(response, &rule),
            }
        }
        // Fired by the extractor before the handler: it answered the fault already (and
        // waited out the delay), or asked for the connection to be reset.
        (When::Before, Some(Action::Reset)) => {
            answer(&rule, Action::Reset, false, connection, journal).await
        }
        (When::Before, _) => tag(response, &rule),
    }
}

/// Fires a fault scoped to the partner pcq just verified the request to come from, if one
/// matched the request: `before`, after its delay, refuses the request with its status (the
/// middleware resets the connection instead when the fault says so); `after`, notes it for
/// the middleware.
pub async fn after_authentication(
    parts: &Parts,
    state: &AppState,
    principal: &Principal,
) -> Result<(), ApiFault> {
    let Some(pending) = parts.extensions.get::<PartnerFaults>() else {
        return Ok(());
    };
    if pending.fired().is_some() {
        return Ok(());
    }
    for rule in pending.rules.iter() {
        if rule.partner != Some(principal.tenant_id) {
            continue;
        }
        if !(rule.roll() && rule.spend(&state.pipeline).await) {
            continue;
        }
        count_fired(state, rule);
        pending.set_fired(rule.clone());
        if rule.when == When::Before {
            tokio::time::sleep(rule.delay).await;
            return match rule.action {
                None => Ok(()),
                Some(Action::Status(status)) => Err(injected(rule, status, false)),
                // Replaced by the reset in the middleware; never sent.
                Some(Action::Reset) => Err(injected(rule, 503, false)),
            };
        }
        return Ok(());
    }
    Ok(())
}

/// The body of `POST /_pcq/admin/faults` (every property but `path` optional; names in any
/// letter case).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct FaultBody {
    /// The method to match (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS`), or
    /// `*` for any (the default).
    #[schema(example = "POST")]
    method: Option<String>,
    /// A glob on the request path: `*` and `?` within a segment, `**` across segments, `[ab]`
    /// and `{a,b}` choose. Requests to `/_pcq/admin/...`, `/_pcq/health`, `/_pcq/ready` and
    /// `/_pcq/openapi.json` are never faulted.
    #[schema(example = "/v1/customers/*/qualifications", max_length = 1000)]
    path: String,
    /// Only requests authenticated as this partner tenant (checked after authentication);
    /// without it, every request (checked before authentication).
    partner: Option<uuid::Uuid>,
    /// The status to answer (400 to 599) with the Partner Center envelope, or `"reset"` to
    /// close the connection without answering. Without it, the fault only delays.
    status: Option<crate::faults::StatusView>,
    /// `Retry-After` of the answer in seconds (a 429 without it sends 1).
    #[schema(minimum = 1, maximum = 86400)]
    retry_after_seconds: Option<u64>,
    /// How long the answer is held back, in milliseconds.
    #[schema(minimum = 0, maximum = 60000)]
    delay_ms: Option<u64>,
    /// The chance that a matching request is faulted (default 1).
    #[schema(minimum = 0.0, maximum = 1.0)]
    probability: Option<f64>,
    /// How many times the fault fires, across every node, before it is removed; unlimited
    /// without it.
    #[schema(minimum = 1, maximum = 4294967295u64)]
    count: Option<u64>,
    /// Makes `probability` repeatable: the n-th matching request on a node is faulted or not
    /// alike on every run.
    #[schema(minimum = 0)]
    seed: Option<u64>,
    /// `before` (the default: the request is not carried out) or `after` (the request takes
    /// effect and commits, then its answer is replaced or the connection closed).
    #[schema(example = "before")]
    when: Option<WhenBody>,
}

/// When a fault fires.
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum WhenBody {
    /// Before the request is carried out.
    Before,
    /// After the request took effect.
    After,
}

/// How many faults were removed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FaultsRemoved {
    /// How many.
    pub removed: u64,
}

/// Adds a fault: matching requests are answered with its status, have their connection
/// closed, or are slowed down (sandbox control).
#[utoipa::path(
    post,
    path = "/_pcq/admin/faults",
    tag = "sandbox",
    request_body = FaultBody,
    responses((status = 201, description = "The fault as stored", body = FaultView)),
    security(("bearer" = []))
)]
pub async fn add_fault(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    body: JsonBody,
) -> Result<Reply, Error> {
    let spec = FaultSpec::parse(&body.value)?;
    let row = spec.into_row(uuid::Uuid::new_v4(), state.pipeline.now());
    let view = state.pipeline.write(AddFault(row)).await?;
    Reply::created(&view)
}

/// The faults in force, oldest first, with how often each has fired (sandbox control).
#[utoipa::path(
    get,
    path = "/_pcq/admin/faults",
    tag = "sandbox",
    responses((status = 200, description = "The faults", body = Vec<FaultView>)),
    security(("bearer" = []))
)]
pub async fn list_faults(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    Reply::ok(&state.pipeline.read(ListFaults).await?)
}

/// Removes every fault (sandbox control).
#[utoipa::path(
    delete,
    path = "/_pcq/admin/faults",
    tag = "sandbox",
    responses((status = 200, description = "How many faults were removed", body = FaultsRemoved)),
    security(("bearer" = []))
)]
pub async fn clear_faults(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    let removed = state.pipeline.write(ClearFaults).await?;
    Reply::ok(&FaultsRemoved { removed })
}

/// Removes one fault (sandbox control).
#[utoipa::path(
    delete,
    path = "/_pcq/admin/faults/{fault_id}",
    tag = "sandbox",
    params(("fault_id" = uuid::Uuid, Path, description = "The fault's id")),
    responses(
        (status = 204, description = "The fault was removed"),
        (status = 404, description = "No fault has that id", body = pcq_core::fault::Envelope),
    ),
    security(("bearer" = []))
)]
pub async fn remove_fault(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(raw): Path<String>,
) -> Result<Reply, Error> {
    let id = pcq_core::ids::parse_guid(&raw).ok_or_else(|| {
        ApiFault::invalid_input(format!(
            "The fault id '{}' is not a GUID; GET /_pcq/admin/faults lists the faults' ids.",
            raw.chars().take(80).collect::<String>()
        ))
        .with_param("field", "fault_id")
    })?;
    state.pipeline.write(RemoveFault(id)).await?;
    Ok(Reply::no_content())
}
