//! `pcq-bench`: a load generator for a running pcq.
//!
//! It drives one or more pcq nodes with `--concurrency` clients for `--duration` seconds, after
//! a `--warmup` whose requests are not counted, and prints one line of JSON: the scenario, how
//! many requests completed in the measured window, how many of them failed, the throughput and
//! the latency percentiles. Timings depend on the machine; compare runs made side by side.
//!
//! Scenarios:
//!
//! - `mix` (default): each client loops over creating a customer (a unique `.example.edu`
//!   domain), requesting Education for it, reading its qualifications and reading the customer;
//! - `create`: each client only creates customers;
//! - `read`: a few customers are created first, then each client only reads them.
//!
//! A request counts when it completes inside the measured window; a non-2xx answer or a transport
//! error counts as an error (the run goes on), and the first few distinct ones are shown on
//! standard error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

/// How many distinct errors are shown on standard error.
const SHOWN_ERRORS: usize = 5;
/// How much of an error body is shown.
const SHOWN_BODY_CHARS: usize = 300;

/// Measures request throughput and latency of a running pcq.
#[derive(Parser, Debug)]
#[command(name = "pcq-bench", version, about, long_about = None)]
struct Cli {
    /// Base URL of a pcq node, e.g. http://127.0.0.1:8080; repeatable: clients are spread
    /// round-robin over the nodes.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// Bearer token of an App+User caller (`pcq token --tenant GUID` mints one).
    #[arg(long, env = "PCQ_TOKEN", hide_env_values = true)]
    token: String,
    /// Number of concurrent clients, each sending one request at a time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Length of the measured window, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive_seconds)]
    duration: f64,
    /// Load before the measured window, in seconds (not counted).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = seconds)]
    warmup: f64,
    /// What each client does.
    #[arg(long, value_enum, default_value_t = Scenario::Mix)]
    scenario: Scenario,
    /// Customers created before the `read` scenario starts.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    read_customers: u32,
    /// Time limit of one request, in seconds (a request over it is a transport error).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Free-form label copied into the output (e.g. the setup being measured).
    #[arg(long)]
    label: Option<String>,
}

/// What each client does in a loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Create a customer, request Education for it, read its qualifications, read it.
    Mix,
    /// Create customers only.
    Create,
    /// Read a few customers created before the run.
    Read,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Mix => "mix",
            Scenario::Create => "create",
            Scenario::Read => "read",
        }
    }
}

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("expected a number of seconds, 0 or more".to_owned())
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match seconds(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err("expected a number of seconds above 0".to_owned()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcq-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // HTTPS URLs need a crypto provider; plain HTTP does not use it.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let urls: Vec<String> = cli
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    for url in &urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url {url:?} is not an http:// or https:// URL");
        }
    }
    let timeout = Duration::from_secs_f64(cli.timeout);
    let errors = Arc::new(ErrorLog::default());

    // The read scenario reads customers that exist; create them before the clock starts.
    let mut readable = Vec::new();
    if cli.scenario == Scenario::Read {
        for i in 0..cli.read_customers as usize {
            let target = Target::new(&urls[i % urls.len()], &cli.token, timeout)?;
            let id = target
                .create_customer_for_setup()
                .await
                .with_context(|| format!("creating the customers to read at {}", target.base))?;
            readable.push(id);
        }
    }
    let readable = Arc::new(readable);

    let start = Instant::now();
    let window = Window {
        from: start + Duration::from_secs_f64(cli.warmup),
        until: start + Duration::from_secs_f64(cli.warmup + cli.duration),
    };

    let mut workers = Vec::with_capacity(cli.concurrency as usize);
    for n in 0..cli.concurrency as usize {
        let target = Target::new(&urls[n % urls.len()], &cli.token, timeout)?;
        let mut client = Worker {
            target,
            window,
            errors: Arc::clone(&errors),
            tally: Tally::default(),
        };
        let scenario = cli.scenario;
        let readable = Arc::clone(&readable);
        workers.push(tokio::spawn(async move {
            client.run(scenario, &readable, n).await;
            client.tally
        }));
    }

    let mut total = Tally::default();
    for worker in workers {
        total.merge(worker.await.context("a client task failed")?);
    }

    let seconds = cli.duration;
    total.latencies.sort_unstable();
    let requests = total.latencies.len() as u64;
    let ok = requests - total.errors;
    let mut line = json!({
        "scenario": cli.scenario.name(),
        "nodes": urls.len(),
        "concurrency": cli.concurrency,
        "seconds": seconds,
        "requests": requests,
        "errors": total.errors,
        "errors_by_status": total.errors_by_kind,
        "requests_per_second": round(requests as f64 / seconds, 1),
        "ok_per_second": round(ok as f64 / seconds, 1),
        "p50_ms": percentile_ms(&total.latencies, 50.0),
        "p90_ms": percentile_ms(&total.latencies, 90.0),
        "p99_ms": percentile_ms(&total.latencies, 99.0),
    });
    if let Some(label) = cli.label {
        line["label"] = Value::String(label);
    }
    println!("{line}");
    let unshown = errors.unshown();
    if unshown > 0 {
        eprintln!("pcq-bench: {unshown} more distinct error kind(s) not shown");
    }
    Ok(())
}

