//! What the test suites of pcq share, independent of pcq's own crates:
//!
//! - [`pg`]: the PostgreSQL server named by `PCQ_TEST_DATABASE_URL`, a schema of its own per
//!   test, and the message of a test skipped without it;
//! - [`process`]: `pcq serve` as a child process and what its banner says, `pcq token`;
//! - [`http`]: a test HTTP client and one-line calls;
//! - [`receiver`]: a webhook receiver on loopback that records what it gets.

pub mod http;
pub mod pg;
pub mod process;
pub mod receiver;

pub use http::{call, client, count_customers, json, list_customers};
pub use pg::{PgSchema, database_or_skip, test_database_url};
pub use process::{Key, Pcq, Server, output_of};
pub use receiver::{Received, Receiver};
