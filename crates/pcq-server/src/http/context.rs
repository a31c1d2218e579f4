//! Per-request identifiers: `MS-CorrelationId`, `MS-RequestId` and `MS-CV`, echoed (or
//! generated) on every response, and the request span that carries them into the logs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcq_core::ApiFault;
use tracing::Instrument;
use uuid::Uuid;

use super::fault::fault_response;
use super::journal::NotedId;
use crate::AppState;
use crate::service::ClientWrite;
use crate::telemetry::metrics::UNMATCHED;

/// `MS-CorrelationId`.
pub static CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
/// `MS-RequestId`.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
/// `MS-CV` (correlation vector).
pub static CV: HeaderName = HeaderName::from_static("ms-cv");

/// Longest accepted `MS-RequestId` / `MS-CorrelationId`.
pub const MAX_ID_CHARS: usize = 128;

/// The identifiers of the request being served.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `MS-CorrelationId`, sent or generated.
    pub correlation_id: String,
    /// `MS-RequestId`, sent or generated.
    pub request_id: String,
    /// Whether the client sent the `MS-RequestId` (only then is it an idempotency key).
    pub request_id_sent: bool,
    /// The `MS-CV` returned.
    pub cv: String,
}

impl RequestContext {
    /// A client's write of `partner` to `route` (its ids in canonical form), replayable under
    /// the `MS-RequestId` the client sent, if any.
    pub fn client_write(
        &self,
        partner: Uuid,
        method: &'static str,
        route: String,
        query: &str,
        body: &[u8],
    ) -> ClientWrite {
        let sent = self.request_id_sent.then_some(self.request_id.as_str());
        ClientWrite::new(partner, sent, method, route, query, body)
    }
}

/// The partner tenant a request was authenticated as, noted for the access log.
#[derive(Debug, Clone, Default)]
pub struct PartnerNote(pub std::sync::Arc<std::sync::OnceLock<uuid::Uuid>>);

enum Id {
    Absent,
    Valid(String),
    Invalid(&'static str),
}

fn read_id(headers: &HeaderMap, name: &HeaderName) -> Id {
    let Some(value) = headers.get(name) else {
        return Id::Absent;
    };
    let Ok(text) = value.to_str() else {
        return Id::Invalid("must be visible ASCII");
    };
    let text = text.trim();
    if text.is_empty() {
        Id::Absent
    } else if text.chars().count() > MAX_ID_CHARS {
        Id::Invalid("must be at most 128 characters")
    } else {
        Id::Valid(text.to_owned())
    }
}

/// The id sent, or a new GUID (then given as such too, for the journal to keep it without
/// parsing it back).
fn sent_or_new(sent: Option<String>) -> (String, Option<Uuid>) {
    match sent {
        Some(id) => (id, None),
        None => {
            let id = Uuid::new_v4();
            (id.to_string(), Some(id))
        }
    }
}

fn new_cv() -> String {
    format!("{}.0", STANDARD.encode(&Uuid::new_v4().as_bytes()[..12]))
}

/// Reads or generates the identifiers, runs the request inside a span that carries them, and
/// puts them on the response; records the request and its answer in the node's request journal.
pub async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let in_flight = state.metrics.request_started();
    let started = Instant::now();
    let method = request.method().clone();
    // Scrapes are not journalled (see `http::metrics`).
    let recording = if request.uri().path() == super::metrics::PATH {
        None
    } else {
        super::journal::Recording::start(&state, &mut request)
    };
    let headers = request.headers();
    let mut problem = None;
    let mut take = |name: &'static str, id: Id| match id {
        Id::Valid(v) => Some(v),
        Id::Absent => None,
        Id::Invalid(why) => {
            problem.get_or_insert(format!("The {name} header {why}; use a GUID."));
            None
        }
    };
    let correlation = take("MS-CorrelationId", read_id(headers, &CORRELATION_ID));
    let sent_request_id = take("MS-RequestId", read_id(headers, &REQUEST_ID));
    let cv = match read_id(headers, &CV) {
        Id::Valid(v) if v.len() < 120 => format!("{v}.0"),
        _ => new_cv(),
    };
    let access_log = state.config.log.access_on();
    let partner = access_log.then(PartnerNote::default);
    let (correlation_id, correlation_generated) = sent_or_new(correlation);
    let request_id_sent = sent_request_id.is_some();
    let (request_id, request_generated) = sent_or_new(sent_request_id);
    let mut recording = recording;
    if let Some(recording) = &mut recording {
        recording.ids(
            NotedId::new(&request_id, request_generated),
            NotedId::new(&correlation_id, correlation_generated),
        );
    }
    let context = RequestContext {
        correlation_id,
        request_id_sent,
        request_id,
        cv,
    };

    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        correlation_id = %context.correlation_id,
        request_id = %context.request_id,
        partner_tenant = tracing::field::Empty,
    );
    let mut response = match problem {
        Some(description) => fault_response(&ApiFault::invalid_input(description)),
        None => {
            request.extensions_mut().insert(context.clone());
            if let Some(partner) = &partner {
                request.extensions_mut().insert(partner.clone());
            }
            next.run(request).instrument(span.clone()).await
        }
    };
    let status = response.status();
    let elapsed = started.elapsed();
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    state
        .metrics
        .request_served(route, &method, status.as_u16(), elapsed);
    drop(in_flight);
    span.in_scope(|| {
        let elapsed_us = elapsed.as_micros() as u64;
        if status.is_server_error() {
            tracing::error!(
                route,
                status = status.as_u16(),
                elapsed_us,
                "request failed"
            );
        } else if access_log {
            let partner = partner.as_ref().and_then(|p| p.0.get());
            // The access log: the span adds the ids, the path and the partner; the fields
            // repeat what a log collector filters by most.
            tracing::info!(
                target: "pcq::access",
                method = method.as_str(),
                route,
                status = status.as_u16(),
                elapsed_us,
                correlation_id = %context.correlation_id,
                request_id = %context.request_id,
                partner_tenant = partner.map(tracing::field::display),
                "request served"
            );
        } else {
            tracing::debug!(
                route,
                status = status.as_u16(),
                elapsed_us,
                "request served"
            );
        }
    });

    let headers = response.headers_mut();
    for (name, value) in [
        (&CORRELATION_ID, &context.correlation_id),
        (&REQUEST_ID, &context.request_id),
        (&CV, &context.cv),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), v);
        }
    }
    match recording {
        Some(recording) => recording.finish(&state, response),
        None => response,
    }
}
