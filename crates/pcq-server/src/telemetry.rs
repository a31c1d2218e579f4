//! Logging to standard error, as text or JSON, with the request span (correlation id, request
//! id, path and, once authenticated, the partner tenant) on every line, and an access line per
//! request (`log.access`). Tokens and bodies never reach a log: the span holds the path without
//! its query, and no line carries a header or a body.

pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

fn filter(directives: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // PostgreSQL's notices ("relation … already exists, skipping") are not news, unless sqlx's
    // logs are asked for explicitly.
    if !directives.contains("sqlx") {
        filter = filter.add_directive(
            "sqlx::postgres::notice=warn"
                .parse()
                .expect("a valid directive"),
        );
    }
    filter
}

/// The JSON subscriber `log.format = "json"` installs, writing to `writer` (tests capture its
/// lines): one object per line, with time, level, target, message and the event's fields at
/// the top level, the request span's fields under `"span"`.
pub fn json_subscriber<W>(directives: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter(directives))
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .finish()
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`.
pub fn init(config: &LogConfig) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.level.clone());
    let _ = match config.format {
        LogFormat::Json => json_subscriber(&directives, std::io::stderr)
            .try_init()
            .map_err(|e| e.to_string()),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter(&directives))
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init()
            .map_err(|e| e.to_string()),
    };
}
