//! `GET /_pcq/metrics`: the node's Prometheus metrics (see [`crate::telemetry::metrics`] and
//! `docs/metrics.md`), for whom `metrics.access` lets read them.
//!
//! A scrape is not throttled, not faulted and not recorded in the request journal (a scraper
//! polling every few seconds would push out the requests the journal is kept for); it is
//! counted in the HTTP series itself, like any request.

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pcq_core::ApiFault;
use tokio::sync::watch;

use super::extract::AdminCaller;
use super::fault::fault_response;
use crate::AppState;
use crate::config::MetricsAccess;
use crate::error::Error;
use crate::serve::ConnectionHandle;
use crate::store::{Op, Tx};
use crate::telemetry::metrics::Backlog;

/// The path.
pub const PATH: &str = "/_pcq/metrics";

/// How often recorded latencies are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The Prometheus text format's media type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The node's metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/_pcq/metrics",
    tag = "node",
    responses(
        (status = 200, description = "The node's metrics (Prometheus text format; docs/metrics.md lists them)", body = String, content_type = "text/plain"),
        (status = 401, description = "metrics.access = \"role\" and no valid token", body = pcq_core::fault::Envelope),
        (status = 403, description = "Not from loopback (metrics.access = \"loopback\") or no Pcq.Admin role (\"role\")", body = pcq_core::fault::Envelope),
        (status = 404, description = "Metrics are off (metrics.enabled = false or metrics.access = \"off\")", body = pcq_core::fault::Envelope),
    ),
    security((), ("bearer" = []))
)]
pub async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Result<Response, Error> {
    let access = state.config.metrics.access;
    if !state.metrics.enabled() || access == MetricsAccess::Off {
        return Ok(fault_response(&ApiFault::route_not_found(
            parts.method.as_str(),
            parts.uri.path(),
        )));
    }
    match access {
        MetricsAccess::Open | MetricsAccess::Off => {}
        MetricsAccess::Loopback => {
            let peer = parts
                .extensions
                .get::<ConnectionHandle>()
                .map(ConnectionHandle::peer);
            if !peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) {
                return Err(ApiFault::new(
                    403,
                    pcq_core::fault::codes::ROLE_NOT_PERMITTED,
                    "Forbidden",
                    "The metrics of this node are served to clients on its own machine only \
                     (metrics.access = \"loopback\")."
                        .to_owned(),
                )
                .into());
            }
        }
        MetricsAccess::Role => {
            let _admin =
                <AdminCaller as FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
                    .await?;
        }
    }
    let backlog = backlog(&state).await?;
    let text = state.metrics.render(backlog).unwrap_or_default();
    let mut response = (StatusCode::OK, text).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(response)
}

/// What the store's gauges show now.
pub(crate) async fn backlog(state: &AppState) -> Result<Backlog, Error> {
    let pipeline = &state.pipeline;
    let (vetting_pending, oldest, outbox_depth) = pipeline.read(ReadBacklog).await?;
    let age = oldest.map_or(0, |t| pipeline.now().as_micros() - t.as_micros());
    Ok(Backlog {
        vetting_pending,
        vetting_oldest: Duration::from_micros(u64::try_from(age).unwrap_or(0)),
        outbox_depth,
        pool: pipeline.store.pool_state(),
    })
}

#[derive(Clone)]
struct ReadBacklog;

impl Op for ReadBacklog {
    type Output = (i64, Option<pcq_core::time::Timestamp>, i64);

    async fn run(self, tx: &mut Tx<'_>) -> Result<Self::Output, Error> {
        let (pending, oldest) = tx.vetting_backlog().await?;
        let outbox = tx.outbox_depth().await?;
        Ok((pending, oldest, outbox))
    }
}

/// Folds recorded latencies into their buckets every few seconds until `stop`.
pub async fn keep_up(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => state.metrics.upkeep(),
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
