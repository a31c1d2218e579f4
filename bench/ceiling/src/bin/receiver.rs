//! `pcq-bench-receiver`: the webhook receiver of `bench/run`'s `async` scenario.
//!
//! Answers every POST with 200 at once (reading the body, checking nothing) and counts them,
//! keeping the time the last one arrived. `GET /count` answers `COUNT LAST` on one line: the
//! posts received so far and when the last arrived, in microseconds since the Unix epoch (0
//! before the first).
//!
//! Usage: `pcq-bench-receiver [ADDRESS]` (default `127.0.0.1:0`); it prints
//! `pcq-bench-receiver listening on http://ADDRESS` once it accepts connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    last_micros: AtomicU64,
}

fn router(counts: Arc<Counts>) -> Router {
    Router::new()
        .route(
            "/count",
            get(|State(counts): State<Arc<Counts>>| async move {
                format!(
                    "{} {}\n",
                    counts.received.load(Ordering::SeqCst),
                    counts.last_micros.load(Ordering::SeqCst)
                )
            }),
        )
        .route(
            "/{*path}",
            post(
                |State(counts): State<Arc<Counts>>, _body: Bytes| async move {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                    counts.last_micros.fetch_max(now, Ordering::SeqCst);
                    counts.received.fetch_add(1, Ordering::SeqCst);
                    "ok"
                },
            ),
        )
        .with_state(counts)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    pcq_ceiling::serve(
        "pcq-bench-receiver",
        runtime,
        router(Arc::new(Counts::default())),
    )
}
