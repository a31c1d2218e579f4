//! The request journal over HTTP: how every request this node answers is recorded, and
//! `GET`/`DELETE /_pcq/admin/requests`.
//!
//! Recording happens in the outermost layer of the stack, [`request_context`] (one layer less
//! for every request than a layer of its own), so it records the answer the client gets,
//! whatever produced it (a handler, an extractor's refusal, the timeout, the envelope safety
//! net, an injected fault, the layer's own refusal of a malformed id), and takes the request
//! ids as that layer settled them (the ones the answer carries).
//!
//! Bodies are copied as they stream, up to [`BODY_LIMIT`] bytes each, and the entry is
//! recorded when the response body has been handed over in full (before its last bytes are
//! written), so a client that has read an answer finds its entry. Reads of the journal itself
//! are not recorded: following the journal would otherwise fill it with its own reads.
//!
//! [`request_context`]: super::context::request_context

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header::HeaderMap};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pcq_core::ApiFault;
use pcq_core::fault::codes;

use super::extract::{AdminCaller, QueryParams};
use super::fault::Replayed;
use crate::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::journal::{
    BODY_LIMIT, Captured, DEFAULT_LIMIT, Entry, EntryView, Filter, JournalCaller, MAX_LIMIT,
    RequestId, StatusFilter, redact,
};
use crate::store::Reply;

/// The path of the journal.
pub const PATH: &str = "/_pcq/admin/requests";

/// The header an injected fault's answer carries (its id).
pub static FAULT_HEADER: HeaderName = HeaderName::from_static("x-pcq-fault");

/// What the layers inside leave in a request for its journal entry: the verified caller (from
/// the authenticating extractors) and the injected fault that closed the connection (the
/// request then gets no answer, and its entry is recorded when it is dropped). One shared
/// allocation per request for both.
#[derive(Clone, Default)]
pub struct JournalSlots(Arc<Slots>);

#[derive(Default)]
struct Slots {
    caller: OnceLock<Arc<JournalCaller>>,
    reset: OnceLock<HeaderValue>,
}

impl JournalSlots {
    /// Notes that the fault `id` is closing the request's connection.
    pub fn note_reset(&self, id: &str) {
        if let Ok(value) = HeaderValue::from_str(id) {
            let _ = self.0.reset.set(value);
        }
    }
}

/// Notes the verified caller of a request for its journal entry (when the journal is on).
pub fn note_caller(state: &AppState, extensions: &axum::http::Extensions, principal: &Principal) {
    let Some(slots) = extensions.get::<JournalSlots>() else {
        return;
    };
    let same = |c: &JournalCaller| {
        c.partner == principal.tenant_id
            && c.user == principal.upn
            && c.application == principal.app_id
    };
    if slots.0.caller.get().is_some_and(|c| same(c)) {
        return;
    }
    let _ = slots.0.caller.set(state.journal.caller(
        principal.tenant_id,
        principal.upn.as_deref(),
        principal.app_id.as_deref(),
    ));
}

/// The first bytes of a body as it streams past.
#[derive(Default)]
struct Tap {
    /// A first frame short enough to keep whole (not copied).
    first: Option<Bytes>,
    copied: Vec<u8>,
    truncated: bool,
}

impl Tap {
    fn take(&mut self, data: &Bytes) {
        if self.truncated || data.is_empty() {
            return;
        }
        if self.first.is_none() && self.copied.is_empty() && data.len() <= BODY_LIMIT {
            self.first = Some(data.clone());
            return;
        }
        if let Some(first) = self.first.take() {
            self.copied.extend_from_slice(&first);
        }
        let room = BODY_LIMIT - self.copied.len();
        self.copied.extend_from_slice(&data[..data.len().min(room)]);
        self.truncated = data.len() > room;
    }

    fn captured(&mut self) -> Captured {
        let bytes = match self.first.take() {
            Some(first) => first,
            None => Bytes::from(std::mem::take(&mut self.copied)),
        };
        Captured {
            bytes,
            truncated: self.truncated,
        }
    }
}

/// A request body that keeps its first bytes for the journal as the handler reads it.
struct RequestTap {
    inner: Body,
    tap: Arc<Mutex<Tap>>,
}

