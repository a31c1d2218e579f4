//! The one error type of the client.

use std::fmt;
use std::time::Duration;

use pcq_core::ApiFault;
use reqwest::StatusCode;

/// What a failed call is known by: the ids it was sent with (or answered with).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallIds {
    /// The `MS-RequestId` of the call (the same on every attempt).
    pub request_id: Option<String>,
    /// The `MS-CorrelationId` of the call.
    pub correlation_id: Option<String>,
}

impl fmt::Display for CallIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.request_id, &self.correlation_id) {
            (Some(r), Some(c)) => write!(f, " [request id {r}, correlation id {c}]"),
            (Some(r), None) => write!(f, " [request id {r}]"),
            (None, Some(c)) => write!(f, " [correlation id {c}]"),
            (None, None) => Ok(()),
        }
    }
}

/// Everything a call of the client can fail with.
///
/// [`Error::status`], [`Error::fault`], [`Error::request_id`] and friends read the common
/// parts whatever the case; `Display` is meant for people, e.g.
/// `404 Not Found (code 60003): The customer … was not found. [request id …]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status (other than 429).
    #[error("{}{ids}", describe_answer(*status, fault.as_deref(), body))]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The Partner Center error envelope, when the body was one.
        fault: Option<Box<ApiFault>>,
        /// The body, when it was not an envelope (shortened).
        body: String,
        /// The call's ids.
        ids: CallIds,
    },
    /// The service throttled the call (429) and the retry policy gave up or does not retry
    /// throttled calls.
    #[error(
        "{}{}{ids}",
        describe_answer(StatusCode::TOO_MANY_REQUESTS, fault.as_deref(), ""),
        retry_after.map(|d| format!(" (retry after {} s)", d.as_secs_f64())).unwrap_or_default()
    )]
    Throttled {
        /// The answer's `Retry-After`.
        retry_after: Option<Duration>,
        /// The error envelope, when the body was one.
        fault: Option<Box<ApiFault>>,
        /// The call's ids.
        ids: CallIds,
    },
    /// The request did not get an answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error: {source}{ids}")]
    Transport {
        /// What failed.
        #[source]
        source: reqwest::Error,
        /// The call's ids.
        ids: CallIds,
    },
    /// The answer was not what the operation expects.
    #[error("cannot read the {status} answer: {source}{ids}")]
    Decode {
        /// The answer's status.
        status: StatusCode,
        /// What did not fit.
        #[source]
        source: serde_json::Error,
        /// The call's ids.
        ids: CallIds,
    },
    /// A token provider could not get a token.
    #[error("cannot get an access token: {message}")]
    Token {
        /// Why, including the token endpoint's `error` and `error_description` when it sent them.
        message: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The client was set up or used wrongly (a base URL that is not one, a bad header value).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A local file could not be read (e.g. a state document to load).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// `404 Not Found (code 60003): description` or `502 Bad Gateway: body`.
fn describe_answer(status: StatusCode, fault: Option<&ApiFault>, body: &str) -> String {
    let mut text = status.to_string();
    match fault {
        Some(f) => {
            text.push_str(&format!(" (code {}): {}", f.code, f.description));
        }
        None if !body.trim().is_empty() => {
            text.push_str(": ");
            text.push_str(body.trim());
        }
        None => {}
    }
    text
}

impl Error {
    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Throttled { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Error::Transport { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The decoded error envelope, when the answer carried one.
    pub fn fault(&self) -> Option<&ApiFault> {
        match self {
            Error::Api { fault, .. } | Error::Throttled { fault, .. } => fault.as_deref(),
            _ => None,
        }
    }

    /// The `MS-RequestId` of the failed call.
    pub fn request_id(&self) -> Option<&str> {
        self.ids().and_then(|i| i.request_id.as_deref())
    }

    /// The `MS-CorrelationId` of the failed call.
    pub fn correlation_id(&self) -> Option<&str> {
        self.ids().and_then(|i| i.correlation_id.as_deref())
    }

    /// Whether the service throttled the call (429).
    pub fn is_throttled(&self) -> bool {
        matches!(self, Error::Throttled { .. })
    }

    /// How long the service asked to wait (`Retry-After` of a 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn ids(&self) -> Option<&CallIds> {
        match self {
            Error::Api { ids, .. }
            | Error::Throttled { ids, .. }
            | Error::Transport { ids, .. }
            | Error::Decode { ids, .. } => Some(ids),
            _ => None,
        }
    }

    /// A token-provider error with a message only.
    pub fn token(message: impl Into<String>) -> Self {
        Error::Token {
            message: message.into(),
            source: None,
        }
    }

    /// The error of an error answer: its status, its body (an envelope or not) and its ids.
    pub(crate) fn from_answer(
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        ids: CallIds,
    ) -> Self {
        let fault = serde_json::from_slice::<ApiFault>(body).ok().map(|mut f| {
            f.status = status.as_u16();
            Box::new(f)
        });
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Error::Throttled {
                retry_after,
                fault,
                ids,
            };
        }
        let body = if fault.is_some() {
            String::new()
        } else {
            shorten(&String::from_utf8_lossy(body), 500)
        };
        Error::Api {
            status,
            fault,
            body,
            ids,
        }
    }
}

/// At most `max` characters of `text`, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> CallIds {
        CallIds {
            request_id: Some("r-1".into()),
            correlation_id: Some("c-1".into()),
        }
    }

    #[test]
    fn an_envelope_is_decoded_and_shown_with_its_code_and_ids() {
        let body = br#"{"code": 60003, "description": "The customer was not found.",
            "message": "The customer was not found.", "errorName": "CustomerNotFound",
            "isRetryable": false, "parameters": {}, "data": [], "source": "pcq"}"#;
        let e = Error::from_answer(StatusCode::NOT_FOUND, body, None, ids());
        assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
        let fault = e.fault().unwrap();
        assert_eq!((fault.code, fault.status), (60003, 404));
        assert_eq!(e.request_id(), Some("r-1"));
        assert_eq!(e.correlation_id(), Some("c-1"));
        assert!(!e.is_throttled());
        assert_eq!(
            e.to_string(),
            "404 Not Found (code 60003): The customer was not found. \
             [request id r-1, correlation id c-1]"
        );
    }

    #[test]
    fn a_body_that_is_no_envelope_is_kept_shortened() {
        let long = "x".repeat(600);
        let e = Error::from_answer(StatusCode::BAD_GATEWAY, long.as_bytes(), None, ids());
        assert!(e.fault().is_none());
        let text = e.to_string();
        assert!(text.starts_with("502 Bad Gateway: xxx"), "{text}");
        assert!(text.contains("…"), "{text}");
    }

    #[test]
    fn a_429_is_its_own_case_with_its_retry_after() {
        let e = Error::from_answer(
            StatusCode::TOO_MANY_REQUESTS,
            b"{\"statusCode\": 429}",
            Some(Duration::from_secs(57)),
            ids(),
        );
        assert!(e.is_throttled());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(57)));
        assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert!(e.to_string().contains("retry after 57 s"), "{e}");
    }
}
