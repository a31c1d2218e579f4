//! The background worker: decides due vetting decisions, delivers webhook events and prunes
//! expired records (`[retention]`).
//!
//! Everything it does goes through the store, so it can run in any number of nodes: a vetting
//! decision commits with its transition (and is made at most once, see
//! `service::vetting::transition`); a delivery is leased to one node while it is attempted, and
//! its outcome is recorded afterwards. A node that dies mid-delivery leaves the lease to expire,
//! after which another attempt is made.

use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcq_core::time::Timestamp;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::AppState;
use crate::error::Error;
use crate::service::vetting::DecideDue;
use crate::service::webhooks::{ClaimDeliveries, FinishAttempts};
use crate::store::{AttemptOutcome, AttemptRow, ClaimQuery, DeliveryRow, DeliveryStatus};
use crate::webhook_signing::{ALGORITHM, WebhookSigner};

/// The shortest time a claimed delivery stays with its claim (real time).
const LEASE: Duration = Duration::from_secs(120);
/// Most steps one drain takes (a guard against work that keeps coming).
const MAX_DRAIN_STEPS: usize = 10_000;
/// The background pruner's pause between two batches, which leaves the writer to requests.
const PRUNE_PAUSE: Duration = Duration::from_millis(20);

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Qualifications decided by the vetting policy.
    pub vetting_decisions: usize,
    /// Webhook delivery attempts made.
    pub webhook_attempts: usize,
    /// Of which delivered.
    pub webhooks_delivered: usize,
    /// Whether a drain stopped at its step limit with work still due.
    pub incomplete: bool,
    /// Expired records deleted by retention (every kind, webhook attempts included); a drain
    /// prunes once, before its other work.
    pub rows_pruned: u64,
}

impl Progress {
    fn add(&mut self, other: Progress) {
        self.vetting_decisions += other.vetting_decisions;
        self.webhook_attempts += other.webhook_attempts;
        self.webhooks_delivered += other.webhooks_delivered;
    }

    fn is_idle(&self) -> bool {
        self.vetting_decisions == 0 && self.webhook_attempts == 0
    }
}

/// The worker of one node.
pub struct Worker {
    state: AppState,
}

impl Worker {
    /// A worker for this node.
    pub fn new(state: AppState) -> Self {
        Worker { state }
    }