/// The measured window: requests completing in `[from, until)` count.
#[derive(Copy, Clone, Debug)]
struct Window {
    from: Instant,
    until: Instant,
}

/// One pcq node as seen by one client.
struct Target {
    client: Client,
    base: String,
    token: String,
}

/// The answer to one request.
struct Answer {
    status: Result<StatusCode, String>,
    body: Vec<u8>,
}

impl Answer {
    fn ok(&self) -> bool {
        matches!(self.status, Ok(s) if s.is_success())
    }
}

impl Target {
    fn new(base: &str, token: &str, timeout: Duration) -> anyhow::Result<Target> {
        let client = Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        Ok(Target {
            client,
            base: base.to_owned(),
            token: token.to_owned(),
        })
    }

    /// Sends one request and reads the whole answer.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Err(e) => Answer {
                status: Err(transport_error(&e)),
                body: Vec::new(),
            },
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(body) => Answer {
                        status: Ok(status),
                        body: body.to_vec(),
                    },
                    Err(e) => Answer {
                        status: Err(transport_error(&e)),
                        body: Vec::new(),
                    },
                }
            }
        }
    }

    /// Creates a customer outside the measured window, failing on any error.
    async fn create_customer_for_setup(&self) -> anyhow::Result<String> {
        let answer = self
            .send(Method::POST, "/v1/customers", Some(&new_customer()))
            .await;
        match (&answer.status, customer_id(&answer)) {
            (Ok(s), Some(id)) if s.is_success() => Ok(id),
            (Ok(s), _) => bail!(
                "POST /v1/customers answered {s}: {}",
                shown_body(&answer.body)
            ),
            (Err(e), _) => bail!("POST /v1/customers failed: {e}"),
        }
    }
}

/// The body of a customer with a domain no other customer has.
fn new_customer() -> Value {
    json!({
        "companyProfile": {
            "domain": format!("{}.example.edu", uuid::Uuid::new_v4().simple()),
            "companyName": "Bench",
        }
    })
}

/// The `id` of a created customer.
fn customer_id(answer: &Answer) -> Option<String> {
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}

fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    // The source chain says what went wrong (refused, reset, ...).
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    format!("transport {kind}: {detail}")
}

fn shown_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut shown: String = text.chars().take(SHOWN_BODY_CHARS).collect();
    if text.chars().count() > SHOWN_BODY_CHARS {
        shown.push('…');
    }
    shown
}

/// What one client counted in the measured window.
#[derive(Default)]
struct Tally {
    /// Latency of every counted request, successful or not.
    latencies: Vec<Duration>,
    errors: u64,
    /// Counted errors by status code (`"503"`) or `"transport"`.
    errors_by_kind: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for (kind, n) in other.errors_by_kind {
            *self.errors_by_kind.entry(kind).or_default() += n;
        }
    }
}

/// The distinct errors seen so far (in the window or not), the first few of which are shown.
#[derive(Default)]
struct ErrorLog {
    seen: Mutex<BTreeMap<String, u64>>,
}

