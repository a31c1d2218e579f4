//! The node's Prometheus metrics (`GET /_pcq/metrics`; `docs/metrics.md` lists the series).
//!
//! Every [`Application`](crate::Application) keeps its own recorder: none is installed as the
//! process's global one, so that several nodes in one process (the tests) count apart, and a
//! scrape shows exactly what its node did. Handles are registered once, when the node starts
//! (or, for the HTTP series, the first time a route, method and status combination is seen),
//! so counting a request takes a read lock, a short search and two atomic updates, without
//! allocating. With `metrics.enabled = false` every handle is a no-op and nothing is kept.
//!
//! Gauges that need the store (pending vetting jobs, the oldest one's age, the webhook outbox,
//! PostgreSQL's pool) are read when scraped, never per request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use ::metrics::{SharedString, Unit};
use axum::http::Method;
use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use pcq_core::VettingStatus;

use crate::store::StoreMeters;
use crate::store::webhooks::DeliveryStatus;

static META: Metadata<'static> = Metadata::new("pcq", Level::INFO, Some(module_path!()));

/// Latency buckets, in seconds.
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Write batch size buckets.
const BATCH: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Route label of requests no route answered (unknown paths, and requests refused before
/// routing: malformed ids, oversized heads, faults injected ahead of the router).
pub const UNMATCHED: &str = "unmatched";

/// One series' name, kind, unit and meaning, for the `# HELP` lines.
struct Described {
    name: &'static str,
    kind: Kind,
    unit: Option<Unit>,
    help: &'static str,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const fn series(name: &'static str, kind: Kind, help: &'static str) -> Described {
    Described {
        name,
        kind,
        unit: None,
        help,
    }
}

const DESCRIBED: &[Described] = &[
    series(
        "pcq_build_info",
        Kind::Gauge,
        "Always 1; the version is a label.",
    ),
    series(
        "pcq_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route template, method and status.",
    ),
    series(
        "pcq_http_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's arrival to its answer's head, by route template, method and status.",
    ),
    series(
        "pcq_http_requests_in_flight",
        Kind::Gauge,
        "Requests being served.",
    ),
    series(
        "pcq_store_write_batch_size",
        Kind::Histogram,
        "Writes committed together in one transaction (SQLite's group commit; 1 on PostgreSQL).",
    ),
    series(
        "pcq_store_commit_duration_seconds",
        Kind::Histogram,
        "Time a COMMIT takes (on SQLite, the fsync of the write-ahead log).",
    ),
    series(
        "pcq_store_write_queued_seconds",
        Kind::Histogram,
        "Time a write waits before it runs: for SQLite's writer thread, for a PostgreSQL connection.",
    ),
    series(
        "pcq_store_read_duration_seconds",
        Kind::Histogram,
        "Time a read transaction takes, waiting for its connection included.",
    ),
    series(
        "pcq_store_conflict_reruns_total",
        Kind::Counter,
        "PostgreSQL writes run again after a serialization conflict with a concurrent one.",
    ),
    series(
        "pcq_store_write_round_trips_total",
        Kind::Counter,
        "Round trips to PostgreSQL of write transactions, BEGIN and COMMIT included (per write: \
         divide by the count of pcq_store_write_batch_size).",
    ),
    series(
        "pcq_store_pool_connections",
        Kind::Gauge,
        "PostgreSQL pool connections, by state (idle, used), when scraped.",
    ),
    series(
        "pcq_vetting_jobs_pending",
        Kind::Gauge,
        "Qualifications waiting for a vetting decision, when scraped.",
    ),
    series(
        "pcq_vetting_oldest_pending_age_seconds",
        Kind::Gauge,
        "Age of the oldest pending vetting job on the sandbox clock (0 when none), when scraped.",
    ),
    series(
        "pcq_vetting_jobs_claimed_total",
        Kind::Counter,
        "Due vetting jobs the worker took up.",
    ),
    series(
        "pcq_vetting_jobs_decided_total",
        Kind::Counter,
        "Vetting decisions the worker made, by outcome (approved, denied).",
    ),
    series(
        "pcq_webhook_outbox_depth",
        Kind::Gauge,
        "Webhook deliveries still pending, when scraped.",
    ),
    series(
        "pcq_webhook_attempts_total",
        Kind::Counter,
        "Webhook delivery attempts recorded, by result (delivered, retry, failed).",
    ),
    series(
        "pcq_webhook_deliveries_total",
        Kind::Counter,
        "Webhook deliveries finished, by result (delivered, failed).",
    ),
    series(
        "pcq_retention_pruned_total",
        Kind::Counter,
        "Expired records deleted by retention, by kind (idempotency, webhook_deliveries, webhook_attempts, audit_records).",
    ),
    series(
        "pcq_throttle_rejections_total",
        Kind::Counter,
        "Requests refused with 429 by the per-partner throttle, by route family.",
    ),
    series(
        "pcq_faults_fired_total",
        Kind::Counter,
        "Injected sandbox faults that fired, by action (the status, reset or delay).",
    ),
];

/// The HTTP series of one route, method and status.
struct RouteSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    seconds: Histogram,
}