impl HttpBody for RequestTap {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.tap
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An entry waiting for its response body.
struct Pending {
    state: AppState,
    entry: Entry,
    request_body: Option<Arc<Mutex<Tap>>>,
}

impl Pending {
    fn record(mut self, response_body: Captured) {
        if let Some(tap) = self.request_body.take() {
            let captured = tap.lock().unwrap_or_else(|p| p.into_inner()).captured();
            self.entry.request_body = Captured::new(captured.bytes, captured.truncated);
        }
        self.entry.response_body = Captured::response(response_body.bytes, response_body.truncated);
        self.state.journal.record(self.entry);
    }
}

/// A response body that keeps its first bytes and records the entry once it has been handed
/// over in full (or dropped: a client that went away).
struct ResponseTap {
    inner: Body,
    tap: Tap,
    pending: Option<Pending>,
}

impl ResponseTap {
    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.record(self.tap.captured());
        }
    }
}

impl HttpBody for ResponseTap {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    self.tap.take(&data);
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(_) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseTap {
    fn drop(&mut self) {
        self.finish();
    }
}

fn is_journal_read(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && path.trim_end_matches('/') == PATH
        // The web console is not the API (and a sign-in carries a token).
        || crate::console::is_console_path(path)
}

fn header(headers: &HeaderMap, name: &HeaderName) -> Option<axum::http::HeaderValue> {
    headers.get(name).cloned()
}

/// The path and query as the journal keeps them: credential parameters replaced.
fn target_of(uri: &axum::http::Uri) -> String {
    match uri.query() {
        None => uri.path().to_owned(),
        Some(query) => match redact::redact_query(query) {
            Some(clean) => format!("{}?{clean}", uri.path()),
            None => format!("{}?{query}", uri.path()),
        },
    }
}

/// A request being recorded: what is known of it when it arrives. Dropped before its answer
/// (a fault closed the connection, or the client went away), it records the request with
/// status 0.
pub struct Recording {
    state: AppState,
    answered: bool,
    started: Instant,
    wall_micros: i64,
    offset_micros: i64,
    method: Method,
    target: String,
    slots: JournalSlots,
    request_id: Option<NotedId>,
    correlation_id: Option<NotedId>,
    request_body: Option<Arc<Mutex<Tap>>>,
}

/// A request id or correlation id of a request, as [`request_context`] settled it: sent by the
/// client, or generated (the answer carries it either way).
///
/// [`request_context`]: super::context::request_context
pub enum NotedId {
    /// Sent by the client.
    Sent(RequestId),
    /// Generated by pcq.
    Generated(uuid::Uuid),
}

impl NotedId {
    /// The id `text` as the request's context settled it: `generated` by pcq, or sent.
    pub fn new(text: &str, generated: Option<uuid::Uuid>) -> Self {
        match generated {
            Some(guid) => NotedId::Generated(guid),
            None => NotedId::Sent(RequestId::parse(text)),
        }
    }

    /// The id the answer carries.
    fn answered(self) -> RequestId {
        match self {
            NotedId::Sent(id) => id,
            NotedId::Generated(guid) => RequestId::Guid(guid),
        }
    }

    /// The id the request carried, if any.
    fn sent(self) -> Option<RequestId> {
        match self {
            NotedId::Sent(id) => Some(id),
            NotedId::Generated(_) => None,
        }
    }
}

impl Recording {
    /// Starts recording `request` (its body is tapped, the caller slot added), unless the
    /// journal is off or the request reads the journal.
    pub fn start(state: &AppState, request: &mut Request) -> Option<Recording> {
        if !state.journal.enabled() || is_journal_read(request.method(), request.uri().path()) {
            return None;
        }
        let started = Instant::now();
        let wall_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let slots = JournalSlots::default();
        request.extensions_mut().insert(slots.clone());
        let request_body = if request.body().is_end_stream() {
            None
        } else {
            let tap = Arc::new(Mutex::new(Tap::default()));
            let inner = std::mem::take(request.body_mut());
            *request.body_mut() = Body::new(RequestTap {
                inner,
                tap: tap.clone(),
            });
            Some(tap)
        };
        Some(Recording {
            state: state.clone(),
            answered: false,
            started,
            wall_micros,
            offset_micros: state.journal.clock().offset_micros(),
            method: request.method().clone(),
            target: target_of(request.uri()),
            slots,
            request_id: None,
            correlation_id: None,
            request_body,
        })
    }