impl ErrorLog {
    /// Notes an error; shows it if it is one of the first few distinct ones.
    fn note(&self, what: &str, answer: &Answer) {
        let (key, detail) = match &answer.status {
            Ok(status) => {
                let name = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("errorName")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (
                    format!("{what} {} {name}", status.as_u16()),
                    format!("{status}: {}", shown_body(&answer.body)),
                )
            }
            Err(e) => {
                let kind = e.split(':').next().unwrap_or(e).to_owned();
                (format!("{what} {kind}"), e.clone())
            }
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let distinct = seen.len();
        let count = seen.entry(key).or_default();
        *count += 1;
        if *count == 1 && distinct < SHOWN_ERRORS {
            eprintln!("pcq-bench: {what} -> {detail}");
        }
    }

    /// How many distinct errors were not shown.
    fn unshown(&self) -> usize {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.len().saturating_sub(SHOWN_ERRORS)
    }
}

/// One client: sends one request at a time until the window closes.
struct Worker {
    target: Target,
    window: Window,
    errors: Arc<ErrorLog>,
    tally: Tally,
}

impl Worker {
    async fn run(&mut self, scenario: Scenario, readable: &[String], n: usize) {
        let mut next_read = n;
        while Instant::now() < self.window.until {
            match scenario {
                Scenario::Create => {
                    self.call(
                        "POST /v1/customers",
                        Method::POST,
                        "/v1/customers",
                        Some(&new_customer()),
                    )
                    .await;
                }
                Scenario::Read => {
                    let id = &readable[next_read % readable.len()];
                    next_read += 1;
                    self.call(
                        "GET /v1/customers/{id}",
                        Method::GET,
                        &format!("/v1/customers/{id}"),
                        None,
                    )
                    .await;
                }
                Scenario::Mix => self.mix().await,
            }
        }
    }

    /// One round of the mix; stops early when the customer could not be created.
    async fn mix(&mut self) {
        let created = self
            .call(
                "POST /v1/customers",
                Method::POST,
                "/v1/customers",
                Some(&new_customer()),
            )
            .await;
        let Some(id) = created.filter(Answer::ok).as_ref().and_then(customer_id) else {
            return;
        };
        let qualifications = format!("/v1/customers/{id}/qualifications");
        let steps = [
            (
                "POST /v1/customers/{id}/qualifications",
                Method::POST,
                qualifications.clone(),
                Some(json!({"qualification": "Education"})),
            ),
            (
                "GET /v1/customers/{id}/qualifications",
                Method::GET,
                qualifications,
                None,
            ),
            (
                "GET /v1/customers/{id}",
                Method::GET,
                format!("/v1/customers/{id}"),
                None,
            ),
        ];
        for (what, method, path, body) in steps {
            if self
                .call(what, method, &path, body.as_ref())
                .await
                .is_none()
            {
                return;
            }
        }
    }

    /// Sends one request and counts it if it completes in the window. `None` once the window
    /// has closed (nothing is sent then).
    async fn call(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let sent = Instant::now();
        if sent >= self.window.until {
            return None;
        }
        let answer = self.target.send(method, path, body).await;
        let done = Instant::now();
        let ok = answer.ok();
        if !ok {
            self.errors.note(what, &answer);
        }
        if done >= self.window.from && done < self.window.until {
            self.tally.latencies.push(done - sent);
            if !ok {
                self.tally.errors += 1;
                let kind = match answer.status {
                    Ok(status) => status.as_u16().to_string(),
                    Err(_) => "transport".to_owned(),
                };
                *self.tally.errors_by_kind.entry(kind).or_default() += 1;
            }
        }
        Some(answer)
    }
}

/// The `p`-th percentile (nearest rank) of sorted latencies, in milliseconds; `null` when there
/// are none.
fn percentile_ms(sorted: &[Duration], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let at = sorted[rank.clamp(1, sorted.len()) - 1];
    json!(round(at.as_secs_f64() * 1000.0, 3))
}

fn round(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&sorted, 50.0), json!(50.0));
        assert_eq!(percentile_ms(&sorted, 90.0), json!(90.0));
        assert_eq!(percentile_ms(&sorted, 99.0), json!(99.0));
        assert_eq!(percentile_ms(&sorted[..1], 99.0), json!(1.0));
        assert_eq!(percentile_ms(&[], 50.0), Value::Null);
    }

    #[test]
    fn durations_must_be_positive() {
        assert!(positive_seconds("0").is_err());
        assert!(positive_seconds("-1").is_err());
        assert!(seconds("0").is_ok());
        assert_eq!(positive_seconds("2.5"), Ok(2.5));
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "pcq-bench",
            "--url",
            "http://127.0.0.1:1/",
            "--url",
            "http://127.0.0.1:2",
            "--token",
            "t",
            "--scenario",
            "read",
        ])
        .unwrap();
        assert_eq!(cli.urls.len(), 2);
        assert_eq!(cli.scenario, Scenario::Read);
        assert_eq!(cli.concurrency, 16);
    }
}
