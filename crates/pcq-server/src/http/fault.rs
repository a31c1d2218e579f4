//! Turning failures into Partner Center error envelopes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pcq_core::ApiFault;

use crate::AppState;
use crate::error::Error;
use crate::store::{Reply, StoreError};

/// Marks a response whose body is already an envelope (or a success), so the safety net
/// leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Fault(fault) => fault_response(&fault),
            Error::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "store unavailable");
                fault_response(&ApiFault::service_unavailable(match e {
                    StoreError::Busy => "the database is busy with conflicting writes",
                    _ => "the database cannot be reached",
                }))
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "store failure");
                fault_response(&ApiFault::unexpected())
            }
            Error::Internal(why) => {
                tracing::error!(error = %why, "internal failure");
                fault_response(&ApiFault::unexpected())
            }
        }
    }
}

/// Marks a response that replays the stored answer of an earlier request (idempotent retry),
/// for the request journal.
#[derive(Debug, Clone, Copy)]
pub struct Replayed;

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if status == StatusCode::NO_CONTENT {
            let mut response = status.into_response();
            response.extensions_mut().insert(Rendered);
            response
        } else {
            json_response(status, self.body)
        };
        if self.replayed {
            response.extensions_mut().insert(Replayed);
        }
        response
    }
}

/// The response for a fault: its status, the envelope, and `WWW-Authenticate` or `Allow`
/// where the status calls for one.
pub fn fault_response(fault: &ApiFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // An envelope is strings, numbers and a string map: it always encodes.
    let body = serde_json::to_vec(fault).expect("a fault envelope encodes");
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: no error code when no credentials were sent, invalid_request for a malformed
        // Authorization header, invalid_token for a token that was rejected.
        let error = match (fault.code, fault.error_name.as_ref()) {
            (pcq_core::fault::codes::TOKEN_MISSING, _) => None,
            (_, "InvalidAuthorizationHeader") => Some("invalid_request"),
            _ => Some("invalid_token"),
        };
        let challenge = error
            .map(|error| {
                format!(
                    "Bearer realm=\"pcq\", error=\"{error}\", error_description=\"{}\"",
                    fault.description.replace(['"', '\\'], "'")
                )
            })
            .and_then(|c| HeaderValue::from_str(&c).ok())
            .unwrap_or(HeaderValue::from_static("Bearer realm=\"pcq\""));
        headers.insert(header::WWW_AUTHENTICATE, challenge);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(value) = fault
            .parameters
            .get("allow")
            .and_then(|a| a.as_str())
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, value);
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS && !headers.contains_key(header::RETRY_AFTER) {
        // Always present (the .NET SDK fails on a 429 without it), in whole seconds, at least 1.
        let seconds = fault
            .parameters
            .get("retryAfterSeconds")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
            .max(1);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A JSON response marked as rendered.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.extensions_mut().insert(Rendered);
    response
}

/// Fallback for paths that match no route.
pub async fn route_not_found(method: Method, uri: axum::http::Uri) -> Response {
    fault_response(&ApiFault::route_not_found(method.as_str(), uri.path()))
}

/// Safety net: any error response not produced by pcq's own rendering (from axum itself or a
/// tower layer: 405, 408, 413, a caught panic, …) is replaced by the envelope for its status.
pub async fn ensure_envelope(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 || response.extensions().get::<Rendered>().is_some() {
        return response;
    }
    let fault = match status {
        StatusCode::NOT_FOUND => ApiFault::route_not_found(method.as_str(), &path),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = response
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            ApiFault::method_not_allowed(method.as_str(), &path, &allow)
        }
        StatusCode::REQUEST_TIMEOUT => {
            ApiFault::request_timeout(state.config.limits.request_timeout())
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiFault::payload_too_large(state.config.limits.max_body_bytes)
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiFault::unsupported_media_type(""),
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), %path, "internal failure");
            ApiFault::unexpected()
        }
        s => ApiFault::new(
            s.as_u16(),
            pcq_core::fault::codes::INVALID_INPUT,
            "InvalidRequest",
            format!(
                "The request was rejected: {}.",
                s.canonical_reason().unwrap_or("bad request")
            ),
        ),
    };
    let mut rendered = fault_response(&fault);
    if let Some(retry_after) = response.headers().get(header::RETRY_AFTER) {
        rendered
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after.clone());
    }
    rendered
}