    /// Notes the request's ids, which its answer carries too.
    pub fn ids(&mut self, request_id: NotedId, correlation_id: NotedId) {
        self.request_id = Some(request_id);
        self.correlation_id = Some(correlation_id);
    }

    /// Records the answer: at once when it has no body, else once its body has been handed
    /// over.
    pub fn finish(mut self, state: &AppState, response: Response) -> Response {
        self.answered = true;
        let (parts, body) = response.into_parts();
        let request_id = self.request_id.take().map(NotedId::answered);
        let correlation_id = self.correlation_id.take().map(NotedId::answered);
        let mut entry = self.entry(parts.status.as_u16());
        entry.request_id = request_id;
        entry.correlation_id = correlation_id;
        entry.fault = header(&parts.headers, &FAULT_HEADER);
        entry.replayed = parts.extensions.get::<Replayed>().is_some();
        let pending = Pending {
            state: state.clone(),
            entry,
            request_body: self.request_body.take(),
        };
        if body.is_end_stream() {
            pending.record(Captured::default());
            return Response::from_parts(parts, body);
        }
        let body = Body::new(ResponseTap {
            inner: body,
            tap: Tap::default(),
            pending: Some(pending),
        });
        Response::from_parts(parts, body)
    }
}

impl Recording {
    /// The entry of this request with `status`; the ids as the request sent them and the
    /// fault that closed its connection, for an answer to replace.
    fn entry(&mut self, status: u16) -> Entry {
        // The request (and its extensions) is gone by now, as a rule: take the slots over.
        let slots = std::mem::take(&mut self.slots);
        Entry {
            id: 0,
            wall_micros: self.wall_micros,
            offset_micros: self.offset_micros,
            method: self.method.clone(),
            target: std::mem::take(&mut self.target),
            status,
            duration_micros: self.started.elapsed().as_nanos().div_ceil(1000) as u64,
            caller: slots.0.caller.get().cloned(),
            request_id: self.request_id.take().and_then(NotedId::sent),
            correlation_id: self.correlation_id.take().and_then(NotedId::sent),
            request_body: Captured::default(),
            response_body: Captured::default(),
            fault: slots.0.reset.get().cloned(),
            replayed: false,
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let entry = self.entry(0);
        Pending {
            state: self.state.clone(),
            entry,
            request_body: self.request_body.take(),
        }
        .record(Captured::default());
    }
}

/// The query of `GET /_pcq/admin/requests`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    /// Only requests of this partner tenant (the caller's tenant).
    #[param(value_type = Option<uuid::Uuid>)]
    pub partner: Option<String>,
    /// Only requests with this method, e.g. `POST`.
    #[param(value_type = Option<String>, pattern = "^[A-Za-z]{1,16}$")]
    pub method: Option<String>,
    /// Only requests whose path starts with this, e.g. `/v1/customers`.
    #[param(value_type = Option<String>, pattern = "^/")]
    pub path: Option<String>,
    /// Only answers with this status (`404`) or class (`4xx`).
    #[param(value_type = Option<String>, pattern = "^([1-5][0-9][0-9]|[1-5][xX][xX])$")]
    pub status: Option<String>,
    /// Only entries after this entry id, read forward from it: the first `limit` of them.
    /// Pass the previous answer's `nextSince` to see only newer requests.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub since: Option<String>,
    /// Most entries answered (1 to 1000; default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// A read of the journal.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestsPage {
    /// The node answering (its public URL): each node keeps its own journal.
    pub node: String,
    /// The entries found, newest first.
    pub items: Vec<EntryView>,
    /// Whether more entries matched than `limit`: without `since` the older ones, with it the
    /// newer ones (read on from `nextSince`).
    pub truncated: bool,
    /// The `since` that reads on from this answer: only entries not seen yet, none skipped.
    pub next_since: u64,
}

/// What `DELETE /_pcq/admin/requests` removed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestsCleared {
    /// How many entries were removed.
    pub removed: usize,
}

