//! Request limits checked in the HTTP layer: the size of the request head and the nesting depth
//! of JSON bodies. (Body size, time per request and the connection limits are set where the
//! router and the connection loop are built.)

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use pcq_core::ApiFault;

use super::fault::fault_response;
use crate::AppState;

/// The size of a request head as HTTP/1.1 sends it: the request line, each header as
/// `name: value` with its line end, and the empty line.
pub fn head_size(request: &Request) -> usize {
    let uri = request.uri();
    let target = uri
        .path_and_query()
        .map_or(uri.path().len(), |pq| pq.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2
}

/// Answers 431 with the envelope when the request head is larger than `limits.max_header_bytes`
/// (heads larger than twice that never get this far: the connection layer refuses them).
pub async fn check_head_size(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.limits.max_header_bytes;
    let size = head_size(&request);
    if size > limit {
        return fault_response(&ApiFault::headers_too_large(size, limit));
    }
    next.run(request).await
}

/// Refuses a body whose objects and arrays nest deeper than `limit`, before it is parsed.
///
/// The scan counts brackets outside strings (JSON's double-quoted ones and the single-quoted
/// ones of the lenient reader) and stops at the first level past the limit, so it costs one pass
/// at most and never recurses.
pub fn check_json_depth(raw: &[u8], limit: usize) -> Result<(), ApiFault> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for &byte in raw {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == q {
                quote = None;
            }
            continue;
        }
        match byte {
            b'"' | b'\'' => quote = Some(byte),
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(ApiFault::json_too_deep(limit));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Answers 408 when a request takes longer than `limits.request_timeout_seconds` to be
/// answered, a slow body included. A state load (`PUT /_pcq/admin/state`) is exempt: its body
/// may be up to `limits.max_state_bytes` and its load a long transaction, bounded by the size
/// limit instead.
pub async fn request_timeout(
    State(timeout): State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    if request.uri().path() == super::state::STATE_PATH {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(check_json_depth(br#"{"a": [1, {"b": 2}]}"#, 3).is_ok());
        let fault = check_json_depth(br#"{"a": [1, {"b": 2}]}"#, 2).unwrap_err();
        assert_eq!((fault.status, fault.code), (400, 800002));
        assert_eq!(fault.error_name, "JsonNestingTooDeep");
        assert!(fault.description.contains("2 levels"));
        // Brackets inside strings, with escaped quotes, do not count.
        assert!(check_json_depth(br#"{"a": "[[[[\"[[[["}"#, 1).is_ok());
        assert!(check_json_depth(br#"{'a': '[[[['}"#, 1).is_ok());
        // Closing brackets never make the depth negative.
        assert!(check_json_depth(b"]]]]{}", 1).is_ok());
    }

    #[test]
    fn very_deep_bodies_are_refused_without_recursion() {
        let deep = "[".repeat(10_000_000);
        assert!(check_json_depth(deep.as_bytes(), 64).is_err());
        let nested = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(check_json_depth(nested.as_bytes(), 64).is_ok());
        assert!(check_json_depth(nested.as_bytes(), 63).is_err());
    }
}
