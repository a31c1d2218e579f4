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
use tokio::sync::watch;

use crate::AppState;
use crate::service::vetting::{DecideDue, StoredPolicy};
use crate::service::webhooks::{ClaimDeliveries, FinishAttempts};
use crate::store::{AttemptRow, DeliveryRow, DeliveryStatus, StoreResult};
use crate::webhook_signing::ALGORITHM;

/// How long a claimed delivery stays with its node.
const LEASE: Duration = Duration::from_secs(120);
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
                    () = self.state.wake.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Works until nothing is due (webhook attempts that fail are rescheduled, not retried in
    /// the same drain).
    pub async fn drain(&self) -> StoreResult<Progress> {
        let mut total = Progress::default();
        for _ in 0..MAX_DRAIN_STEPS {
            let progress = self.step().await?;
            if progress.is_idle() {
                break;
            }
            total.add(progress);
        }
        Ok(total)
    }

    /// One step: takes up settings other nodes may have changed, decides due vetting decisions,
    /// and attempts one batch of due webhook deliveries.
    pub async fn step(&self) -> StoreResult<Progress> {
        self.refresh().await?;
        let mut progress = Progress::default();
        let limit = i64::from(self.state.config.worker.batch_size);
        loop {
            let (seen, decided) = self
                .state
                .store
                .write(DecideDue {
                    policy: self.state.policy.get(),
                    now: self.state.clock.now(),
                    limit,
                    effects: self.state.effects(),
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

    /// Takes up the clock offset and run-time policy stored by this or another node.
    async fn refresh(&self) -> StoreResult<()> {
        let state = &self.state;
        let offset = state
            .store
            .read(crate::service::clock::StoredOffset)
            .await?;
        if offset != state.clock.offset_micros() {
            state.clock.set_offset_micros(offset);
        }
        let stored = state.store.read(StoredPolicy).await?;
        let current = state.policy.get();
        match stored {
            Some(p) if *current != p => {
                state.policy.set(Some(p));
            }
            None if state.policy.is_overridden() => {
                state.policy.set(None);
            }
            _ => {}
        }
        Ok(())
    }

    async fn deliver_due(&self, limit: i64) -> StoreResult<(usize, usize)> {
        let state = &self.state;
        let now = state.clock.now();
        let claimed = state
            .store
            .write(ClaimDeliveries {
                now,
                lease_until: now.plus_micros(LEASE.as_micros() as i64),
                owner: state.node_id.clone(),
                limit,
            })
            .await?;
        if claimed.is_empty() {
            return Ok((0, 0));
        }
        let outcomes =
            futures_util::future::join_all(claimed.iter().map(|d| self.attempt(d))).await;
        let delivered = outcomes
            .iter()
            .filter(|o| o.1 == DeliveryStatus::Delivered)
            .count();
        let attempts = outcomes.len();
        state.store.write(FinishAttempts(outcomes)).await?;
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
        let at = state.clock.now();
        let ok = code.is_some_and(|c| (200..300).contains(&c));
        let status = if ok {
            DeliveryStatus::Delivered
        } else if number >= i64::from(config.max_attempts) {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        };
        let backoff_secs = config
            .backoff_seconds
            .saturating_mul(1u64 << (number - 1).clamp(0, 30))
            .min(config.max_backoff_seconds);
        let next =
            at.plus_micros(i64::try_from(backoff_secs).unwrap_or(i64::MAX / 2_000_000) * 1_000_000);
        if !ok {
            tracing::warn!(
                delivery = %delivery.id,
                attempt = number,
                url = %delivery.webhook_url,
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

    /// POSTs the signed event; the receiver's status and a short message, or why no answer came.
    async fn post(&self, delivery: &DeliveryRow) -> Result<(u16, String), String> {
        let state = &self.state;
        let signer = state.webhook_signer().await.map_err(|e| format!("{e:#}"))?;
        let signature = signer.sign(&delivery.payload).map_err(|e| e.to_string())?;
        let response = state
            .http
            .post(&delivery.webhook_url)
            .header("Content-Type", "application/json")
            .header(
                "Authorization",
                format!("Signature {}", STANDARD.encode(signature)),
            )
            .header(
                "X-MS-Certificate-Url",
                format!("{}/_pcq/webhooks/certificate", state.public_url),
            )
            .header("X-MS-Signature-Algorithm", ALGORITHM)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| describe_send_error(&e))?;
        let code = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok((code, body.chars().take(500).collect()))
    }
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
