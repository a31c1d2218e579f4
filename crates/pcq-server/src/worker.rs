//! The background worker: decides due vetting decisions and delivers webhook events.
//!
//! Everything it does goes through the store, so it can run in any number of nodes: a vetting
//! decision commits with its transition (and is made at most once, see
//! `service::vetting::transition`); a delivery is leased to one node while it is attempted, and
//! its outcome is recorded afterwards. A node that dies mid-delivery leaves the lease to expire,
//! after which another attempt is made.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcq_core::time::Timestamp;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::AppState;
use crate::error::Error;
use crate::service::vetting::DecideDue;
use crate::service::webhooks::{ClaimDeliveries, FinishAttempts};
use crate::store::{AttemptRow, ClaimQuery, DeliveryRow, DeliveryStatus};
use crate::webhook_signing::ALGORITHM;

/// The shortest time a claimed delivery stays with its claim (real time).
const LEASE: Duration = Duration::from_secs(120);
/// Most deliveries of one partner a claim takes: they are posted one after another.
const PER_PARTNER_CLAIM: u64 = 4;
/// Most steps one drain takes (a guard against work that keeps coming).
const MAX_DRAIN_STEPS: usize = 10_000;

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

    /// Runs until `stop` turns true: a step whenever work is due, an idle wait otherwise.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.state.config.worker.poll_interval_ms);
        while !*stop.borrow() {
            let idle = match self.step().await {
                Ok(progress) => progress.is_idle(),
                Err(e) => {
                    tracing::error!(error = %e, "worker step failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = self.state.pipeline.woken() => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Works until nothing is due (webhook attempts that fail are rescheduled, not retried in
    /// the same drain).
    pub async fn drain(&self) -> Result<Progress, Error> {
        let mut total = Progress::default();
        for _ in 0..MAX_DRAIN_STEPS {
            let progress = self.step().await?;
            if progress.is_idle() {
                return Ok(total);
            }
            total.add(progress);
        }
        total.incomplete = true;
        Ok(total)
    }

    /// One step: takes up settings other nodes may have changed, decides due vetting decisions,
    /// and attempts one batch of due webhook deliveries.
    pub async fn step(&self) -> Result<Progress, Error> {
        let pipeline = &self.state.pipeline;
        crate::settings::refresh(pipeline).await?;
        let mut progress = Progress::default();
        let limit = i64::from(self.state.config.worker.batch_size);
        loop {
            let (seen, decided) = pipeline
                .write(DecideDue {
                    configured: pipeline.policy.configured().clone(),
                    now: pipeline.now(),
                    limit,
                    links: pipeline.links.clone(),
                })
                .await?;
            progress.vetting_decisions += decided;
            if (seen as i64) < limit {
                break;
            }
        }
        let (attempts, delivered) = self.deliver_due(limit).await?;
        progress.webhook_attempts += attempts;
        progress.webhooks_delivered += delivered;
        Ok(progress)
    }

    async fn deliver_due(&self, limit: i64) -> Result<(usize, usize), Error> {
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
                per_partner: PER_PARTNER_CLAIM as i64,
            }))
            .await?;
        if claimed.is_empty() {
            return Ok((0, 0));
        }
        // One partner's events go out in order, one at a time; partners in parallel.
        let mut by_partner: Vec<Vec<&DeliveryRow>> = Vec::new();
        for delivery in &claimed {
            match by_partner
                .iter_mut()
                .find(|g| g[0].partner_tenant_id == delivery.partner_tenant_id)
            {
                Some(group) => group.push(delivery),
                None => by_partner.push(vec![delivery]),
            }
        }
        let outcomes: Vec<_> =
            futures_util::future::join_all(by_partner.into_iter().map(|group| async move {
                let mut outcomes = Vec::with_capacity(group.len());
                for delivery in group {
                    outcomes.push(self.attempt(delivery).await);
                }
                outcomes
            }))
            .await
            .into_iter()
            .flatten()
            .collect();
        let delivered = outcomes
            .iter()
            .filter(|o| o.1 == DeliveryStatus::Delivered)
            .count();
        let attempts = pipeline.write(FinishAttempts { token, outcomes }).await?;
        Ok((attempts, delivered))
    }

    /// Attempts one delivery; returns the attempt, the delivery's new status and when to try
    /// next.
    async fn attempt(&self, delivery: &DeliveryRow) -> (AttemptRow, DeliveryStatus, Timestamp) {
        let state = &self.state;
        let config = &state.config.webhooks;
        let number = delivery.attempts + 1;
        let (code, message, system_error) = match self.post(delivery).await {
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
        let attempt = AttemptRow {
            delivery_id: delivery.id,
            attempt: number,
            at,
            response_code: code.map(i64::from),
            response_message: message,
            system_error,
        };
        (attempt, status, next)
    }

    /// POSTs the signed event; the receiver's status and the start of its answer, or why no
    /// answer came.
    async fn post(&self, delivery: &DeliveryRow) -> Result<(u16, String), String> {
        let state = &self.state;
        if crate::webhook_targets::has_credentials(&delivery.webhook_url) {
            return Err(
                "the WebhookUrl carries a user name or password, which pcq does not \
                        send; register it again without them"
                    .to_owned(),
            );
        }
        if !state.allow_private_targets {
            if let Some(why) = crate::webhook_targets::refused_literal(&delivery.webhook_url) {
                return Err(format!("the receiver's address is not allowed: {why}"));
            }
        }
        let signer = state.webhook_signer().await.map_err(|e| format!("{e:#}"))?;
        let signature = signer.sign(&delivery.payload).map_err(|e| e.to_string())?;
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
}

/// The most of a receiver's answer pcq reads.
const MAX_ANSWER_BYTES: usize = 4096;

/// How long a claim holds its deliveries: well beyond the time one partner's deliveries can
/// take one after another.
fn lease_for(timeout_seconds: u64) -> Duration {
    let sequence = PER_PARTNER_CLAIM.saturating_mul(timeout_seconds.saturating_add(5));
    Duration::from_secs(sequence.saturating_add(60).max(LEASE.as_secs()))
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
        assert!(lease_for(300) > Duration::from_secs(300 * PER_PARTNER_CLAIM));
        assert!(lease_for(u64::MAX) > LEASE);
    }
}