    /// Runs until `stop` turns true. Vetting decisions are made whenever the worker is woken
    /// and every `worker.poll_interval_ms`. Deliveries run on their own: up to
    /// `worker.batch_size` attempts of this node are in flight at once (at most
    /// `webhooks.max_in_flight_per_partner` of one partner's, across nodes); whenever some
    /// finish, their outcomes are recorded together and due deliveries are claimed for the
    /// places they freed, so a slow receiver holds up only its own partner's places.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.state.config.worker.poll_interval_ms);
        let room = i64::from(self.state.config.worker.batch_size);
        let mut deliveries = Deliveries::new(self.state.clone(), true);
        let mut next_poll = tokio::time::Instant::now();
        let pruner = tokio::spawn(prune_periodically(self.state.clone()));
        // Whether vetting decisions, or deliveries, may be due.
        let (mut decide, mut claim) = (true, true);
        while !*stop.borrow() {
            if decide {
                decide = false;
                if let Err(e) = self.decide_due().await {
                    tracing::error!(error = %e, "worker step failed");
                }
            }
            deliveries.collect();
            if !deliveries.finished.is_empty() {
                match deliveries.record().await {
                    // Their places are free again.
                    Ok(_) => claim = true,
                    Err(e) => tracing::error!(error = %e, "recording webhook attempts failed"),
                }
            }
            let free = room - deliveries.in_flight.len() as i64;
            if claim && free > 0 {
                claim = match deliveries.claim(free).await {
                    // It took all it could: more may be due.
                    Ok(claimed) => claimed as i64 == free,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming webhook deliveries failed");
                        false
                    }
                };
                if claim {
                    continue;
                }
            }
            tokio::select! {
                () = tokio::time::sleep_until(next_poll) => {
                    next_poll = tokio::time::Instant::now() + poll;
                    (decide, claim) = (true, true);
                }
                () = self.state.pipeline.woken() => (decide, claim) = (true, true),
                Some(done) = deliveries.in_flight.join_next(), if !deliveries.in_flight.is_empty() => {
                    deliveries.push(done);
                }
                _ = stop.changed() => {}
            }
        }
        // A batch cut short is rolled back or committed whole; either is fine.
        pruner.abort();
        // Attempts still in flight are abandoned: their leases run out and another claim makes
        // them again. Those that finished are recorded.
        deliveries.in_flight.abort_all();
        while let Some(done) = deliveries.in_flight.join_next().await {
            deliveries.push(done);
        }
        if let Err(e) = deliveries.record().await {
            tracing::warn!(error = %e, "recording webhook attempts on stopping failed");
            let left = std::mem::take(&mut deliveries.finished);
            deliveries.settled(left.len());
        }
    }

    /// Works until nothing is due (webhook attempts that fail are rescheduled, not retried in
    /// the same drain) and the attempts this node's background worker had in flight by then
    /// are recorded (not those it starts meanwhile), so that when a drain returns, every
    /// delivery it could see has settled.
    pub async fn drain(&self) -> Result<Progress, Error> {
        let mut total = Progress {
            rows_pruned: crate::service::retention::prune_expired(&self.state, Duration::ZERO)
                .await?,
            ..Progress::default()
        };
        for _ in 0..MAX_DRAIN_STEPS {
            let progress = self.step().await?;
            if progress.is_idle() && !self.state.pipeline.background_attempts_recorded().await {
                return Ok(total);
            }
            total.add(progress);
        }
        total.incomplete = true;
        Ok(total)
    }

    /// One step: takes up settings other nodes may have changed, decides due vetting decisions,
    /// and attempts one claim of due webhook deliveries (all at once), recording their outcomes
    /// together.
    pub async fn step(&self) -> Result<Progress, Error> {
        let mut progress = Progress {
            vetting_decisions: self.decide_due().await?,
            ..Progress::default()
        };
        let mut deliveries = Deliveries::new(self.state.clone(), false);
        deliveries
            .claim(i64::from(self.state.config.worker.batch_size))
            .await?;
        while let Some(done) = deliveries.in_flight.join_next().await {
            deliveries.push(done);
        }
        let (attempts, delivered) = deliveries.record().await?;
        progress.webhook_attempts += attempts;
        progress.webhooks_delivered += delivered;
        Ok(progress)
    }

    /// Takes up settings other nodes may have changed and makes every due vetting decision;
    /// returns how many it made.
    async fn decide_due(&self) -> Result<usize, Error> {
        let pipeline = &self.state.pipeline;
        crate::settings::refresh(pipeline).await?;
        let limit = i64::from(self.state.config.worker.batch_size);
        let mut decisions = 0;
        loop {
            let (seen, decided) = pipeline
                .write(DecideDue {
                    configured: pipeline.policy.configured().clone(),
                    now: pipeline.now(),
                    limit,
                    links: pipeline.links.clone(),
                })
                .await?;
            decisions += decided.len();
            let metrics = &self.state.metrics;
            metrics.vetting_claimed.increment(seen as u64);
            metrics.vetting_decided(&decided);
            if (seen as i64) < limit {
                return Ok(decisions);
            }
        }
    }
}

