//! Seek-based paging, as Partner Center collections page: a `size` parameter and a
//! continuation token in the `MS-ContinuationToken` header, offered in `links.next`.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pcq_core::ApiFault;
use pcq_core::wire::{Attributes, Collection, Link, LinkHeader, Links};

use super::extract::QueryParams;
use crate::config::PagingConfig;

/// Header carrying a continuation token.
pub const CONTINUATION_HEADER: &str = "MS-ContinuationToken";

/// The continuation token header of a paged list, as an OpenAPI parameter
/// (`params(.., ContinuationToken)`); [`position`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(names("MS-ContinuationToken"), parameter_in = Header)]
pub struct ContinuationToken(
    /// Continuation token from the previous page
    pub Option<String>,
);

/// The row limit that reads a page of `size` and tells whether another follows: one more.
pub fn limit(size: u32) -> i64 {
    i64::from(size) + 1
}

/// A page of rows read with [`limit`]: the first `size` rendered, and `next` pointing after
/// the last of them (by its `position`) when another row followed.
pub fn page<R, T>(
    mut rows: Vec<R>,
    size: u32,
    self_uri: String,
    position: impl Fn(&R) -> String,
    render: impl FnMut(&R) -> T,
) -> Collection<T> {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let next = more.then(|| rows.last().map(position)).flatten();
    collection(rows.iter().map(render).collect(), self_uri, next)
}

/// The `size` parameter, checked against the configured limits.
pub fn page_size(query: &QueryParams, paging: &PagingConfig) -> Result<u32, ApiFault> {
    match query.get("size") {
        None => Ok(paging.default_size),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=paging.max_size).contains(n))
            .ok_or_else(|| {
                ApiFault::invalid_input(format!(
                    "The size '{}' is not valid; use an integer from 1 to {}.",
                    raw.chars().take(40).collect::<String>(),
                    paging.max_size
                ))
                .with_param("field", "size")
            }),
    }
}

/// A continuation token for a position.
pub fn encode(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("pcq1:{position}"))
}

/// The position a request's continuation token stands for; `None` for the first page.
pub fn position(headers: &HeaderMap) -> Result<Option<String>, ApiFault> {
    let Some(value) = headers.get(CONTINUATION_HEADER) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .map_err(|_| ApiFault::invalid_continuation_token())?
        .trim();
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("pcq1:").map(str::to_owned))
        .map(Some)
        .ok_or_else(ApiFault::invalid_continuation_token)
}

/// A numeric position (an insertion sequence) from a request's continuation token; 0 for the
/// first page.
pub fn seq_position(headers: &HeaderMap) -> Result<i64, ApiFault> {
    match position(headers)? {
        None => Ok(0),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(ApiFault::invalid_continuation_token),
    }
}

/// The `self` URI of a page: the path and the query as received, without `seekOperation`.
pub fn self_uri(path: &str, raw_query: &str) -> String {
    let kept: Vec<&str> = raw_query
        .split('&')
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("seekoperation="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// A page in the Collection shape: `next` (and `continuationToken`) when `next_position` is
/// given.
pub fn collection<T>(
    items: Vec<T>,
    self_uri: String,
    next_position: Option<String>,
) -> Collection<T> {
    let continuation = next_position.as_deref().map(encode);
    let separator = if self_uri.contains('?') { '&' } else { '?' };
    Collection {
        total_count: items.len() as u64,
        items,
        links: Links {
            next: continuation.as_ref().map(|token| Link {
                uri: format!("{self_uri}{separator}seekOperation=Next"),
                method: "GET".to_owned(),
                headers: vec![LinkHeader {
                    key: CONTINUATION_HEADER.to_owned(),
                    value: token.clone(),
                }],
            }),
            self_link: Link::get(self_uri),
        },
        continuation_token: continuation,
        attributes: Attributes::of("Collection"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTINUATION_HEADER, token.parse().unwrap());
        h
    }

    #[test]
    fn self_uris_drop_the_seek_operation() {
        assert_eq!(self_uri("/v1/x", ""), "/v1/x");
        assert_eq!(
            self_uri("/v1/x", "size=3&seekOperation=Next"),
            "/v1/x?size=3"
        );
        assert_eq!(self_uri("/v1/x", "SeekOperation=Next"), "/v1/x");
    }

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        assert_eq!(seq_position(&headers(&encode("42"))).unwrap(), 42);
        assert_eq!(seq_position(&HeaderMap::new()).unwrap(), 0);
        for junk in ["abc", "cGNxMTotMQ", "!!!"] {
            assert!(seq_position(&headers(junk)).is_err(), "{junk}");
        }
    }
}
