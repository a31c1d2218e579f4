//! What the benchmark's helper servers share: serving a router on the address given as the
//! first argument and saying where it listens.

use std::io::Write as _;

use anyhow::Context as _;
use axum::Router;

/// Serves `router` on `runtime`, on the address in the first argument (default
/// `127.0.0.1:0`), after printing `NAME listening on http://ADDRESS` once it accepts
/// connections.
pub fn serve(name: &str, runtime: tokio::runtime::Runtime, router: Router) -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let mut out = std::io::stdout();
        writeln!(out, "{name} listening on http://{bound}")
            .and_then(|()| out.flush())
            .context("printing the address")?;
        axum::serve(listener, router).await.context("serving HTTP")
    })
}