/// Prunes expired records now and then every `retention.interval`, until aborted.
async fn prune_periodically(state: AppState) {
    let interval = Duration::from_micros(
        u64::try_from(state.config.retention.interval.as_micros()).unwrap_or(60_000_000),
    );
    loop {
        match crate::service::retention::prune_expired(&state, PRUNE_PAUSE).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "pruned expired records"),
            Err(e) => tracing::error!(error = %e, "pruning expired records failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// The webhook attempts of one node: those in flight, each in a task of its own, and those
/// finished but not recorded yet.
struct Deliveries {
    state: AppState,
    in_flight: JoinSet<AttemptOutcome>,
    finished: Vec<AttemptOutcome>,
    /// The partner the last claim ended with: the next claim's round resumes after it.
    after: Option<Uuid>,
    /// Whether these are the background worker's (whose count drains wait for).
    background: bool,
}

impl Deliveries {
    fn new(state: AppState, background: bool) -> Self {
        Deliveries {
            state,
            in_flight: JoinSet::new(),
            finished: Vec::new(),
            after: None,
            background,
        }
    }

    /// Claims up to `limit` due deliveries and starts their attempts; returns how many.
    async fn claim(&mut self, limit: i64) -> Result<usize, Error> {
        let state = &self.state;
        let pipeline = &state.pipeline;
        let token = Uuid::new_v4().to_string();
        let real_now = Timestamp::from_datetime(OffsetDateTime::now_utc());
        let lease = lease_for(state.config.webhooks.timeout_seconds);
        let claimed = pipeline
            .write(ClaimDeliveries(ClaimQuery {
                now: pipeline.now(),
                real_now,
                lease_until: real_now
                    .plus_micros(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX)),
                token: token.clone(),
                limit,
                per_partner: i64::from(state.config.webhooks.max_in_flight_per_partner),
                after: self.after,
            }))
            .await?;
        if let Some(last) = claimed.last() {
            self.after = Some(last.partner_tenant_id);
        }
        let count = claimed.len();
        if self.background {
            self.state.pipeline.background_attempts_started(count);
        }
        for delivery in claimed {
            self.in_flight
                .spawn(attempt(self.state.clone(), delivery, token.clone()));
        }
        Ok(count)
    }

    /// Counts attempts the background worker settled (drains wait for them).
    fn settled(&self, n: usize) {
        if self.background {
            self.state.pipeline.background_attempts_settled(n);
        }
    }

    /// Takes in the attempts that have finished, without waiting.
    fn collect(&mut self) {
        while let Some(done) = self.in_flight.try_join_next() {
            self.push(done);
        }
    }

    fn push(&mut self, done: Result<AttemptOutcome, tokio::task::JoinError>) {
        match done {
            Ok(outcome) => self.finished.push(outcome),
            // Its lease runs out and another claim makes the attempt again.
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(error = %e, "a webhook attempt panicked");
                }
                self.settled(1);
            }
        }
    }

    /// Records the finished attempts in one write; returns how many were recorded and how
    /// many of the finished ones were delivered. On failure they are kept for the next try.
    async fn record(&mut self) -> Result<(usize, usize), Error> {
        if self.finished.is_empty() {
            return Ok((0, 0));
        }
        let outcomes = std::mem::take(&mut self.finished);
        let delivered = outcomes
            .iter()
            .filter(|o| o.status == DeliveryStatus::Delivered)
            .count();
        match self
            .state
            .pipeline
            .write(FinishAttempts(outcomes.clone()))
            .await
        {
            Ok(recorded) => {
                self.state
                    .metrics
                    .attempts_recorded(outcomes.iter().map(|o| o.status));
                self.settled(outcomes.len());
                Ok((recorded, delivered))
            }
            Err(e) => {
                self.finished = outcomes;
                Err(e)
            }
        }
    }
}

/// Attempts one delivery claimed under `token`: the attempt, the delivery's new status and
/// when to try next.
async fn attempt(state: AppState, delivery: DeliveryRow, token: String) -> AttemptOutcome {
    let config = &state.config.webhooks;
    let number = delivery.attempts + 1;
    let (code, message, system_error) = match post(&state, &delivery).await {
        Ok((code, message)) => (Some(code), message, false),
        Err(message) => (None, message, true),
    };
    let at = state.pipeline.now();
    let ok = code.is_some_and(|c| (200..300).contains(&c));
    let status = if ok {
        DeliveryStatus::Delivered
    } else if number >= i64::from(config.max_attempts) {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    let next = at.plus_micros(backoff_micros(
        config.backoff_seconds,
        config.max_backoff_seconds,
        number,
    ));
    if !ok {
        tracing::warn!(
            delivery = %delivery.id,
            attempt = number,
            url = %crate::webhook_targets::loggable(&delivery.webhook_url),
            code = ?code,
            %message,
            "webhook delivery attempt failed"
        );
    }
    AttemptOutcome {
        token,
        attempt: AttemptRow {
            delivery_id: delivery.id,
            attempt: number,
            at,
            response_code: code.map(i64::from),
            response_message: message,
            system_error,
        },
        status,
        next_attempt_at: next,
    }
}

/// POSTs the signed event; the receiver's status and the start of its answer, or why no
/// answer came.
async fn post(state: &AppState, delivery: &DeliveryRow) -> Result<(u16, String), String> {
    if crate::webhook_targets::has_credentials(&delivery.webhook_url) {
        return Err(
            "the WebhookUrl carries a user name or password, which pcq does not send; \
                    register it again without them"
                .to_owned(),
        );
    }
    if !state.allow_private_targets {
        if let Some(why) = crate::webhook_targets::refused_literal(&delivery.webhook_url) {
            return Err(format!("the receiver's address is not allowed: {why}"));
        }
    }
    let signer = state.webhook_signer().await.map_err(|e| format!("{e:#}"))?;
    let signature = sign_in_background(signer, delivery.payload.clone()).await?;
    let mut response = state
        .http
        .post(&delivery.webhook_url)
        .header("Content-Type", "application/json")
        .header(
            "Authorization",
            format!("Signature {}", STANDARD.encode(signature)),
        )
        .header(
            "X-MS-Certificate-Url",
            format!(
                "{}/_pcq/webhooks/certificate",
                state.pipeline.links.public_url
            ),
        )
        .header("X-MS-Signature-Algorithm", ALGORITHM)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| describe_send_error(&e.without_url()))?;
    let code = response.status().as_u16();
    // Keep only the start of the answer; never read an unbounded body.
    let mut head = Vec::new();
    while head.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                head.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - head.len())])
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    Ok((code, text.chars().take(500).collect()))
}

