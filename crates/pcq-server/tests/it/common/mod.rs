//! The harness the test modules share: a real pcq node on 127.0.0.1:0 over a fresh data
//! directory (and, on PostgreSQL, a schema of its own), driven over HTTP, and readers of its
//! answers. What pcq's own tests use too is in `pcq-test-support`.

mod answers;
mod app;
mod backend;

pub use answers::{assert_fault, ok, redact_dates, status_json};
pub use app::{AUDIENCE, Partner, TestApp, fixture_signing_key, test_config};
pub(crate) use backend::backend_tests;
pub use backend::{Backend, backend, migrated_schema, on_backend, with_backend};