/// The node's metrics: its recorder and the handles pcq counts with.
pub struct Metrics {
    exporter: Option<(PrometheusRecorder, PrometheusHandle)>,
    routes: RwLock<HashMap<Box<str>, Vec<RouteSeries>>>,
    in_flight: Gauge,
    /// The store's series (handed to the store when the node starts).
    pub store: StoreMeters,
    /// PostgreSQL's pool gauges (idle, used), registered by the first scrape that has a pool.
    pool: std::sync::OnceLock<(Gauge, Gauge)>,
    vetting_pending: Gauge,
    vetting_oldest: Gauge,
    /// Due vetting jobs the worker took up.
    pub vetting_claimed: Counter,
    /// Vetting decisions made: approved, denied.
    decided: [Counter; 2],
    outbox_depth: Gauge,
    attempts: [Counter; 3],
    deliveries: [Counter; 2],
    /// Rows pruned by retention, by kind (in the order of `retention::Kind::ALL`).
    pruned: [Counter; 4],
}

/// What a scrape reads from the store and the pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    /// Pending vetting jobs.
    pub vetting_pending: i64,
    /// The oldest pending vetting job's age.
    pub vetting_oldest: Duration,
    /// Pending webhook deliveries.
    pub outbox_depth: i64,
    /// PostgreSQL pool: (connections, idle ones).
    pub pool: Option<(u32, usize)>,
}

impl Metrics {
    /// Metrics that keep nothing (`metrics.enabled = false`).
    pub fn disabled() -> Metrics {
        Metrics {
            exporter: None,
            routes: RwLock::new(HashMap::new()),
            in_flight: Gauge::noop(),
            store: StoreMeters::default(),
            pool: std::sync::OnceLock::new(),
            vetting_pending: Gauge::noop(),
            vetting_oldest: Gauge::noop(),
            vetting_claimed: Counter::noop(),
            decided: [Counter::noop(), Counter::noop()],
            outbox_depth: Gauge::noop(),
            attempts: [Counter::noop(), Counter::noop(), Counter::noop()],
            deliveries: [Counter::noop(), Counter::noop()],
            pruned: [
                Counter::noop(),
                Counter::noop(),
                Counter::noop(),
                Counter::noop(),
            ],
        }
    }