/// A job for the background threads.
type Job = Box<dyn FnOnce() + Send>;

/// Signs `payload` on one of the background threads.
async fn sign_in_background(
    signer: Arc<WebhookSigner>,
    payload: Vec<u8>,
) -> Result<Vec<u8>, String> {
    at_low_priority(move || signer.sign(&payload).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// Runs `job` on one of the process's background threads, which run at the lowest scheduling
/// priority (on Linux): when requests and webhook work compete for the CPU, requests go first
/// and the webhook work takes the time left. An RSA signature takes about a millisecond of
/// CPU, creating a key a second or so.
pub(crate) async fn at_low_priority<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    static THREADS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let jobs = THREADS.get_or_init(|| {
        let (send, receive) = mpsc::channel::<Job>();
        let receive = Arc::new(Mutex::new(receive));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        for n in 0..threads {
            let receive = receive.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pcq-sign-{n}"))
                .spawn(move || {
                    lowest_priority();
                    loop {
                        let job = match receive.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a background thread");
            }
        }
        send
    });
    let (done, result) = oneshot::channel();
    jobs.send(Box::new(move || {
        let _ = done.send(job());
    }))
    .map_err(|_| anyhow::anyhow!("no background thread is running"))?;
    result
        .await
        .map_err(|_| anyhow::anyhow!("the background thread stopped"))
}

/// Lowers the calling thread's scheduling priority as far as it goes (nice 19). On Linux the
/// nice value belongs to the thread, so the rest of the process keeps its priority.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its arguments; `who` 0 names the calling thread.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    }
}

/// The most of a receiver's answer pcq reads.
const MAX_ANSWER_BYTES: usize = 4096;

/// How long a claim holds its deliveries: well beyond the time an attempt can take (its
/// signature, then the receiver's timeout).
fn lease_for(timeout_seconds: u64) -> Duration {
    Duration::from_secs(timeout_seconds.saturating_add(60).max(LEASE.as_secs()))
}

/// The wait after attempt `number` (1 for the first): `base`, doubling, at most `max`.
fn backoff_micros(base_seconds: u64, max_seconds: u64, number: i64) -> i64 {
    let doublings = u32::try_from((number - 1).clamp(0, 40)).unwrap_or(40);
    let seconds = base_seconds
        .saturating_mul(1u64 << doublings.min(62))
        .min(max_seconds);
    i64::try_from(seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

fn describe_send_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".to_owned()
    } else if e.is_connect() {
        "could not connect to the receiver".to_owned()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_overflow() {
        let secs = |n| backoff_micros(10, 3600, n) / 1_000_000;
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [10, 20, 40, 80]);
        assert_eq!(secs(9), 2560);
        assert_eq!(secs(10), 3600);
        assert_eq!(secs(1_000), 3600);
        assert_eq!(
            backoff_micros(86_400, 604_800, i64::MAX) / 1_000_000,
            604_800
        );
    }

    #[test]
    fn leases_outlast_an_attempt() {
        assert_eq!(lease_for(10), LEASE);
        assert!(lease_for(300) > Duration::from_secs(300));
        assert!(lease_for(u64::MAX) > LEASE);
    }
}
