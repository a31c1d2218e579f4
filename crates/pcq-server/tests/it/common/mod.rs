//! The harness the test modules share: a real pcq node on 127.0.0.1:0 over a fresh data
//! directory (and, on PostgreSQL, a schema of its own), driven over HTTP, and readers of its
//! answers. What pcq's own tests use too is in `pcq-test-support`.

mod answers;
mod app;
mod backend;

pub use answers::{assert_fault, ok, redact_dates, status_json};
pub use app::{AUDIENCE, Partner, TestApp, fixture_signing_key, test_config};
pub(crate) use backend::backend_tests;
pub use backend::{Backend, backend, backend_schema, on_backend, with_backend};

/// The body of a GovernmentCommunityCloud request with validation code `code`.
pub fn gcc(code: &str) -> serde_json::Value {
    serde_json::json!({"qualification": "GovernmentCommunityCloud", "validationCode": code})
}

/// Percent-encodes everything but unreserved URI characters (RFC 3986), for query values and
/// path segments.
pub fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