    /// A fresh recorder of this node's own, with every fixed series registered.
    pub fn new(enabled: bool) -> Metrics {
        if !enabled {
            return Metrics::disabled();
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets(&SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("pcq_store_write_batch_size".to_owned()),
                    &BATCH,
                )
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        for d in DESCRIBED {
            let name = KeyName::from_const_str(d.name);
            let help = SharedString::const_str(d.help);
            match d.kind {
                Kind::Counter => recorder.describe_counter(name, d.unit, help),
                Kind::Gauge => recorder.describe_gauge(name, d.unit, help),
                Kind::Histogram => recorder.describe_histogram(name, d.unit, help),
            }
        }
        let counter = |name: &'static str, labels: &'static [Label]| {
            recorder.register_counter(&Key::from_static_parts(name, labels), &META)
        };
        let gauge = |name: &'static str, labels: &'static [Label]| {
            recorder.register_gauge(&Key::from_static_parts(name, labels), &META)
        };
        let histogram =
            |name: &'static str| recorder.register_histogram(&Key::from_static_name(name), &META);
        static VERSION: [Label; 1] = [Label::from_static_parts(
            "version",
            env!("CARGO_PKG_VERSION"),
        )];
        gauge("pcq_build_info", &VERSION).set(1.0);
        static APPROVED: [Label; 1] = [Label::from_static_parts("outcome", "approved")];
        static DENIED: [Label; 1] = [Label::from_static_parts("outcome", "denied")];
        static DELIVERED: [Label; 1] = [Label::from_static_parts("result", "delivered")];
        static RETRY: [Label; 1] = [Label::from_static_parts("result", "retry")];
        static FAILED: [Label; 1] = [Label::from_static_parts("result", "failed")];
        static PRUNED: [[Label; 1]; 4] = [
            [Label::from_static_parts("kind", "idempotency")],
            [Label::from_static_parts("kind", "webhook_deliveries")],
            [Label::from_static_parts("kind", "webhook_attempts")],
            [Label::from_static_parts("kind", "audit_records")],
        ];
        let store = StoreMeters {
            batch_size: histogram("pcq_store_write_batch_size"),
            commit_seconds: histogram("pcq_store_commit_duration_seconds"),
            queued_seconds: histogram("pcq_store_write_queued_seconds"),
            read_seconds: histogram("pcq_store_read_duration_seconds"),
            conflict_reruns: counter("pcq_store_conflict_reruns_total", &[]),
            round_trips: counter("pcq_store_write_round_trips_total", &[]),
        };
        let metrics = Metrics {
            routes: RwLock::new(HashMap::new()),
            in_flight: gauge("pcq_http_requests_in_flight", &[]),
            store,
            pool: std::sync::OnceLock::new(),
            vetting_pending: gauge("pcq_vetting_jobs_pending", &[]),
            vetting_oldest: gauge("pcq_vetting_oldest_pending_age_seconds", &[]),
            vetting_claimed: counter("pcq_vetting_jobs_claimed_total", &[]),
            decided: [
                counter("pcq_vetting_jobs_decided_total", &APPROVED),
                counter("pcq_vetting_jobs_decided_total", &DENIED),
            ],
            outbox_depth: gauge("pcq_webhook_outbox_depth", &[]),
            attempts: [
                counter("pcq_webhook_attempts_total", &DELIVERED),
                counter("pcq_webhook_attempts_total", &RETRY),
                counter("pcq_webhook_attempts_total", &FAILED),
            ],
            deliveries: [
                counter("pcq_webhook_deliveries_total", &DELIVERED),
                counter("pcq_webhook_deliveries_total", &FAILED),
            ],
            pruned: [
                counter("pcq_retention_pruned_total", &PRUNED[0]),
                counter("pcq_retention_pruned_total", &PRUNED[1]),
                counter("pcq_retention_pruned_total", &PRUNED[2]),
                counter("pcq_retention_pruned_total", &PRUNED[3]),
            ],
            exporter: None,
        };
        let handle = recorder.handle();
        Metrics {
            exporter: Some((recorder, handle)),
            ..metrics
        }
    }

    /// Whether metrics are kept.
    pub fn enabled(&self) -> bool {
        self.exporter.is_some()
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.increment(1.0);
        InFlight(&self.in_flight)
    }

    /// Counts a request answered.
    pub fn request_served(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let Some((recorder, _)) = &self.exporter else {
            return;
        };
        let method = method_label(method);
        let seconds = elapsed.as_secs_f64();
        {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(series) = routes.get(route).and_then(|all| {
                all.iter()
                    .find(|s| s.status == status && s.method == method)
            }) {
                series.requests.increment(1);
                series.seconds.record(seconds);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let all = routes.entry(route.into()).or_default();
        if !all.iter().any(|s| s.status == status && s.method == method) {
            let labels = vec![
                Label::new("route", route.to_owned()),
                Label::from_static_parts("method", method),
                Label::new("status", status.to_string()),
            ];
            all.push(RouteSeries {
                method,
                status,
                requests: recorder.register_counter(
                    &Key::from_parts("pcq_http_requests_total", labels.clone()),
                    &META,
                ),
                seconds: recorder.register_histogram(
                    &Key::from_parts("pcq_http_request_duration_seconds", labels),
                    &META,
                ),
            });
        }
        let series = all
            .iter()
            .find(|s| s.status == status && s.method == method)
            .expect("registered above");
        series.requests.increment(1);
        series.seconds.record(seconds);
    }

    /// Counts a request the throttle refused.
    pub fn throttled(&self, family: &'static str) {
        if let Some((recorder, _)) = &self.exporter {
            let key = Key::from_parts(
                "pcq_throttle_rejections_total",
                vec![Label::from_static_parts("family", family)],
            );
            recorder.register_counter(&key, &META).increment(1);
        }
    }

    /// Counts an injected fault that fired: `action` is its status, `reset` or `delay`.
    pub fn fault_fired(&self, action: String) {
        if let Some((recorder, _)) = &self.exporter {
            let key = Key::from_parts("pcq_faults_fired_total", vec![Label::new("action", action)]);
            recorder.register_counter(&key, &META).increment(1);
        }
    }

    /// Counts rows of a kind deleted by retention.
    pub fn retention_pruned(&self, kind: crate::service::retention::Kind, rows: u64) {
        if rows > 0 {
            let index = crate::service::retention::Kind::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(0);
            self.pruned[index].increment(rows);
        }
    }

    /// Counts the worker's vetting decisions by outcome.
    pub fn vetting_decided(&self, outcomes: &[VettingStatus]) {
        for outcome in outcomes {
            match outcome {
                VettingStatus::Approved => self.decided[0].increment(1),
                VettingStatus::Denied => self.decided[1].increment(1),
                VettingStatus::InReview => {}
            }
        }
    }

    /// Counts recorded webhook attempts by the delivery's state after each.
    pub fn attempts_recorded(&self, statuses: impl IntoIterator<Item = DeliveryStatus>) {
        for status in statuses {
            match status {
                DeliveryStatus::Delivered => {
                    self.attempts[0].increment(1);
                    self.deliveries[0].increment(1);
                }
                DeliveryStatus::Pending => self.attempts[1].increment(1),
                DeliveryStatus::Failed => {
                    self.attempts[2].increment(1);
                    self.deliveries[1].increment(1);
                }
            }
        }
    }

    /// The Prometheus text exposition of every series, with the store's gauges set from
    /// `backlog`; `None` when metrics are off.
    pub fn render(&self, backlog: Backlog) -> Option<String> {
        let (recorder, handle) = self.exporter.as_ref()?;
        self.vetting_pending.set(backlog.vetting_pending as f64);
        self.vetting_oldest
            .set(backlog.vetting_oldest.as_secs_f64());
        self.outbox_depth.set(backlog.outbox_depth as f64);
        if let Some((size, idle)) = backlog.pool {
            static IDLE: [Label; 1] = [Label::from_static_parts("state", "idle")];
            static USED: [Label; 1] = [Label::from_static_parts("state", "used")];
            let (idle_gauge, used_gauge) = self.pool.get_or_init(|| {
                let gauge = |labels: &'static [Label]| {
                    let key = Key::from_static_parts("pcq_store_pool_connections", labels);
                    recorder.register_gauge(&key, &META)
                };
                (gauge(&IDLE), gauge(&USED))
            });
            idle_gauge.set(idle as f64);
            used_gauge.set(f64::from(size).max(idle as f64) - idle as f64);
        }
        Some(handle.render())
    }

    /// Folds recorded histogram samples into their buckets, so that they do not pile up
    /// between scrapes (the node runs this every few seconds).
    pub fn upkeep(&self) {
        if let Some((_, handle)) = &self.exporter {
            handle.run_upkeep();
        }
    }
}

/// A request in flight; dropping it (answered or abandoned) counts it out.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