fn journal_off() -> Error {
    ApiFault::new(
        409,
        codes::CONFLICT,
        "RequestJournalDisabled",
        "The request journal is off on this node (journal.enabled = false in its \
         configuration); turn it on and restart the node to record requests.",
    )
    .into()
}

fn bad(field: &'static str, description: String) -> Error {
    ApiFault::invalid_input(description)
        .with_param("field", field)
        .into()
}

fn shown(value: &str) -> String {
    value.chars().take(80).collect()
}

fn filter_of(query: &QueryParams) -> Result<Filter, Error> {
    let partner = query
        .get("partner")
        .map(|v| {
            pcq_core::ids::parse_guid(v).ok_or_else(|| {
                bad(
                    "partner",
                    format!(
                        "partner: '{}' is not a partner tenant id; use a GUID.",
                        shown(v)
                    ),
                )
            })
        })
        .transpose()?;
    let method = query
        .get("method")
        .map(|v| {
            let v = v.trim();
            if v.is_empty() || v.len() > 16 || !v.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(bad(
                    "method",
                    format!(
                        "method: '{}' is not an HTTP method; use e.g. GET or POST.",
                        shown(v)
                    ),
                ));
            }
            Ok(v.to_ascii_uppercase())
        })
        .transpose()?;
    let path_prefix = query
        .get("path")
        .map(|v| {
            if !v.starts_with('/') {
                return Err(bad(
                    "path",
                    format!(
                        "path: '{}' is not a path prefix; it must start with '/', e.g. \
                         /v1/customers.",
                        shown(v)
                    ),
                ));
            }
            Ok(v.to_owned())
        })
        .transpose()?;
    let status = query
        .get("status")
        .map(|v| {
            StatusFilter::parse(v).ok_or_else(|| {
                bad(
                    "status",
                    format!(
                        "status: '{}' is not a status; use a code from 100 to 599 such as 404, \
                         or a class such as 4xx.",
                        shown(v)
                    ),
                )
            })
        })
        .transpose()?;
    let since = query
        .get("since")
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                bad(
                    "since",
                    format!(
                        "since: '{}' is not an entry id; use the id of an entry (a whole number \
                         from 0), e.g. the nextSince of the previous answer.",
                        shown(v)
                    ),
                )
            })
        })
        .transpose()?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(
                    "limit",
                    format!("limit: '{}' is not between 1 and {MAX_LIMIT}.", shown(v)),
                ));
            }
        },
    };
    Ok(Filter {
        partner,
        method,
        path_prefix,
        status,
        since,
        limit,
    })
}

/// The requests this node served, newest first: method, path, status, duration, caller, ids,
/// the first 4 KiB of both bodies (credentials removed), an injected fault, an idempotent
/// replay (sandbox control). Every request is recorded but reads of the journal; the journal
/// lives in the node's memory, so with several nodes each shows what it served.
#[utoipa::path(
    get,
    path = "/_pcq/admin/requests",
    tag = "sandbox",
    params(RequestsQuery),
    responses(
        (status = 200, description = "The requests found", body = RequestsPage),
        (status = 409, description = "The journal is off on this node", body = pcq_core::fault::Envelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_requests(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    query: QueryParams,
) -> Result<Reply, Error> {
    if !state.journal.enabled() {
        return Err(journal_off());
    }
    let filter = filter_of(&query)?;
    let found = state.journal.find(&filter);
    let node = &state.pipeline.links.public_url;
    Reply::ok(&RequestsPage {
        node: node.to_string(),
        items: found
            .entries
            .iter()
            .map(|e| EntryView::new(e, node))
            .collect(),
        truncated: found.truncated,
        next_since: found.next_since,
    })
}

/// Empties this node's request journal (sandbox control). Entry ids go on from where they
/// were, so a reader following the journal misses nothing recorded afterwards.
#[utoipa::path(
    delete,
    path = "/_pcq/admin/requests",
    tag = "sandbox",
    responses(
        (status = 200, description = "What was removed", body = RequestsCleared),
        (status = 409, description = "The journal is off on this node", body = pcq_core::fault::Envelope),
    ),
    security(("bearer" = []))
)]
pub async fn clear_requests(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Reply, Error> {
    if !state.journal.enabled() {
        return Err(journal_off());
    }
    Reply::ok(&RequestsCleared {
        removed: state.journal.clear(),
    })
}
