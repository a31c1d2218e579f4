//! pcq-server's integration tests, in one test binary: each module is one area of the service,
//! `common` is the harness they share (a real node on 127.0.0.1:0, driven over HTTP).
//!
//! Run one area with `cargo test -p pcq-server --test it -- rules::`.

mod common;

mod audit;
mod auth;
mod console;
mod customer_limits;
mod faults;
mod golden;
mod http_errors;
mod http_fuzz;
mod idempotency;
mod identity_providers;
mod isolation;
mod journal;
mod limits;
mod load;
mod metrics;
mod openapi;
mod paging;
mod reset;
mod retention;
mod review;
mod rules;
mod state;
mod store;
mod upgrade;
mod vetting;
mod webhooks;
